//! Names of container units (`containerctl@NAME.service`) and the object paths systemd gives units
//! on the bus, escaped byte by byte; pure string work, no bus.

const UNIT_PATH_PREFIX: &str = "/org/freedesktop/systemd1/unit/";

/// Prefix and suffix of every container unit's name.
pub const UNIT_PREFIX: &str = "containerctl@";
pub const UNIT_SUFFIX: &str = ".service";
/// Glob matching every container unit, as systemd's `ListUnitsByPatterns` takes it.
pub const UNIT_PATTERN: &str = "containerctl@*.service";

/// `containerctl@NAME.service`.
pub fn unit_name(instance: &str) -> String {
    format!("{UNIT_PREFIX}{instance}{UNIT_SUFFIX}")
}

/// The NAME of `containerctl@NAME.service`, None for other units and the template itself.
pub fn instance_of(unit: &str) -> Option<&str> {
    unit.strip_prefix(UNIT_PREFIX)?.strip_suffix(UNIT_SUFFIX).filter(|name| !name.is_empty())
}

pub fn is_container_unit(unit: &str) -> bool {
    instance_of(unit).is_some()
}

/// The object path systemd gives `unit`: every byte outside `[A-Za-z0-9]` (and a leading digit)
/// becomes `_` and two lowercase hex digits, so '@' is `_40`, '.' `_2e`, '-' `_2d`, '_' `_5f`.
pub fn escape_unit_path(unit: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut path = String::with_capacity(UNIT_PATH_PREFIX.len() + unit.len() * 3);
    path.push_str(UNIT_PATH_PREFIX);
    if unit.is_empty() {
        path.push('_');
    }
    for (i, byte) in unit.bytes().enumerate() {
        if byte.is_ascii_alphabetic() || (i > 0 && byte.is_ascii_digit()) {
            path.push(char::from(byte));
        } else {
            path.push('_');
            path.push(char::from(HEX[usize::from(byte >> 4)]));
            path.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
    path
}

/// The unit name of a systemd unit object path; None for other paths, bad escapes or non-UTF-8.
pub fn unescape_unit_path(path: &str) -> Option<String> {
    let label = path.strip_prefix(UNIT_PATH_PREFIX)?;
    if label.is_empty() || label.contains('/') {
        return None;
    }
    if label == "_" {
        return Some(String::new());
    }
    let bytes = label.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let high = hex_value(*bytes.get(i + 1)?)?;
            let low = hex_value(*bytes.get(i + 2)?)?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|v| u8::try_from(v).ok())
}
