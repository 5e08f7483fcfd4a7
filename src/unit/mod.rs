//! The unit model: a container described in TOML, parsed into [`raw::RawUnit`] and validated
//! into [`Unit`]. A `Unit` can only be built by [`parse`], so holding one means it is valid.
//!
//! Nothing here does I/O: the caller reads the file and passes its text.

pub mod keys;
mod quantity;
mod raw;
pub mod redact;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use quantity::{parse_duration, parse_size, systemd_duration};

use crate::diag::Diagnostic;
use crate::secrets::SecretName;

/// A unit NAME: 1–64 characters of `[a-z0-9][a-z0-9_.-]*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitName(String);

impl UnitName {
    pub const RULE: &'static str = "1-64 characters of [a-z0-9][a-z0-9_.-]*";

    pub fn new(name: &str) -> Result<Self, String> {
        let bytes = name.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= 64
            && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
            && bytes.iter().all(|&b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.' || b == b'-'
            });
        if ok {
            Ok(UnitName(name.to_owned()))
        } else {
            Err(format!("`{}` is not a valid unit name: use {}", name.escape_debug(), Self::RULE))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The systemd unit that runs this container unit.
    pub fn service(&self) -> String {
        format!("containerctl@{}.service", self.0)
    }

    /// The Docker container's name.
    pub fn container_name(&self) -> String {
        format!("containerctl-{}", self.0)
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated container unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub name: UnitName,
    pub description: Option<String>,
    pub container: Container,
    /// The secrets `[container]` references (`secrets`, `env_secrets`). Kept beside `container`
    /// so that the definition hash of units without secrets stays what it was.
    pub secrets: SecretRefs,
    pub service: Service,
    pub health: Option<Health>,
    /// Present when the unit runs as a Docker Swarm service instead of one local container.
    pub deploy: Option<Deploy>,
    /// `[update]`: how `containerctl update` moves the unit to newer versions.
    pub update: Option<Update>,
    /// `[container] entrypoint`: replaces the image's ENTRYPOINT (an empty list clears it). Kept
    /// beside `container`, like `secrets`, so that the definition hash of units without one stays
    /// what it was.
    pub entrypoint: Option<Vec<String>>,
}

impl Unit {
    /// The `[update]` settings, with their defaults when the file has no such table.
    pub fn update_settings(&self) -> Update {
        self.update.clone().unwrap_or_default()
    }
}

/// `[update]`: which newer versions `containerctl update --check` and `--all` may move the unit
/// to, how long an update is watched before it counts as good, and whether a timer does it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub policy: UpdatePolicy,
    /// A regular expression (already checked to compile) that candidate tags must match; its
    /// capture groups, or without any its runs of digits, are the numbers versions compare by.
    pub track: Option<String>,
    /// How long the unit must stay up and healthy after an update before it counts as good.
    pub soak: Duration,
    /// A systemd OnCalendar= expression (checked for its shape; systemd parses it at reload).
    pub schedule: Option<String>,
    /// Whether the scheduled run applies the update (true) or only checks for one (false).
    pub auto: bool,
}

impl Update {
    pub const DEFAULT_SOAK: Duration = Duration::from_secs(30);
    pub const MAX_SOAK: Duration = Duration::from_secs(3600);
}

impl Default for Update {
    fn default() -> Self {
        Update {
            policy: UpdatePolicy::Manual,
            track: None,
            soak: Update::DEFAULT_SOAK,
            schedule: None,
            auto: false,
        }
    }
}

/// Which newer versions an update may move to, compared with the running one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdatePolicy {
    /// Only the versions an admin names (`containerctl update NAME --to VERSION`).
    Manual,
    /// Same major and minor number.
    Patch,
    /// Same major number.
    Minor,
    /// Any newer version.
    Any,
}

impl UpdatePolicy {
    pub const NAMES: &'static [&'static str] = &["manual", "patch", "minor", "any"];

    pub fn as_str(self) -> &'static str {
        match self {
            UpdatePolicy::Manual => "manual",
            UpdatePolicy::Patch => "patch",
            UpdatePolicy::Minor => "minor",
            UpdatePolicy::Any => "any",
        }
    }

    pub fn parse(s: &str) -> Option<UpdatePolicy> {
        match s {
            "manual" => Some(UpdatePolicy::Manual),
            "patch" => Some(UpdatePolicy::Patch),
            "minor" => Some(UpdatePolicy::Minor),
            "any" => Some(UpdatePolicy::Any),
            _ => None,
        }
    }
}

