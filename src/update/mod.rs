//! What `containerctl update` needs below the daemon: which tags are newer versions a unit's
//! `[update]` policy allows ([`version`], pure) and the tags a registry holds ([`tags`], the
//! Registry v2 API with Docker's trust for that registry and the bearer-token flow).
//!
//! The update itself (pull, revision, restart, soak, rollback) is a domain operation:
//! `daemon::update`; a `[deploy]` unit's is a Swarm rolling update (`daemon::update_swarm`), whose
//! phases and per-node progress [`rolling`] reads from the service and its tasks.

pub mod rolling;
pub mod tags;
pub mod version;

pub use version::{newest_allowed, Version};
