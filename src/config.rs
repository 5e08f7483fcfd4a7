//! The daemon's configuration, /etc/containerctl/containerctl.toml. Every key is optional; the
//! defaults are the documented behaviour (containerctl.toml(5), packaging/containerctl.toml).
//!
//! Parsing is pure; `load` is the only function that reads a file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::diag::Diagnostic;
use crate::unit::parse_duration;

pub const DEFAULT_PATH: &str = "/etc/containerctl/containerctl.toml";
pub const DEFAULT_SOCKET: &str = "/run/containerctl/containerctl.sock";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/containerctl";
/// The only directory the API writes unit files to (admin units, highest precedence).
pub const ADMIN_UNIT_DIR: &str = "/etc/containerctl/units";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Group whose members are operators on the local socket.
    pub group: String,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub unit_dir: PathBuf,
    pub policy: Policy,
    pub history: History,
    /// Where the web page and HTTP API listen; None disables HTTP.
    pub http_listen: Option<std::net::SocketAddr>,
    /// How often a cluster member reports its inventory (and 3× that: silent means down).
    pub cluster_report_interval: Duration,
    /// How long a move's staging may wait for its source before it is removed (`[cluster]
    /// move_staging_expiry`).
    pub move_staging_expiry: Duration,
    /// `[notify]`: the webhooks events are sent to.
    pub notify: crate::webhook::Settings,
    /// `[units] parallel_starts`: how many container units may be starting at once on this host
    /// (see `runner::slots`); None: the default, [`default_parallel_starts`].
    pub parallel_starts: Option<u32>,
}

/// The most `[units] parallel_starts` may say: each is a file the runners make.
pub const MAX_PARALLEL_STARTS: u32 = 1024;

/// `[units] parallel_starts` when unset: four per CPU, at least 4. A container's start is CPU
/// work in dockerd, containerd and runc, with waits between (a start's round trips): at 500
/// units on two cores 4 slots took 129 s to start them, 8 took 93 s and 16 took 90 s
/// (BENCHMARKS.md, "Reboot with 500 enabled units converges").
pub fn default_parallel_starts(cpus: usize) -> u32 {
    u32::try_from(cpus.saturating_mul(4)).unwrap_or(MAX_PARALLEL_STARTS).clamp(4, MAX_PARALLEL_STARTS)
}

/// What a non-admin's unit definition may contain. Admins are not limited.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Host bind-mount sources must be one of these directories or below one.
    pub allowed_host_paths: Vec<PathBuf>,
    /// Devices an operator may map: exact paths, or a prefix ending in `*` (`/dev/ttyUSB*`).
    pub allowed_devices: Vec<String>,
    /// systemd units (`network-online.target`) that `after`/`requires` may name besides
    /// container units.
    pub allowed_units: Vec<String>,
    /// Host ports an operator may publish.
    pub allowed_ports: Vec<PortRange>,
    /// Docker named volumes any operator unit may mount (besides its own, NAME, NAME-*, NAME_*).
    pub allowed_volumes: Vec<String>,
    /// `shared:` names any operator unit may mount (besides its own, scoped like volumes).
    pub allowed_shared: Vec<String>,
    /// Docker networks an operator unit may join (besides Docker's default `bridge` and `none`).
    pub allowed_networks: Vec<String>,
    /// Secrets an operator unit may reference in `secrets` and `env_secrets`: exact NAMEs, or a
    /// prefix ending in `*` (`web-*`; `*` is every secret).
    pub allowed_secrets: Vec<String>,
    /// Host ports the daemon and the cluster listen on: never an operator's, whatever
    /// `allowed_ports` says. Derived from `http.listen` and the cluster's fixed ports.
    pub reserved_ports: Vec<Reserved>,
    /// The configuration file, named in what a refusal tells an admin to change.
    pub file: String,
}

/// The allowed targets of `after`/`requires` when `policy.allowed_units` is not set: targets
/// that only order a unit after the network or the clock, and start nothing harmful.
pub const DEFAULT_ALLOWED_UNITS: &[&str] =
    &["network-online.target", "network.target", "time-sync.target", "nss-lookup.target"];