/// The secrets a unit references by NAME; their values are read by the runner at each start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretRefs {
    /// `secrets`: each mounted read-only at `/run/secrets/NAME`, in the order written.
    pub files: Vec<SecretName>,
    /// `env_secrets`: environment variable → the secret that is its value.
    pub env: BTreeMap<String, SecretName>,
}

impl SecretRefs {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.env.is_empty()
    }

    /// Every secret referenced, each once, sorted.
    pub fn names(&self) -> std::collections::BTreeSet<&SecretName> {
        self.files.iter().chain(self.env.values()).collect()
    }
}

/// `[deploy]`: run the unit as the Swarm service `containerctl-NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    /// Number of tasks (1 to 1000).
    pub replicas: u32,
    /// Swarm placement constraints, each `KEY==VALUE` or `KEY!=VALUE`.
    pub constraints: Vec<String>,
    /// At most this many tasks on one node.
    pub max_replicas_per_node: Option<u32>,
    /// A rolling update (`containerctl update`) replaces this many tasks at a time...
    pub update_parallelism: u32,
    /// ...and waits this long between one batch and the next.
    pub update_delay: Duration,
    /// Whether a task's old container stops before its new one starts (the default, so a task
    /// that publishes a port or holds a file never runs twice), or after.
    pub update_order: UpdateOrder,
}

impl Deploy {
    pub const MAX_REPLICAS: u32 = 1000;
    pub const MAX_UPDATE_DELAY: Duration = Duration::from_secs(3600);
}

impl Default for Deploy {
    fn default() -> Self {
        Deploy {
            replicas: 1,
            constraints: Vec::new(),
            max_replicas_per_node: None,
            update_parallelism: 1,
            update_delay: Duration::ZERO,
            update_order: UpdateOrder::StopFirst,
        }
    }
}

/// `[deploy] update_order`: Swarm's `UpdateConfig.Order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOrder {
    StopFirst,
    StartFirst,
}

