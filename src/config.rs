//! The daemon's configuration, /etc/containerctl/containerctl.toml. Every key is optional; the
//! defaults are the documented behaviour (containerctl.toml(5), packaging/containerctl.toml).
//!
//! Parsing is pure; `load` is the only function that reads a file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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
}

/// What a non-admin's unit definition may contain. Admins are not limited.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    /// Host bind-mount sources must be one of these directories or below one.
    pub allowed_host_paths: Vec<PathBuf>,
    /// Devices an operator may map: exact paths, or a prefix ending in `*` (`/dev/ttyUSB*`).
    pub allowed_devices: Vec<String>,
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
            http_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 5000))),
            cluster_report_interval: Duration::from_secs(15),
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    /// `"15s"`: how often members report to the manager.
    report_interval: Option<String>,
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
        assert_eq!(parse("c.toml", ""), Ok(Config::default()));
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
