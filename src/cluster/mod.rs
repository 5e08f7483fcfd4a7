//! Federation: a Docker Swarm of containerctl hosts with a cluster CA, a TLS registry with token
//! authentication, a GlusterFS shared volume and an inventory of every node.
//!
//! Docker Swarm, distribution (`docker-registry`) and GlusterFS do the distributed work; this
//! module configures, secures and supervises them. The pure parts (certificates, join tokens,
//! registry tokens, mount units) are unit-tested; [`ops`] is the I/O edge the daemon calls, and
//! [`server`] is the cluster API on port 5001 that joining and reporting nodes talk to (its errors
//! are [`api_error`]'s).

pub mod api_error;
pub mod ca;
pub mod gluster;
pub mod inventory;
pub mod ops;
pub mod peer;
pub mod registry;
pub mod server;
pub mod shared;
pub mod tls;
mod tls_io;
pub mod token;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Default port of the cluster API (TLS).
pub const API_PORT: u16 = 5001;
/// Default port of the registry (TLS).
pub const REGISTRY_PORT: u16 = 5002;
/// Docker Swarm's cluster management port.
pub const SWARM_PORT: u16 = 2377;
/// The Gluster volume behind every host's shared directory.
pub const VOLUME: &str = "containerctl";
/// The service name registry tokens are issued for (distribution's `auth.token.service`).
pub const REGISTRY_SERVICE: &str = "containerctl-registry";
/// The issuer of registry tokens (distribution's `auth.token.issuer`).
pub const REGISTRY_ISSUER: &str = "containerctld";
/// The systemd unit that runs the registry on the first manager.
pub const REGISTRY_UNIT: &str = "containerctl-registry.service";
/// The mount unit of the shared volume.
pub const MOUNT_UNIT: &str = "var-lib-containerctl-shared.mount";
/// Where the daemon writes the shared volume's mount unit; the generator installs it.
pub const MOUNT_UNIT_SOURCE: &str = "/etc/containerctl/cluster/var-lib-containerctl-shared.mount";
/// The registry's configuration (paths only, no secrets); the generator enables the registry
/// unit when it exists.
pub const REGISTRY_CONFIG: &str = "/etc/containerctl/cluster/registry.yml";
/// Where Docker looks for the CA of a registry.
pub const DOCKER_CERTS_DIR: &str = "/etc/docker/certs.d";
/// Credentials runners and Swarm use to pull from the cluster registry (see runner).
pub const REGISTRY_AUTH_FILE: &str = "/var/lib/containerctl/cluster/registry-auth.json";

/// A member's role: managers run Swarm's control plane (and a Gluster brick), workers run tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Manager,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "manager" => Some(Role::Manager),
            "worker" => Some(Role::Worker),
            _ => None,
        }
    }
}

/// This host's membership, kept in `STATE_DIR/cluster/state.json` (absent: not a member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub cluster_id: String,
    pub node_id: String,
    pub role: Role,
    /// True on the host that ran `cluster init`: it serves the cluster API and the registry and
    /// keeps the inventory.
    pub primary: bool,
    pub hostname: String,
    /// This host's address as the others reach it.
    pub addr: String,
    /// `HOST:PORT` of the cluster API.
    pub manager_api: String,
    /// `HOST:PORT` of the registry.
    pub registry: String,
    /// Gluster servers to mount the volume from (first one, then backups).
    pub gluster_servers: Vec<String>,
    pub volume: String,
    /// `sha256:HEX` of the cluster CA certificate (DER).
    pub ca_digest: String,
    /// This node's credential for the cluster API (`ID.SECRET`).
    pub credential: String,
}

/// Where the cluster's files live below the daemon's state directory.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn new(state_dir: &Path) -> Paths {
        Paths { dir: state_dir.join("cluster") }
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.crt")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    /// This member's certificate for member-to-member TLS (moves), then the CA.
    pub fn member_cert(&self) -> PathBuf {
        self.dir.join("member.crt")
    }
    pub fn member_key(&self) -> PathBuf {
        self.dir.join("member.key")
    }
    /// Data of moves being received, until they are committed or given up.
    pub fn moves(&self) -> PathBuf {
        self.dir.join("moves")
    }
    pub fn registry_dir(&self) -> PathBuf {
        self.dir.join("registry")
    }
    pub fn registry_config(&self) -> PathBuf {
        self.registry_dir().join("config.yml")
    }
    pub fn token_key(&self) -> PathBuf {
        self.registry_dir().join("token.key")
    }
    pub fn token_cert(&self) -> PathBuf {
        self.registry_dir().join("token.crt")
    }
    /// The secret the primary manager's daemon pushes with (never leaves this host).
    pub fn push_secret(&self) -> PathBuf {
        self.dir.join("push.secret")
    }
    pub fn registry_auth(&self) -> PathBuf {
        self.dir.join("registry-auth.json")
    }
    pub fn brick(&self) -> PathBuf {
        self.dir.join("brick")
    }
}

/// Reads this host's membership; `Ok(None)` when it is not in a cluster.
pub fn load_state(paths: &Paths) -> std::io::Result<Option<State>> {
    match std::fs::read(paths.state()) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", paths.state().display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn save_state(paths: &Paths, state: &State) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    write_atomic(&paths.state(), &json, 0o600)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader sees the old or the
/// new content, never a part; the parent directory is created (0700) when missing.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    crate::atomic_file::write_private(path, bytes, mode)
}

/// A fresh random identifier with a prefix (`n-…` nodes, `jt-…` join tokens, `c-…` clusters).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", &crate::digest::random_hex(6))
}

/// The host part of `HOST:PORT` (IPv6 in brackets kept as is).
pub fn host_of(addr: &str) -> &str {
    match addr.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => addr,
    }
}

/// This machine's host name.
pub fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_missing_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = Paths::new(dir.path());
        assert_eq!(load_state(&paths).expect("load"), None);
        let s = State {
            cluster_id: "c-1".into(),
            node_id: "n-1".into(),
            role: Role::Manager,
            primary: true,
            hostname: "h1".into(),
            addr: "10.0.0.1".into(),
            manager_api: "10.0.0.1:5001".into(),
            registry: "10.0.0.1:5002".into(),
            gluster_servers: vec!["10.0.0.1".into()],
            volume: VOLUME.into(),
            ca_digest: "sha256:00".into(),
            credential: "n-1.s".into(),
        };
        save_state(&paths, &s).expect("save");
        assert_eq!(load_state(&paths).expect("load"), Some(s));
        std::fs::write(paths.state(), b"{").expect("write");
        let e = load_state(&paths).expect_err("broken");
        assert!(e.to_string().contains("state.json"), "{e}");
    }

    #[test]
    fn host_of_strips_the_port() {
        assert_eq!(host_of("10.0.0.1:5001"), "10.0.0.1");
        assert_eq!(host_of("[::1]:5001"), "[::1]");
        assert_eq!(host_of("h1"), "h1");
    }
}