impl UpdateOrder {
    pub const NAMES: &'static [&'static str] = &["stop-first", "start-first"];

    pub fn parse(s: &str) -> Option<UpdateOrder> {
        match s {
            "stop-first" => Some(UpdateOrder::StopFirst),
            "start-first" => Some(UpdateOrder::StartFirst),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UpdateOrder::StopFirst => "stop-first",
            UpdateOrder::StartFirst => "start-first",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    /// Repository without tag, e.g. `registry.example:5002/camera`.
    pub image: String,
    /// The pinned tag.
    pub version: String,
    /// `sha256:<64 hex>` when the image is pinned by digest too.
    pub digest: Option<String>,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub devices: Vec<Device>,
    pub volumes: Vec<Volume>,
    pub ports: Vec<Port>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub read_only: bool,
    /// Run Docker's init (tini) as PID 1 to forward signals and reap zombies.
    pub init: bool,
    /// Docker's privileged mode: every device and capability. Admin-only under the policy.
    pub privileged: bool,
    /// The kernel's no_new_privs for the container's processes (setuid binaries and file
    /// capabilities grant nothing). On by default; `false` is admin-only under the policy, and
    /// privileged mode turns it off (see [`Container::runs_with_no_new_privileges`]).
    pub no_new_privileges: bool,
    /// Capabilities added to Docker's default set (`NET_ADMIN`, without the `CAP_` prefix).
    pub capabilities: Vec<String>,
    /// Docker network mode: `bridge` (default), `host`, `none` or a network's name.
    pub network: Option<String>,
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// CPU limit in billionths of a CPU (Docker's NanoCpus).
    pub nano_cpus: Option<u64>,
}

impl Container {
    /// Whether the container gets Docker's `no-new-privileges` security option.
    pub fn runs_with_no_new_privileges(&self) -> bool {
        self.no_new_privileges && !self.privileged
    }

    /// `image:version`, the reference the runner makes sure is present.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.image, self.version)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub host: PathBuf,
    pub container: PathBuf,
    /// cgroup permissions: some of `r`, `w`, `m`.
    pub permissions: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// An absolute path on the host.
    Host(PathBuf),
    /// A Docker named volume.
    Named(String),
    /// A cluster volume below /var/lib/containerctl/shared.
    Shared(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub source: VolumeSource,
    pub target: PathBuf,
    pub read_only: bool,
}

impl Volume {
    /// Where the cluster's shared volume is mounted on every host.
    pub const SHARED_ROOT: &'static str = "/var/lib/containerctl/shared";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub host_ip: Option<String>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl Port {
    /// Whether both claim the same host socket: the same protocol and port on addresses that
    /// overlap. No address is every address (Docker binds 0.0.0.0 and ::), 0.0.0.0 every IPv4
    /// address and :: every address.
    pub fn conflicts(&self, other: &Port) -> bool {
        let covers = |a: &Option<String>, b: &Option<String>| match a.as_deref().map(str::parse) {
            None => true,
            Some(Ok(std::net::IpAddr::V6(ip))) if ip.is_unspecified() => true,
            Some(Ok(std::net::IpAddr::V4(ip))) if ip.is_unspecified() => {
                b.as_deref().is_none_or(|b| b.parse::<std::net::Ipv4Addr>().is_ok())
            }
            Some(_) => a == b,
        };
        self.protocol == other.protocol
            && self.host_port == other.host_port
            && (covers(&self.host_ip, &other.host_ip) || covers(&other.host_ip, &self.host_ip))
    }

    /// `[IP:]PORT/PROTOCOL` on the host, as a message names it.
    pub fn host_socket(&self) -> String {
        match &self.host_ip {
            Some(ip) if ip.contains(':') => format!("[{ip}]:{}/{}", self.host_port, self.protocol.as_str()),
            Some(ip) => format!("{ip}:{}/{}", self.host_port, self.protocol.as_str()),
            None => format!("{}/{}", self.host_port, self.protocol.as_str()),
        }
    }
}

#[cfg(test)]
mod port_tests {
    use super::*;

    fn port(ip: Option<&str>, host_port: u16, protocol: Protocol) -> Port {
        Port { host_ip: ip.map(str::to_owned), host_port, container_port: 80, protocol }
    }

    #[test]
    fn ports_conflict_on_the_same_socket_only() {
        let any = port(None, 8080, Protocol::Tcp);
        assert!(any.conflicts(&port(None, 8080, Protocol::Tcp)));
        assert!(any.conflicts(&port(Some("127.0.0.1"), 8080, Protocol::Tcp)));
        assert!(port(Some("::1"), 8080, Protocol::Tcp).conflicts(&any));
        assert!(!any.conflicts(&port(None, 8081, Protocol::Tcp)));
        assert!(!any.conflicts(&port(None, 8080, Protocol::Udp)));
        let v4 = port(Some("0.0.0.0"), 8080, Protocol::Tcp);
        assert!(v4.conflicts(&port(Some("10.0.0.1"), 8080, Protocol::Tcp)));
        assert!(!v4.conflicts(&port(Some("::1"), 8080, Protocol::Tcp)));
        assert!(port(Some("::"), 8080, Protocol::Tcp).conflicts(&port(
            Some("10.0.0.1"),
            8080,
            Protocol::Tcp
        )));
        assert!(!port(Some("127.0.0.1"), 8080, Protocol::Tcp).conflicts(&port(
            Some("127.0.0.2"),
            8080,
            Protocol::Tcp
        )));
        assert!(port(Some("127.0.0.1"), 53, Protocol::Udp).conflicts(&port(
            Some("127.0.0.1"),
            53,
            Protocol::Udp
        )));
        assert_eq!(port(Some("::1"), 53, Protocol::Udp).host_socket(), "[::1]:53/udp");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    No,
    OnFailure,
    Always,
}

impl Restart {
    /// The value of systemd's `Restart=`.
    pub fn systemd(self) -> &'static str {
        match self {
            Restart::No => "no",
            Restart::OnFailure => "on-failure",
            Restart::Always => "always",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub restart: Restart,
    pub restart_sec: Duration,
    pub stop_timeout: Duration,
    pub log_rate_limit: LogRateLimit,
    /// systemd unit names, already mapped (`db` → `containerctl@db.service`).
    pub after: Vec<String>,
    pub requires: Vec<String>,
    pub enabled: bool,
    pub protected: bool,
}

/// The burst that stands for no limit: systemd has no "off" per unit, and journald multiplies the
/// burst by up to 12 (free disk space) in 32 bits.
pub const MAX_LOG_BURST: u32 = 10_000_000;

/// journald's per-unit rate limit on the unit's log (`LogRateLimitIntervalSec=`,
/// `LogRateLimitBurst=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRateLimit {
    /// Every line is kept: journald's rate limit is off for the unit.
    Off,
    /// At most `burst` messages per `interval`; journald drops the rest and says how many.
    Limit { burst: u32, interval: Duration },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

impl Health {
    /// How long the runner may go without a watchdog ping before systemd kills it.
    pub fn watchdog(&self) -> Duration {
        (self.interval * 2 + self.timeout).max(Duration::from_secs(20))
    }

    /// The longest a healthy container can take to be reported healthy: start period,
    /// then every allowed failure and one success.
    pub fn worst_case_ready(&self) -> Duration {
        self.start_period + (self.interval + self.timeout) * (self.retries + 1)
    }
}

/// Parses and validates the text of unit `name` read from `file`.
///
/// `file` only labels diagnostics. On failure every problem found is returned, each with its
/// position in `text`.
pub fn parse(name: &str, file: &str, text: &str) -> Result<Unit, Vec<Diagnostic>> {
    validate::parse(name, file, text)
}

/// A Docker volume or network name, or a `shared:` name: 1 to 128 ASCII letters, digits, `_`,
/// `.` and `-`, starting with a letter or digit.
pub fn valid_volume_name(n: &str) -> bool {
    validate::valid_volume_name(n)
}

/// The secret NAMEs a unit file's text references in `[container]` `secrets` and `env_secrets`,
/// sorted, each once; read from the TOML as it is, so a file that does not validate counts too.
pub fn referenced_secrets(text: &str) -> Vec<String> {
    let Ok(doc) = toml_edit::Document::parse(text) else { return Vec::new() };
    let Some(container) = doc.get("container") else { return Vec::new() };
    let mut out = std::collections::BTreeSet::new();
    if let Some(list) = container.get("secrets").and_then(toml_edit::Item::as_array) {
        out.extend(list.iter().filter_map(|v| v.as_str()).map(str::to_owned));
    }
    if let Some(env) = container.get("env_secrets").and_then(toml_edit::Item::as_table_like) {
        out.extend(env.iter().filter_map(|(_, v)| v.as_str()).map(str::to_owned));
    }
    out.into_iter().collect()
}

/// Derives the NAME from a unit file name (`web.toml` → `web`).
pub fn name_from_file_name(file_name: &str) -> Result<UnitName, String> {
    let stem =
        file_name.strip_suffix(".toml").ok_or_else(|| format!("`{file_name}` does not end in .toml"))?;
    UnitName::new(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["web", "a", "0cam", "db_1.prod-x", &"a".repeat(64)] {
            assert!(UnitName::new(good).is_ok(), "{good}");
        }
        for bad in ["", "Web", "-x", ".x", "_x", "a/b", "..", "a b", "a\0", &"a".repeat(65), "é"] {
            assert!(UnitName::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(UnitName::new("web").map(|n| n.service()), Ok("containerctl@web.service".into()));
    }

    #[test]
    fn referenced_secrets_come_from_the_text() {
        let text = "[container]\nimage = \"a\"\nsecrets = [\"tls\", \"db\"]\n[container.env_secrets]\nPW = \"db\"\nK = \"api\"\n";
        assert_eq!(referenced_secrets(text), ["api", "db", "tls"]);
        // An invalid unit (no version, a bad name) still says what it would use.
        assert_eq!(referenced_secrets("container = { env_secrets = { A = \"a/b\" } }\n"), ["a/b"]);
        assert!(referenced_secrets("[container]\nenv = { PW = \"db\" }\n").is_empty());
        assert!(referenced_secrets("not toml [").is_empty());
    }

    #[test]
    fn file_names() {
        assert_eq!(name_from_file_name("cam.toml").map(|n| n.0), Ok("cam".into()));
        assert!(name_from_file_name("cam.yaml").is_err());
        assert!(name_from_file_name("Cam.toml").is_err());
    }
}
