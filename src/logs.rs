//! A unit's journal, read with journalctl (the journal's own reader, stable JSON output).

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::unit::UnitName;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    pub at_us: u64,
    pub priority: u8,
    pub identifier: String,
    pub message: String,
}

/// Parses one line of `journalctl -o json`. Binary messages arrive as byte arrays.
pub fn parse_json_line(line: &str) -> Option<LogLine> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let text = |key: &str| -> Option<String> {
        match v.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(bytes) => {
                let b: Vec<u8> =
                    bytes.iter().filter_map(|x| x.as_u64().and_then(|n| u8::try_from(n).ok())).collect();
                Some(String::from_utf8_lossy(&b).into_owned())
            }
            _ => None,
        }
    };
    Some(LogLine {
        at_us: text("__REALTIME_TIMESTAMP")?.parse().ok()?,
        priority: text("PRIORITY").and_then(|p| p.parse().ok()).unwrap_or(6),
        identifier: text("SYSLOG_IDENTIFIER").unwrap_or_default(),
        message: text("MESSAGE").unwrap_or_default(),
    })
}

/// journald's "Suppressed N messages from UNIT" (its rate limit dropped lines of the unit).
pub const DROPPED_MESSAGE_ID: &str = "a596d6fe7bfa4994828e72309e95d61e";

/// A drop by journald's rate limit, as journald reported it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogDrop {
    pub at_us: u64,
    pub dropped: u64,
    pub message: String,
}

/// Parses one `journalctl -o json` line of journald's drop report if it concerns `service`.
/// journald names the unit in the message and, from systemd 2xx on, in OBJECT_SYSTEMD_UNIT.
pub fn parse_drop(line: &str, service: &str) -> Option<LogDrop> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let field = |key: &str| v.get(key).and_then(serde_json::Value::as_str);
    let message = field("MESSAGE")?;
    let ours =
        field("OBJECT_SYSTEMD_UNIT") == Some(service) || message.ends_with(&format!(" from {service}"));
    if field("MESSAGE_ID") != Some(DROPPED_MESSAGE_ID) || !ours {
        return None;
    }
    let dropped = field("N_DROPPED")
        .and_then(|n| n.parse().ok())
        .or_else(|| message.split_whitespace().nth(1)?.parse().ok())?;
    Some(LogDrop {
        at_us: field("__REALTIME_TIMESTAMP")?.parse().ok()?,
        dropped,
        message: message.to_owned(),
    })
}

/// The latest drop of the unit's lines by journald's rate limit, if the journal still has one.
pub async fn latest_drop(name: &UnitName) -> Option<LogDrop> {
    let service = name.service();
    let mut child = Command::new("journalctl")
        .args(["--no-pager", "-o", "json", "-r", &format!("MESSAGE_ID={DROPPED_MESSAGE_ID}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let out = child.stdout.take()?;
    let mut lines = BufReader::new(out).lines();
    let mut found = None;
    // Newest first; the reports of other units are skipped, up to a bound.
    for _ in 0..DROP_SCAN {
        match lines.next_line().await {
            Ok(Some(line)) => {
                if let Some(d) = parse_drop(&line, &service) {
                    found = Some(d);
                    break;
                }
            }
            _ => break,
        }
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    found
}

/// How many drop reports of all units [`latest_drop`] reads at most.
const DROP_SCAN: usize = 1000;

/// Starts journalctl for the unit's last `n` lines, following when `follow`.
pub fn spawn(name: &UnitName, n: u32, follow: bool) -> std::io::Result<Child> {
    let mut cmd = Command::new("journalctl");
    cmd.args(["--no-pager", "-o", "json", "-n", &n.to_string(), "-u", &name.service()]);
    if follow {
        cmd.arg("-f");
    }
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()).kill_on_drop(true).spawn()
}

/// The last `n` lines (empty when the journal cannot be read).
pub async fn tail(name: &UnitName, n: u32) -> Vec<LogLine> {
    read_all(spawn(name, n, false)).await
}

/// The last `n` lines logged by one run of a unit (systemd's InvocationID, in hex).
pub async fn tail_invocation(invocation: &str, n: u32) -> Vec<LogLine> {
    if invocation.is_empty() || !invocation.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Vec::new();
    }
    let child = Command::new("journalctl")
        .args([
            "--no-pager",
            "-o",
            "json",
            "-n",
            &n.to_string(),
            &format!("_SYSTEMD_INVOCATION_ID={invocation}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    read_all(child).await
}

async fn read_all(child: std::io::Result<Child>) -> Vec<LogLine> {
    let Ok(mut child) = child else { return Vec::new() };
    let Some(out) = child.stdout.take() else { return Vec::new() };
    let mut lines = BufReader::new(out).lines();
    let mut result = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(l) = parse_json_line(&line) {
            result.push(l);
        }
    }
    let _ = child.wait().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines() {
        let l = parse_json_line(r#"{"__REALTIME_TIMESTAMP":"1700000000000000","PRIORITY":"4","SYSLOG_IDENTIFIER":"web","MESSAGE":"hi"}"#)
            .expect("parses");
        assert_eq!(
            l,
            LogLine {
                at_us: 1_700_000_000_000_000,
                priority: 4,
                identifier: "web".into(),
                message: "hi".into()
            }
        );
        let b = parse_json_line(r#"{"__REALTIME_TIMESTAMP":"1","MESSAGE":[104,105,255]}"#).expect("parses");
        assert_eq!(b.message, "hi\u{fffd}");
        assert!(parse_json_line("not json").is_none());
    }

    #[test]
    fn drop_reports_of_the_unit() {
        let line = r#"{"__REALTIME_TIMESTAMP":"1700000000000000","MESSAGE_ID":"a596d6fe7bfa4994828e72309e95d61e","MESSAGE":"Suppressed 162502 messages from containerctl@web.service","N_DROPPED":"162502","OBJECT_SYSTEMD_UNIT":"containerctl@web.service","SYSLOG_IDENTIFIER":"systemd-journald"}"#;
        let d = parse_drop(line, "containerctl@web.service").expect("ours");
        assert_eq!((d.at_us, d.dropped), (1_700_000_000_000_000, 162_502));
        assert!(parse_drop(line, "containerctl@we.service").is_none());
        let old = r#"{"__REALTIME_TIMESTAMP":"1","MESSAGE_ID":"a596d6fe7bfa4994828e72309e95d61e","MESSAGE":"Suppressed 7 messages from containerctl@web.service"}"#;
        assert_eq!(parse_drop(old, "containerctl@web.service").map(|d| d.dropped), Some(7));
        let other = r#"{"__REALTIME_TIMESTAMP":"1","MESSAGE_ID":"0","MESSAGE":"Suppressed 7 messages from containerctl@web.service"}"#;
        assert!(parse_drop(other, "containerctl@web.service").is_none());
    }
}
