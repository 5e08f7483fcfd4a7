//! Sending a structured message to journald without libsystemd, for the generator, which
//! runs before any service and cannot log through a unit's stdout.
//!
//! Falls back to /dev/kmsg (early boot, before journald) and then to stderr, as
//! systemd.generator(7) recommends.

use std::io::Write;
use std::os::unix::net::UnixDatagram;

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// syslog priorities used here.
pub const ERR: u8 = 3;
pub const WARNING: u8 = 4;
pub const INFO: u8 = 6;

/// Logs `message` with `priority` under `identifier`, plus extra `FIELD=value` pairs.
pub fn send(priority: u8, identifier: &str, message: &str, fields: &[(&str, &str)]) {
    let mut datagram = Vec::new();
    let pri = priority.to_string();
    let all = [("MESSAGE", message), ("PRIORITY", pri.as_str()), ("SYSLOG_IDENTIFIER", identifier)];
    for (key, value) in all.iter().chain(fields) {
        // The binary form (KEY\n, little-endian length, value, \n) carries values with newlines.
        datagram.extend_from_slice(key.as_bytes());
        datagram.push(b'\n');
        datagram.extend_from_slice(&(value.len() as u64).to_le_bytes());
        datagram.extend_from_slice(value.as_bytes());
        datagram.push(b'\n');
    }
    if let Ok(sock) = UnixDatagram::unbound() {
        if sock.send_to(&datagram, JOURNAL_SOCKET).is_ok() {
            return;
        }
    }
    let line = format!("<{priority}>{identifier}: {}\n", message.replace('\n', " | "));
    if let Ok(mut kmsg) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        if kmsg.write_all(line.as_bytes()).is_ok() {
            return;
        }
    }
    let _ = std::io::stderr().write_all(format!("{identifier}: {message}\n").as_bytes());
}
