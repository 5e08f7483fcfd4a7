//! The `[service]` table: how systemd runs the unit (restart policy, timeouts, dependencies,
//! enabled, protected), and the defaults of a unit without one.

use std::time::Duration;

use super::{closest, Validator};
use crate::unit::raw::{RawService, S};
use crate::unit::{parse_duration, LogRateLimit, Restart, Service, UnitName};

/// The longest `stop_timeout`: the runner gets this plus a margin from systemd to stop.
pub const MAX_STOP_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Suffixes that make an `after`/`requires` entry a systemd unit name rather than a NAME.
const SYSTEMD_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".target",
    ".mount",
    ".automount",
    ".device",
    ".path",
    ".timer",
    ".slice",
    ".scope",
    ".swap",
];

impl Validator<'_> {
    pub(super) fn service(&mut self, name: &UnitName, raw: RawService) -> Option<Service> {
        let default = Service::default();
        let restart = match raw.restart {
            None => Some(default.restart),
            Some(r) => match r.get_ref().as_str() {
                "no" => Some(Restart::No),
                "on-failure" => Some(Restart::OnFailure),
                "always" => Some(Restart::Always),
                other => {
                    let hint = match other {
                        "unless-stopped" => Some(
                            "systemd owns restarts: use \"always\" and stop the unit to keep it down"
                                .to_owned(),
                        ),
                        _ => closest(other, &["no", "on-failure", "always"])
                            .map(|c| format!("did you mean \"{c}\"?")),
                    };
                    self.error(
                        r.span(),
                        format!("restart = \"{other}\" is not one of \"no\", \"on-failure\", \"always\""),
                        hint.as_deref(),
                    );
                    None
                }
            },
        };
        let restart_sec = self.duration(raw.restart_sec, default.restart_sec, "restart_sec");
        let stop_timeout =
            self.duration_max(raw.stop_timeout, default.stop_timeout, "stop_timeout", MAX_STOP_TIMEOUT);
        let log_rate_limit = match raw.log_rate_limit {
            None => Some(default.log_rate_limit),
            Some(v) => match parse_log_rate_limit(v.get_ref()) {
                Ok(limit) => Some(limit),
                Err(message) => {
                    self.error(
                        v.span(),
                        format!("log_rate_limit = \"{}\": {message}", v.get_ref()),
                        Some("write \"off\" or \"MESSAGES/DURATION\", like \"10000/30s\""),
                    );
                    None
                }
            },
        };
        let after = self.dependencies(name, raw.after, "after");
        let requires = self.dependencies(name, raw.requires, "requires");
        Some(Service {
            restart: restart?,
            restart_sec: restart_sec?,
            stop_timeout: stop_timeout?,
            log_rate_limit: log_rate_limit?,
            after: after?,
            requires: requires?,
            enabled: raw.enabled.map_or(default.enabled, S::into_inner),
            protected: raw.protected.map_or(default.protected, S::into_inner),
        })
    }

    fn dependencies(&mut self, own: &UnitName, list: Vec<S<String>>, key: &str) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut ok = true;
        for item in list {
            let s = item.get_ref();
            if SYSTEMD_SUFFIXES.iter().any(|suffix| s.ends_with(suffix)) {
                let valid =
                    s.len() <= 255 && s.chars().all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c));
                if *s == own.service() {
                    self.error(item.span(), format!("{key}: a unit cannot depend on itself"), None);
                    ok = false;
                } else if valid {
                    out.push(s.clone());
                } else {
                    self.error(item.span(), format!("{key}: `{s}` is not a valid systemd unit name"), None);
                    ok = false;
                }
            } else {
                match UnitName::new(s) {
                    Ok(n) if &n == own => {
                        self.error(item.span(), format!("{key}: a unit cannot depend on itself"), None);
                        ok = false;
                    }
                    Ok(n) => out.push(n.service()),
                    Err(e) => {
                        self.error(
                            item.span(),
                            format!("{key}: {e}"),
                            Some("name another unit (NAME) or a systemd unit (like network-online.target)"),
                        );
                        ok = false;
                    }
                }
            }
        }
        ok.then_some(out)
    }
}

/// `"off"` or `"BURST/INTERVAL"` (`"10000/30s"`): at most BURST messages per INTERVAL.
pub fn parse_log_rate_limit(text: &str) -> Result<LogRateLimit, String> {
    if text == "off" {
        return Ok(LogRateLimit::Off);
    }
    let Some((burst, interval)) = text.split_once('/') else {
        return Err("not \"off\" nor MESSAGES/DURATION".to_owned());
    };
    let burst: u32 = match burst.trim().parse() {
        Ok(0) => return Err("the number of messages must be at least 1 (use \"off\" for no limit)".into()),
        Ok(n) if n >= crate::unit::MAX_LOG_BURST => {
            return Err(format!(
                "at most {} messages (use \"off\" for no limit)",
                crate::unit::MAX_LOG_BURST - 1
            ))
        }
        Ok(n) => n,
        Err(_) => return Err(format!("`{burst}` is not a number of messages")),
    };
    let interval = parse_duration(interval.trim()).map_err(|e| format!("interval: {e}"))?;
    if interval < Duration::from_millis(1) {
        return Err("the interval must be at least 1ms (use \"off\" for no limit)".into());
    }
    Ok(LogRateLimit::Limit { burst, interval })
}

impl Default for Service {
    fn default() -> Self {
        Service {
            restart: Restart::OnFailure,
            restart_sec: Duration::from_secs(2),
            stop_timeout: Duration::from_secs(10),
            log_rate_limit: LogRateLimit::Off,
            after: Vec::new(),
            requires: Vec::new(),
            enabled: true,
            protected: false,
        }
    }
}
