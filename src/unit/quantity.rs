//! Durations and sizes written the way systemd and Docker users write them.

use std::time::Duration;

/// Parses `"500ms"`, `"2s"`, `"1m30s"`, `"1h"`, `"1.5s"`. A bare number means seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return seconds(secs, text);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("`{text}` is not a duration"));
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| format!("`{text}` is not a duration"))?;
        rest = rest[num_len..].trim_start();
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "" => return Err(format!("`{text}` needs a unit after {value} (ms, s, m, h or d)")),
            other => return Err(format!("unknown time unit `{other}` in `{text}` (use ms, s, m, h or d)")),
        };
        total += value * factor;
        rest = rest[unit_len..].trim_start();
    }
    seconds(total, text)
}

fn seconds(secs: f64, text: &str) -> Result<Duration, String> {
    if !secs.is_finite() || !(0.0..=365.0 * 86400.0).contains(&secs) {
        return Err(format!("`{text}` is out of range (0 to 365d)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a byte size: `"512M"`, `"1G"`, `"64k"`, `"1.5GiB"`, or a bare number of bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let num_len = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let value: f64 = s[..num_len].parse().map_err(|_| format!("`{text}` is not a size (like 512M or 2G)"))?;
    let factor: f64 = match s[num_len..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        other => return Err(format!("unknown size unit `{other}` in `{text}` (use K, M, G or T)")),
    };
    let bytes = value * factor;
    if !bytes.is_finite() || bytes < 0.0 || bytes > 1024f64.powi(5) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(bytes as u64)
}

/// Formats a duration for a systemd unit file (`TimeoutStopSec=` and friends).
pub fn systemd_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("2x").expect_err("invalid").contains("unknown time unit `x`"));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("999d").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("64kib"), Ok(64 * 1024));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12Q").expect_err("invalid").contains("`q`"));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn systemd_format() {
        assert_eq!(systemd_duration(Duration::from_secs(15)), "15s");
        assert_eq!(systemd_duration(Duration::from_millis(1500)), "1500ms");
    }
}