/// Host ports the cluster uses on a member: its API, its registry, Docker Swarm's management,
/// node and overlay ports, glusterd and the Gluster bricks.
pub const CLUSTER_RESERVED_PORTS: &[(u16, u16, &str)] = &[
    (5001, 5001, "the cluster API"),
    (5002, 5002, "the cluster registry"),
    (2377, 2377, "Docker Swarm's cluster management"),
    (7946, 7946, "Docker Swarm's node communication"),
    (4789, 4789, "Docker Swarm's overlay network (VXLAN)"),
    (24007, 24008, "glusterd"),
    (49152, 49251, "the GlusterFS bricks"),
];

/// An inclusive range of ports, written `"N"` or `"N-M"` (or the integer N) in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    pub const UNPRIVILEGED: PortRange = PortRange { start: 1024, end: 65535 };

    pub fn contains(&self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }

    /// Parses `"8080"` or `"1024-65535"`: ports from 1 to 65535, the first not above the last.
    pub fn parse(s: &str) -> Result<PortRange, String> {
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{s}` is not a port from 1 to 65535 or a range N-M of them"))
        };
        let range = match s.split_once('-') {
            Some((a, b)) => PortRange { start: port(a)?, end: port(b)? },
            None => {
                let p = port(s)?;
                PortRange { start: p, end: p }
            }
        };
        if range.start > range.end {
            return Err(format!("`{s}`: the first port of a range must not be above the last"));
        }
        Ok(range)
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// Host ports that belong to the daemon or the cluster, and what uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    pub ports: PortRange,
    pub what: String,
    /// What an admin can change so that an operator may have it (None: nothing, it stays theirs).
    pub fix: Option<String>,
}

impl Policy {
    /// The ports the daemon (HTTP on `http_listen`) and the cluster use on this host. The cluster
    /// ports are reserved whether or not the host is a member yet: it may join later.
    pub fn reserved_ports(http_listen: Option<std::net::SocketAddr>) -> Vec<Reserved> {
        let mut out = Vec::new();
        if let Some(addr) = http_listen {
            out.push(Reserved {
                ports: PortRange { start: addr.port(), end: addr.port() },
                what: format!("containerctld's web page and HTTP API (http.listen = \"{addr}\")"),
                fix: Some("move http.listen to another port".into()),
            });
        }
        for (start, end, what) in CLUSTER_RESERVED_PORTS {
            out.push(Reserved {
                ports: PortRange { start: *start, end: *end },
                what: (*what).into(),
                fix: None,
            });
        }
        out
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allowed_host_paths: Vec::new(),
            allowed_devices: Vec::new(),
            allowed_units: DEFAULT_ALLOWED_UNITS.iter().map(|s| (*s).to_owned()).collect(),
            allowed_ports: vec![PortRange::UNPRIVILEGED],
            allowed_volumes: Vec::new(),
            allowed_shared: Vec::new(),
            allowed_networks: Vec::new(),
            allowed_secrets: Vec::new(),
            reserved_ports: Policy::reserved_ports(Some(default_http_listen())),
            file: DEFAULT_PATH.into(),
        }
    }
}

fn default_http_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 5000))
}

#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub revisions_per_unit: u32,
    pub events_per_unit: u32,
    pub event_max_age: Duration,
    pub audit_max_rows: u32,
}

impl Default for History {
    fn default() -> Self {
        History {
            revisions_per_unit: 100,
            events_per_unit: 1000,
            event_max_age: Duration::from_secs(30 * 86400),
            audit_max_rows: 100_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            group: "containerctl".into(),
            socket: DEFAULT_SOCKET.into(),
            state_dir: DEFAULT_STATE_DIR.into(),
            unit_dir: ADMIN_UNIT_DIR.into(),
            policy: Policy::default(),
            history: History::default(),
            http_listen: Some(default_http_listen()),
            cluster_report_interval: Duration::from_secs(15),
            move_staging_expiry: Duration::from_secs(30 * 60),
            notify: crate::webhook::Settings::default(),
            parallel_starts: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    history: RawHistory,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    cluster: RawCluster,
    #[serde(default)]
    notify: RawNotify,
    #[serde(default)]
    units: RawUnits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnits {
    parallel_starts: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    #[serde(default)]
    webhooks: Vec<Spanned<String>>,
    events: Option<Vec<Spanned<String>>>,
    format: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    attempts: Option<Spanned<i64>>,
    queue: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    /// `"15s"`: how often members report to the manager.
    report_interval: Option<String>,
    /// `"30m"`: how long a move's staging waits for its source.
    move_staging_expiry: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    /// `"127.0.0.1:5000"`, or `""` to serve no HTTP at all.
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    group: Option<String>,
    socket: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    allowed_host_paths: Vec<PathBuf>,
    #[serde(default)]
    allowed_devices: Vec<String>,
    allowed_units: Option<Vec<Spanned<String>>>,
    allowed_ports: Option<Vec<Spanned<toml::Value>>>,
    #[serde(default)]
    allowed_volumes: Vec<Spanned<String>>,
    #[serde(default)]
    allowed_shared: Vec<Spanned<String>>,
    #[serde(default)]
    allowed_networks: Vec<Spanned<String>>,
    #[serde(default)]
    allowed_secrets: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHistory {
    revisions_per_unit: Option<u32>,
    events_per_unit: Option<u32>,
    event_max_age: Option<String>,
    audit_max_rows: Option<u32>,
}

/// Parses the text of a configuration file named `file` (for messages).
pub fn parse(file: &str, text: &str) -> Result<Config, Diagnostic> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        Diagnostic::at(file, text, e.span().unwrap_or(0..0), e.message().trim_end().to_owned(), None)
    })?;
    let mut c = Config::default();
    if let Some(g) = raw.api.group {
        c.group = g;
    }
    if let Some(s) = raw.api.socket {
        c.socket = s;
    }
    for p in &raw.policy.allowed_host_paths {
        if !p.is_absolute() || p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            return Err(Diagnostic::file_level(
                file,
                format!("policy.allowed_host_paths: `{}` must be an absolute path without ..", p.display()),
                None,
            ));
        }
    }
    c.policy.allowed_host_paths = raw.policy.allowed_host_paths;
    c.policy.allowed_devices = raw.policy.allowed_devices;
    c.policy.file = file.to_owned();
    let at = |span: std::ops::Range<usize>, message: String, hint: &str| {
        Diagnostic::at(file, text, span, message, Some(hint.to_owned()))
    };
    if let Some(units) = raw.policy.allowed_units {
        let mut out = Vec::new();
        for u in units {
            if !systemd_unit_name(u.get_ref()) {
                return Err(at(
                    u.span(),
                    format!("policy.allowed_units: `{}` is not a systemd unit name", u.get_ref()),
                    "name the unit with its type, such as \"network-online.target\"; container units are always allowed",
                ));
            }
            out.push(u.into_inner());
        }
        c.policy.allowed_units = out;
    }
    if let Some(ports) = raw.policy.allowed_ports {
        let mut out = Vec::new();
        for p in ports {
            let span = p.span();
            let parsed = match p.into_inner() {
                toml::Value::Integer(n) => u16::try_from(n)
                    .ok()
                    .filter(|n| *n > 0)
                    .map(|n| PortRange { start: n, end: n })
                    .ok_or_else(|| format!("`{n}` is not a port from 1 to 65535")),
                toml::Value::String(t) => PortRange::parse(&t),
                other => Err(format!("`{other}` is not a port number or a string \"N\" or \"N-M\"")),
            };
            let range = parsed.map_err(|e| {
                at(
                    span,
                    format!("policy.allowed_ports: {e}"),
                    "write ports and ranges such as [\"1024-65535\"] or [8080, \"9000-9100\"]",
                )
            })?;
            out.push(range);
        }
        c.policy.allowed_ports = out;
    }
    for (key, list, target) in [
        ("allowed_volumes", raw.policy.allowed_volumes, &mut c.policy.allowed_volumes),
        ("allowed_shared", raw.policy.allowed_shared, &mut c.policy.allowed_shared),
        ("allowed_networks", raw.policy.allowed_networks, &mut c.policy.allowed_networks),
    ] {
        for n in list {
            if !crate::unit::valid_volume_name(n.get_ref()) {
                return Err(at(
                    n.span(),
                    format!("policy.{key}: `{}` is not a name", n.get_ref()),
                    "names are 1 to 128 ASCII letters, digits, _, . and -, starting with a letter or digit",
                ));
            }
            if key == "allowed_networks" && n.get_ref() == "host" {
                return Err(at(
                    n.span(),
                    "policy.allowed_networks: the host network cannot be allowed to operators".into(),
                    "only admins may write network = \"host\"; remove it from the list",
                ));
            }
            target.push(n.into_inner());
        }
    }
    for p in raw.policy.allowed_secrets {
        let prefix = p.get_ref().strip_suffix('*').unwrap_or(p.get_ref());
        let valid = prefix.is_empty() || crate::secrets::SecretName::new(prefix).is_ok();
        if !valid {
            return Err(at(
                p.span(),
                format!("policy.allowed_secrets: `{}` is not a secret name or a prefix ending in *", p.get_ref()),
                "write names like \"db-password\" or prefixes like \"web-*\" (1-64 characters of [A-Za-z0-9][A-Za-z0-9_.-]*)",
            ));
        }
        c.policy.allowed_secrets.push(p.into_inner());
    }
    if let Some(listen) = raw.http.listen {
        c.http_listen = if listen.is_empty() {
            None
        } else {
            let addr: std::net::SocketAddr = listen.parse().map_err(|_| {
                Diagnostic::file_level(file, format!("http.listen: `{listen}` is not ADDRESS:PORT"), None)
            })?;
            if !addr.ip().is_loopback() {
                return Err(Diagnostic::file_level(
                    file,
                    format!("http.listen: `{listen}` is beyond loopback, which needs TLS, and this version serves HTTP without TLS"),
                    Some("listen on 127.0.0.1 or [::1] and put a TLS reverse proxy in front".into()),
                ));
            }
            Some(addr)
        };
    }
    c.policy.reserved_ports = Policy::reserved_ports(c.http_listen);
    if let Some(i) = raw.cluster.report_interval {
        let d = parse_duration(&i)
            .map_err(|e| Diagnostic::file_level(file, format!("cluster.report_interval: {e}"), None))?;
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&d) {
            return Err(Diagnostic::file_level(
                file,
                format!("cluster.report_interval: `{i}` must be between 1s and 1h"),
                None,
            ));
        }
        c.cluster_report_interval = d;
    }
    if let Some(i) = raw.cluster.move_staging_expiry {
        let d = parse_duration(&i)
            .map_err(|e| Diagnostic::file_level(file, format!("cluster.move_staging_expiry: {e}"), None))?;
        if !(Duration::from_secs(5)..=Duration::from_secs(7 * 86400)).contains(&d) {
            return Err(Diagnostic::file_level(
                file,
                format!("cluster.move_staging_expiry: `{i}` must be between 5s and 7d"),
                None,
            ));
        }
        c.move_staging_expiry = d;
    }
    c.notify = parse_notify(file, text, raw.notify)?;
    if let Some(n) = raw.units.parallel_starts {
        let valid = u32::try_from(*n.get_ref()).ok().filter(|n| (1..=MAX_PARALLEL_STARTS).contains(n));
        c.parallel_starts = Some(valid.ok_or_else(|| {
            at(
                n.span(),
                format!("units.parallel_starts: `{}` is not from 1 to {MAX_PARALLEL_STARTS}", n.get_ref()),
                "how many units may be starting at once; leave it out for four per CPU",
            )
        })?);
    }
    let h = raw.history;
    let d = History::default();
    c.history = History {
        revisions_per_unit: h.revisions_per_unit.unwrap_or(d.revisions_per_unit).max(1),
        events_per_unit: h.events_per_unit.unwrap_or(d.events_per_unit),
        event_max_age: match h.event_max_age {
            Some(s) => parse_duration(&s)
                .map_err(|e| Diagnostic::file_level(file, format!("history.event_max_age: {e}"), None))?,
            None => d.event_max_age,
        },
        audit_max_rows: h.audit_max_rows.unwrap_or(d.audit_max_rows),
    };
    Ok(c)
}

/// `[notify]`. A URL's user information and query may hold a token: errors quote it redacted,
/// the file's line included.
fn parse_notify(file: &str, text: &str, raw: RawNotify) -> Result<crate::webhook::Settings, Diagnostic> {
    use crate::webhook::{self, EventKind, Format};
    let at = |span: std::ops::Range<usize>, message: String, hint: &str| {
        Diagnostic::at(file, text, span, message, Some(hint.to_owned()))
    };
    let mut n = webhook::Settings::default();
    for (i, url) in raw.webhooks.iter().enumerate() {
        let endpoint = webhook::Endpoint::parse(url.get_ref()).map_err(|e| {
            redacted_at(
                at(
                    url.span(),
                    format!("notify.webhooks[{i}]: {e}"),
                    "write URLs such as \"https://ntfy.example/alerts\" or \"http://127.0.0.1:8080/hook\"",
                ),
                text,
                url.span(),
            )
        })?;
        if n.webhooks.contains(&endpoint) {
            return Err(redacted_at(
                at(
                    url.span(),
                    format!("notify.webhooks[{i}]: `{endpoint}` is listed twice"),
                    "list each webhook once",
                ),
                text,
                url.span(),
            ));
        }
        n.webhooks.push(endpoint);
    }
    if let Some(events) = raw.events {
        let mut out = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let Some(kind) = EventKind::parse(e.get_ref()) else {
                let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                let near = names.iter().find(|k| strsim::levenshtein(k, e.get_ref()) <= 3);
                let hint = match near {
                    Some(k) => format!("did you mean \"{k}\"? the events are {}", names.join(", ")),
                    None => format!("the events are {}", names.join(", ")),
                };
                return Err(at(
                    e.span(),
                    format!("notify.events[{i}]: `{}` is not an event", e.get_ref()),
                    &hint,
                ));
            };
            if !out.contains(&kind) {
                out.push(kind);
            }
        }
        n.events = Some(out);
    }
    if let Some(f) = raw.format {
        n.format = Format::parse(f.get_ref()).ok_or_else(|| {
            at(
                f.span(),
                format!("notify.format: `{}` is not a format", f.get_ref()),
                "write \"json\" (the default), \"text\" (ntfy) or \"form\" (Gotify)",
            )
        })?;
    }
    if let Some(t) = raw.timeout {
        let d = parse_duration(t.get_ref())
            .ok()
            .filter(|d| (Duration::from_secs(1)..=Duration::from_secs(300)).contains(d))
            .ok_or_else(|| {
                at(
                    t.span(),
                    format!("notify.timeout: `{}` is not a duration from 1s to 5min", t.get_ref()),
                    "write a duration such as \"10s\" (the default)",
                )
            })?;
        n.timeout = d;
    }
    if let Some(a) = raw.attempts {
        n.attempts = u32::try_from(*a.get_ref())
            .ok()
            .filter(|a| (1..=webhook::MAX_ATTEMPTS).contains(a))
            .ok_or_else(|| {
                at(
                    a.span(),
                    format!("notify.attempts: `{}` is not from 1 to {}", a.get_ref(), webhook::MAX_ATTEMPTS),
                    "attempts counts the first one too; the default is 6",
                )
            })?;
    }
    if let Some(q) = raw.queue {
        n.queue =
            usize::try_from(*q.get_ref()).ok().filter(|q| (1..=100_000).contains(q)).ok_or_else(|| {
                at(
                    q.span(),
                    format!("notify.queue: `{}` is not from 1 to 100000", q.get_ref()),
                    "the default is 256",
                )
            })?;
    }
    Ok(n)
}

/// `d` with the URLs in its quoted source line redacted (every string on it: a line may list
/// several webhooks). The location stays the file's; the underline keeps the literal's width.
fn redacted_at(mut d: Diagnostic, text: &str, span: std::ops::Range<usize>) -> Diagnostic {
    let redact_strings = |s: &str| -> String {
        s.split('"')
            .enumerate()
            .map(|(i, part)| if i % 2 == 1 { crate::webhook::redact(part) } else { part.to_owned() })
            .collect::<Vec<_>>()
            .join("\"")
    };
    d.source_line = redact_strings(&d.source_line);
    if let Some(literal) = text.get(span) {
        d.width = redact_strings(literal).chars().count().max(1);
    }
    d
}

/// A systemd unit name with its type suffix, in the characters unit files may use for one.
fn systemd_unit_name(s: &str) -> bool {
    s.len() <= 255
        && s.rsplit_once('.').is_some_and(|(stem, suffix)| !stem.is_empty() && !suffix.is_empty())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
}

/// Reads the configuration; a missing file means every default.
pub fn load(path: &Path) -> Result<Config, Diagnostic> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&path.display().to_string(), &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(Diagnostic::file_level(&path.display().to_string(), format!("cannot read: {e}"), None)),
    }
}

/// The configuration file the generator and the runner read: `$CONTAINERCTL_CONFIG` (tests) or
/// [`DEFAULT_PATH`].
pub fn path() -> PathBuf {
    std::env::var_os("CONTAINERCTL_CONFIG").map_or_else(|| PathBuf::from(DEFAULT_PATH), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let mut want = Config::default();
        want.policy.file = "c.toml".into();
        assert_eq!(parse("c.toml", ""), Ok(want));
        assert_eq!(Config::default().policy.file, DEFAULT_PATH);
    }

    #[test]
    fn the_shipped_file_uncommented_is_the_defaults() {
        let text: String = include_str!("../packaging/containerctl.toml")
            .lines()
            .filter_map(|l| l.strip_prefix('#').filter(|l| !l.starts_with(' ') && !l.is_empty()))
            .map(|l| format!("{l}\n"))
            .collect();
        let mut want = Config::default();
        want.policy.file = "c.toml".into();
        assert_eq!(parse("c.toml", &text), Ok(want), "{text}");
    }

    #[test]
    fn policy_defaults() {
        let p = parse("c.toml", "").expect("valid").policy;
        assert_eq!(
            p.allowed_units,
            ["network-online.target", "network.target", "time-sync.target", "nss-lookup.target"]
        );
        assert_eq!(p.allowed_ports, [PortRange { start: 1024, end: 65535 }]);
        assert!(p.allowed_volumes.is_empty() && p.allowed_shared.is_empty() && p.allowed_networks.is_empty());
        assert!(p.allowed_secrets.is_empty(), "operators may use no secret unless an admin says so");
        let reserved: Vec<String> = p.reserved_ports.iter().map(|r| r.ports.to_string()).collect();
        assert_eq!(reserved, ["5000", "5001", "5002", "2377", "7946", "4789", "24007-24008", "49152-49251"]);
        // The daemon's own port follows http.listen, and goes with it.
        let p = parse("c.toml", "[http]\nlisten = \"[::1]:8000\"\n").expect("valid").policy;
        assert_eq!(p.reserved_ports[0].ports, PortRange { start: 8000, end: 8000 });
        let p = parse("c.toml", "[http]\nlisten = \"\"\n").expect("valid").policy;
        assert_eq!(p.reserved_ports[0].ports, PortRange { start: 5001, end: 5001 });
    }

    #[test]
    fn policy_keys_are_read() {
        let p = parse(
            "c.toml",
            "[policy]\nallowed_units = [\"sshd.service\"]\nallowed_ports = [\"8000-8100\", 9000, \"9443\"]\n\
             allowed_volumes = [\"common\"]\nallowed_shared = [\"media\"]\nallowed_networks = [\"frontend\"]\n\
             allowed_secrets = [\"db-password\", \"web-*\", \"*\"]\n",
        )
        .expect("valid")
        .policy;
        assert_eq!(p.allowed_units, ["sshd.service"]);
        assert_eq!(
            p.allowed_ports,
            [
                PortRange { start: 8000, end: 8100 },
                PortRange { start: 9000, end: 9000 },
                PortRange { start: 9443, end: 9443 }
            ]
        );
        assert_eq!(
            (p.allowed_volumes, p.allowed_shared, p.allowed_networks),
            (vec!["common".to_owned()], vec!["media".to_owned()], vec!["frontend".to_owned()])
        );
        assert_eq!(p.allowed_secrets, ["db-password", "web-*", "*"]);
        // Empty lists mean nothing beyond the fixed rules.
        let p = parse("c.toml", "[policy]\nallowed_units = []\nallowed_ports = []\n").expect("valid").policy;
        assert!(p.allowed_units.is_empty() && p.allowed_ports.is_empty());
    }

    /// Each (TEXT, LINE, COLUMN, MESSAGE PART) is refused there, saying that; the errors.
    fn refused(cases: &[(&str, usize, usize, &str)]) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for (text, line, col, says) in cases {
            let e = parse("c.toml", text).expect_err(text);
            assert_eq!((e.line, e.column), (*line, *col), "{text}: {e}");
            assert!(e.message.contains(says), "{text}: {e}");
            out.push(e);
        }
        out
    }

    #[test]
    fn bad_policy_values_say_what_is_wrong_and_where() {
        refused(&[
            ("[policy]\nallowed_ports = [\"1024-65536\"]\n", 2, 18, "not a port from 1 to 65535"),
            ("[policy]\nallowed_ports = [\"2000-1000\"]\n", 2, 18, "must not be above the last"),
            ("[policy]\nallowed_ports = [0]\n", 2, 18, "`0` is not a port"),
            ("[policy]\nallowed_ports = [70000]\n", 2, 18, "`70000` is not a port"),
            ("[policy]\nallowed_ports = [\"http\"]\n", 2, 18, "`http` is not a port"),
            ("[policy]\nallowed_ports = [\"1024-\"]\n", 2, 18, "is not a port"),
            ("[policy]\nallowed_ports = [true]\n", 2, 18, "`true` is not a port number or a string"),
            ("[policy]\nallowed_ports = \"1024-65535\"\n", 2, 17, ""),
            ("[policy]\nallowed_units = [\"sshd\"]\n", 2, 18, "not a systemd unit name"),
            ("[policy]\nallowed_units = [\"a b.service\"]\n", 2, 18, "not a systemd unit name"),
            (
                "[policy]\nallowed_volumes = [\"/srv\"]\n",
                2,
                20,
                "policy.allowed_volumes: `/srv` is not a name",
            ),
            ("[policy]\nallowed_shared = [\"a/b\"]\n", 2, 19, "policy.allowed_shared: `a/b` is not a name"),
            ("[policy]\nallowed_networks = [\"host\"]\n", 2, 21, "the host network cannot be allowed"),
            ("[policy]\nallowed_secrets = [\"a/b\"]\n", 2, 20, "`a/b` is not a secret name or a prefix"),
            ("[policy]\nallowed_secrets = [\"*db\"]\n", 2, 20, "`*db` is not a secret name or a prefix"),
        ]);
        let e = parse("c.toml", "[policy]\nallowed_ports = [\"22-\"]\n").expect_err("bad");
        assert!(e.hint.as_deref().is_some_and(|h| h.contains("1024-65535")), "{e}");
    }

    #[test]
    fn parallel_starts_is_read_and_bounded() {
        assert_eq!(parse("c.toml", "").expect("valid").parallel_starts, None);
        assert_eq!(
            parse("c.toml", "[units]\nparallel_starts = 3\n").expect("valid").parallel_starts,
            Some(3)
        );
        refused(&[
            ("[units]\nparallel_starts = 0\n", 2, 19, "units.parallel_starts: `0` is not from 1 to 1024"),
            ("[units]\nparallel_starts = 1025\n", 2, 19, "units.parallel_starts: `1025` is not from 1"),
            ("[units]\nparallel_starts = -2\n", 2, 19, "units.parallel_starts: `-2` is not from 1"),
            ("[units]\nparallel_start = 2\n", 2, 1, "unknown field `parallel_start`"),
        ]);
        assert_eq!(
            (default_parallel_starts(0), default_parallel_starts(2), default_parallel_starts(8)),
            (4, 8, 32)
        );
    }

    #[test]
    fn notify_keys_are_read() {
        let n = parse(
            "c.toml",
            "[notify]\nwebhooks = [\"https://ntfy.example/alerts?auth=tk\", \"http://127.0.0.1:8099/hook\"]\n\
             events = [\"rolled_back\", \"unit_failed\", \"rolled_back\"]\nformat = \"text\"\n\
             timeout = \"3s\"\nattempts = 2\nqueue = 10\n",
        )
        .expect("valid")
        .notify;
        let shown: Vec<String> = n.webhooks.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["https://ntfy.example/alerts?***", "http://127.0.0.1:8099/hook"]);
        use crate::webhook::{EventKind, Format};
        assert_eq!(n.events, Some(vec![EventKind::RolledBack, EventKind::UnitFailed]));
        assert_eq!((n.format, n.timeout, n.attempts, n.queue), (Format::Text, Duration::from_secs(3), 2, 10));
        assert_eq!(parse("c.toml", "").expect("valid").notify, crate::webhook::Settings::default());
    }

    #[test]
    fn bad_notify_values_name_the_key_and_hide_tokens() {
        let errors = refused(&[
            (
                "[notify]\nwebhooks = [\"ftp://u:pw@h/x?t=t0k\"]\n",
                2,
                13,
                "`ftp://***@h/x?***`: the scheme `ftp`",
            ),
            ("[notify]\nwebhooks = [\"http://a/\", \"h/x?t=t0k\"]\n", 2, 26, "notify.webhooks[1]: `h/x?***`"),
            ("[notify]\nwebhooks = [\"http://a/?t=t0k\", \"http://a/?t=t0k\"]\n", 2, 32, "listed twice"),
            ("[notify]\nevents = [\"unit_fail\"]\n", 2, 11, "notify.events[0]: `unit_fail` is not an event"),
            ("[notify]\nformat = \"xml\"\n", 2, 10, "notify.format: `xml` is not a format"),
            ("[notify]\ntimeout = \"0s\"\n", 2, 11, "notify.timeout: `0s` is not a duration from 1s to 5min"),
            ("[notify]\nattempts = 0\n", 2, 12, "notify.attempts: `0` is not from 1 to 20"),
            ("[notify]\nqueue = -1\n", 2, 9, "notify.queue: `-1` is not from 1"),
            ("[notify]\nwebhook = []\n", 2, 1, "unknown field `webhook`"),
        ]);
        for e in errors {
            assert!(!e.to_string().contains("t0k") && !e.to_string().contains("pw@"), "{e}");
        }
        let e = parse("c.toml", "[notify]\nevents = [\"unit_fail\"]\n").expect_err("bad");
        assert!(e.hint.as_deref().is_some_and(|h| h.contains("did you mean \"unit_failed\"")), "{e}");
    }

    #[test]
    fn keys_are_read_and_unknown_ones_refused() {
        let c = parse(
            "c.toml",
            "[policy]\nallowed_host_paths = [\"/srv/containers\"]\nallowed_devices = [\"/dev/ttyUSB*\"]\n\
             [history]\nevent_max_age = \"7d\"\n",
        )
        .expect("valid");
        assert_eq!(c.policy.allowed_host_paths, [PathBuf::from("/srv/containers")]);
        assert_eq!(c.history.event_max_age, Duration::from_secs(7 * 86400));
        let e = parse("c.toml", "[policy]\nallowed_paths = []\n").expect_err("unknown key");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("allowed_paths"));
        let e = parse("c.toml", "[policy]\nallowed_host_paths = [\"srv\"]\n").expect_err("relative");
        assert!(e.message.contains("absolute"));
        assert_eq!(
            parse("c.toml", "[http]\nlisten = \"[::1]:5001\"\n").map(|c| c.http_listen.map(|a| a.port())),
            Ok(Some(5001))
        );
        assert_eq!(parse("c.toml", "[http]\nlisten = \"\"\n").map(|c| c.http_listen), Ok(None));
        let e = parse("c.toml", "[http]\nlisten = \"0.0.0.0:5000\"\n").expect_err("beyond loopback");
        assert!(e.message.contains("needs TLS"), "{e}");
    }
}
