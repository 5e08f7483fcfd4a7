//! Who holds a TCP port: for the daemon's "address already in use", which alone says nothing an
//! administrator can act on.
//!
//! Linux only, through /proc: the listening sockets of /proc/net/tcp and /proc/net/tcp6, then the
//! process with a descriptor on that socket's inode and the systemd unit of its control group.
//! Everything is best effort: a holder that cannot be found (another namespace, no permission)
//! is `None`, never an error.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// A process that listens on the port asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// `/proc/PID/comm`: the process's name (e.g. `docker-registry`).
    pub name: String,
    /// The systemd unit of its control group (e.g. `docker-registry.service`), when it has one.
    pub unit: Option<String>,
}

/// What to do when another process holds the HTTP address (Debian's docker-registry.service
/// listens on :5000 as soon as it is installed).
pub fn in_use_message(addr: SocketAddr, holder: Option<&Holder>, config: &Path) -> String {
    let listen = format!("or set http.listen in {} to a free address", config.display());
    // e.g. "127.0.0.1:5000 is in use by docker-registry (pid 812, docker-registry.service): ..."
    match holder {
        Some(h) => {
            let (unit, stop) = match &h.unit {
                Some(u) if u.ends_with(".service") => (
                    format!(", {u}"),
                    format!("stop it and keep it from starting (`systemctl disable --now {u}`)"),
                ),
                Some(u) => (format!(", {u}"), format!("stop it (`kill {}`)", h.pid)),
                None => (String::new(), format!("stop it (`kill {}`)", h.pid)),
            };
            let registry = if h.name.contains("registry") {
                "; containerctl runs a cluster's registry itself, as containerctl-registry.service"
            } else {
                ""
            };
            format!(
                "{addr} is in use by {} (pid {}{unit}): containerctld serves its API and web page \
                 there; {stop}{registry}, {listen}, then `systemctl restart containerctld`",
                h.name, h.pid
            )
        }
        None => format!(
            "{addr} is in use by another process (`ss -ltnp 'sport = :{}'` names it): containerctld \
             serves its API and web page there; stop that process, {listen}, then `systemctl restart \
             containerctld`",
            addr.port()
        ),
    }
}

/// The listening socket's state in /proc/net/tcp.
const TCP_LISTEN: &str = "0A";

/// The process that keeps `addr` from being bound, if it can be found.
///
/// First by the socket's inode among every process's descriptors. containerctld runs without
/// CAP_SYS_PTRACE, so it cannot read the descriptors of another user's process (Debian's
/// docker-registry runs as `docker-registry`): then by the socket's owner, when exactly one
/// process (or one unit's processes) runs as that user. Root's many processes stay unnamed.
pub fn holder(addr: SocketAddr) -> Option<Holder> {
    let mut sockets = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = fs::read_to_string(table) {
            sockets.extend(listeners(&text, addr));
        }
    }
    sockets
        .iter()
        .find_map(|&(inode, _)| process_of(inode))
        .or_else(|| sockets.iter().filter(|&&(_, uid)| uid != 0).find_map(|&(_, uid)| process_of_user(uid)))
}

/// The inodes of the listening sockets in a /proc/net/tcp{,6} table that conflict with binding
/// `addr`: the same port on the same address, on a wildcard address, or any address when `addr`
/// is itself the wildcard.
pub fn listening_inodes(table: &str, addr: SocketAddr) -> Vec<u64> {
    listeners(table, addr).into_iter().map(|(inode, _)| inode).collect()
}

/// Those sockets as (inode, owner's uid).
fn listeners(table: &str, addr: SocketAddr) -> Vec<(u64, u32)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != TCP_LISTEN {
                return None;
            }
            let local = parse_local(f[1])?;
            if local.port() != addr.port() || !conflicts(local.ip(), addr.ip()) {
                return None;
            }
            let inode = f[9].parse::<u64>().ok().filter(|&inode| inode != 0)?;
            Some((inode, f[7].parse::<u32>().ok()?))
        })
        .collect()
}

/// The one process whose real or effective uid is `uid`, or the first of several in one unit.
fn process_of_user(uid: u32) -> Option<Holder> {
    let mut found: Vec<Holder> = Vec::new();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(status) = fs::read_to_string(entry.path().join("status")) else { continue };
        if !status_uids(&status).is_some_and(|(real, effective)| real == uid || effective == uid) {
            continue;
        }
        found.push(describe(pid, &entry.path()));
    }
    found.sort_by_key(|h| h.pid);
    let first = found.first()?;
    let one_unit = first.unit.is_some() && found.iter().all(|h| h.unit == first.unit);
    (found.len() == 1 || one_unit).then(|| first.clone())
}

/// The real and effective uid of a /proc/PID/status text.
fn status_uids(status: &str) -> Option<(u32, u32)> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut ids = line.split_whitespace().map(|n| n.parse::<u32>().ok());
    Some((ids.next()??, ids.next()??))
}

