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
    let Ok(mut child) = spawn(name, n, false) else { return Vec::new() };
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
}
