//! All of containerctld's D-Bus access to systemd (`org.freedesktop.systemd1` on the system bus):
//! starting, stopping and restarting `containerctl@NAME.service`, `daemon-reload`, reading unit
//! state and following it live through systemd's signals.
//!
//! Why it looks the way it does:
//! - Jobs are awaited to their end. The `JobRemoved` subscription is made before the job is
//!   queued and matched on the job's object path, because a job can finish before the method
//!   call that queued it has returned.
//! - Every signal stream is drained by a task of its own: zbus stops reading the socket (method
//!   replies included) while any stream's queue is full, so a stream left unpolled while its owner
//!   awaits a method call can deadlock the connection.
//! - A `PropertiesChanged` signal covers one interface and only properties flagged to emit it, so
//!   [`Systemd::watch`] re-reads the whole state with one `GetAll` per interface. But systemd
//!   unloads ("garbage-collects") an inactive unit nothing refers to as soon as it stopped, and
//!   reading the object path of an unloaded unit loads it afresh, with its result, exit status and
//!   timestamps forgotten. So the watcher asks `GetUnit` (which never loads) first, and rejects a
//!   read whose `StateChangeTimestampMonotonic` went backwards; in both cases it applies the values
//!   the signals carried to the last state it knew.
//!
//! The code is split by what it does: `bus` declares systemd's D-Bus names and the zbus
//! proxies, `error` the [`SystemdError`] a failed call becomes, `jobs` the calls that queue a job
//! and await it, `state` the reading of a unit's state, `watch` the live stream of changes, and
//! `names` the unit names and object paths. This file holds the connection, [`Systemd`], whose
//! methods the submodules add.

mod bus;
mod error;
mod jobs;
mod names;
mod state;
#[cfg(test)]
mod tests;
mod watch;

use std::time::Duration;

use zbus::proxy::CacheProperties;
use zbus::Connection;

use bus::ManagerProxy;
pub use error::SystemdError;
pub use jobs::{JobOutcome, JobResult, MountSpec, DEFAULT_JOB_DEADLINE};
pub use names::{
    escape_unit_path, instance_of, is_container_unit, unescape_unit_path, unit_name, UNIT_PATTERN,
    UNIT_PREFIX, UNIT_SUFFIX,
};
pub use state::UnitState;
pub use watch::UnitChange;

/// A connection to systemd; cheap to clone, clones share the connection.
#[derive(Debug, Clone)]
pub struct Systemd {
    conn: Connection,
    manager: ManagerProxy<'static>,
    job_deadline: Duration,
}

impl Systemd {
    /// Connects to the system bus and subscribes to systemd's signals (systemd sends unit and job
    /// signals only while some client is subscribed; the subscription ends with the connection).
    pub async fn connect() -> Result<Systemd, SystemdError> {
        let conn = Connection::system().await.map_err(SystemdError::Connect)?;
        Systemd::with_connection(conn).await
    }

    /// Like [`Systemd::connect`] on a connection made elsewhere. It must not already be subscribed.
    pub async fn with_connection(conn: Connection) -> Result<Systemd, SystemdError> {
        let action = "subscribe to systemd's signals";
        let manager = ManagerProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| SystemdError::from_bus(action, None, e))?;
        manager.subscribe().await.map_err(|e| SystemdError::from_bus(action, None, e))?;
        Ok(Systemd { conn, manager, job_deadline: DEFAULT_JOB_DEADLINE })
    }

    /// How long jobs are awaited before [`SystemdError::JobTimeout`]; default
    /// [`DEFAULT_JOB_DEADLINE`].
    pub fn with_job_deadline(mut self, deadline: Duration) -> Systemd {
        self.job_deadline = deadline;
        self
    }

    /// The underlying bus connection. A `MessageStream` or signal stream made on it must be
    /// polled continuously: while any stream's queue is full, zbus reads nothing more from the
    /// socket, replies to this module's calls included.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Wakes systemd's event loop with a call it answers itself (`org.freedesktop.DBus.Peer.Ping`)
    /// and that changes nothing. systemd runs every timer that is due at any wake-up, and when
    /// nothing wakes it, at the next slot of its 250 ms coalescing grid (sd-event's default
    /// accuracy, which a unit cannot change). See `daemon::restart_wake`.
    pub async fn wake(&self) -> Result<(), SystemdError> {
        self.conn
            .call_method(
                Some(bus::SYSTEMD_SERVICE),
                bus::MANAGER_PATH,
                Some("org.freedesktop.DBus.Peer"),
                "Ping",
                &(),
            )
            .await
            .map(|_| ())
            .map_err(|e| SystemdError::from_bus("wake systemd", None, e))
    }
}