fn describe(pid: u32, dir: &std::path::Path) -> Holder {
    let name = fs::read_to_string(dir.join("comm"))
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_else(|_| "?".to_owned());
    let unit = fs::read_to_string(dir.join("cgroup")).ok().and_then(|c| unit_of_cgroup(&c));
    Holder { pid, name, unit }
}

fn conflicts(theirs: IpAddr, ours: IpAddr) -> bool {
    let theirs = match theirs {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(theirs, IpAddr::V4),
        v4 => v4,
    };
    // A dual-stack `[::]` listener holds the port for IPv4 too.
    theirs.is_unspecified() || ours.is_unspecified() || theirs == ours
}

/// `0100007F:1388` (little-endian words, as the kernel prints them) → 127.0.0.1:5000.
fn parse_local(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?.swap_bytes())),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The first process with a descriptor on socket `inode`.
fn process_of(inode: u64) -> Option<Holder> {
    let target = format!("socket:[{inode}]");
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds =
            fds.flatten().any(|fd| fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()));
        if holds {
            return Some(describe(pid, &entry.path()));
        }
    }
    None
}

/// The systemd unit in a /proc/PID/cgroup text: the innermost `.service` or `.scope` of the path.
pub fn unit_of_cgroup(text: &str) -> Option<String> {
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .or_else(|| text.lines().find_map(|l| l.split_once(":name=systemd:").map(|(_, p)| p)))?;
    path.split('/').rev().find(|c| c.ends_with(".service") || c.ends_with(".scope")).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1388 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1388 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   108        0 5151 1 0000000000000000 100 0 0 10 0
";

    fn at(s: &str) -> SocketAddr {
        s.parse().expect("a test address")
    }

    #[test]
    fn finds_the_listener_on_the_port_not_connections() {
        assert_eq!(listening_inodes(TCP, at("127.0.0.1:5000")), [4242]);
        assert_eq!(listening_inodes(TCP, at("127.0.0.2:5000")), Vec::<u64>::new());
        assert_eq!(listening_inodes(TCP, at("0.0.0.0:5000")), [4242]);
        assert_eq!(listening_inodes(TCP, at("127.0.0.1:8080")), [4343], "0.0.0.0 holds every address");
        assert_eq!(listening_inodes(TCP, at("127.0.0.1:5001")), Vec::<u64>::new());
    }

    #[test]
    fn the_owner_of_the_socket_and_of_processes() {
        assert_eq!(listeners(TCP6, at("127.0.0.1:5000")), [(5151, 108)]);
        assert_eq!(status_uids("Name:\tdocker-registry\nUid:\t108\t108\t108\t108\n"), Some((108, 108)));
        assert_eq!(status_uids("Name:\tx\n"), None);
    }

    #[test]
    fn a_dual_stack_listener_holds_ipv4_too() {
        assert_eq!(listening_inodes(TCP6, at("127.0.0.1:5000")), [5151]);
        assert_eq!(parse_local("00000000000000000000000001000000:0050"), Some(at("[::1]:80")));
        assert_eq!(parse_local("0000000000000000FFFF00000100007F:1388"), Some(at("[::ffff:127.0.0.1]:5000")));
    }

    #[test]
    fn the_unit_comes_from_the_control_group() {
        assert_eq!(
            unit_of_cgroup("0::/system.slice/docker-registry.service\n").as_deref(),
            Some("docker-registry.service")
        );
        assert_eq!(
            unit_of_cgroup("0::/user.slice/user-1000.slice/session-3.scope\n").as_deref(),
            Some("session-3.scope")
        );
        assert_eq!(unit_of_cgroup("0::/\n"), None);
    }

    #[test]
    fn the_message_names_the_holder_and_what_to_do() {
        let registry =
            Holder { pid: 812, name: "docker-registry".into(), unit: Some("docker-registry.service".into()) };
        let config = Path::new("/etc/containerctl/containerctl.toml");
        assert_eq!(
            in_use_message(at("127.0.0.1:5000"), Some(&registry), config),
            "127.0.0.1:5000 is in use by docker-registry (pid 812, docker-registry.service): containerctld \
             serves its API and web page there; stop it and keep it from starting (`systemctl disable --now \
             docker-registry.service`); containerctl runs a cluster's registry itself, as \
             containerctl-registry.service, or set http.listen in /etc/containerctl/containerctl.toml to a \
             free address, then `systemctl restart containerctld`"
        );
        let unknown = in_use_message(at("127.0.0.1:5000"), None, config);
        assert!(
            unknown.starts_with("127.0.0.1:5000 is in use by another process (`ss -ltnp 'sport = :5000'`"),
            "{unknown}"
        );
    }

    #[test]
    fn finds_this_process_holding_a_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let addr = listener.local_addr().expect("its address");
        let holder = holder(addr).expect("this process holds the port");
        assert_eq!(holder.pid, std::process::id());
        assert!(!holder.name.is_empty());
        drop(listener);
    }
}
