//! The `[container]` entries that reach into the host: `devices`, `volumes` and `ports`, each a
//! string in Docker's short syntax, and the path and name rules they share with the rest.

use std::path::{Component, Path, PathBuf};

use super::Validator;
use crate::unit::raw::S;
use crate::unit::{Device, Port, Protocol, Volume, VolumeSource};

impl Validator<'_> {
    pub(super) fn device(&mut self, d: S<String>) -> Option<Device> {
        let span = d.span();
        let parts: Vec<&str> = d.get_ref().split(':').collect();
        let (host, container, perms) = match parts.as_slice() {
            [h] => (*h, *h, "rwm"),
            [h, c] => (*h, *c, "rwm"),
            [h, c, p] => (*h, *c, *p),
            _ => ("", "", ""),
        };
        let perms_ok = !perms.is_empty()
            && perms.chars().all(|c| "rwm".contains(c))
            && perms.chars().collect::<std::collections::BTreeSet<_>>().len() == perms.len();
        if !clean_absolute(host) || !clean_absolute(container) || !perms_ok {
            self.error(
                span,
                format!("device `{}` is not HOST[:CONTAINER[:PERMISSIONS]]", d.get_ref()),
                Some("paths are absolute without `..`, permissions are some of r, w, m: \"/dev/ttyUSB0:/dev/ttyS0:rw\""),
            );
            return None;
        }
        Some(Device {
            host: PathBuf::from(host),
            container: PathBuf::from(container),
            permissions: perms.to_owned(),
        })
    }

    pub(super) fn volume(&mut self, v: S<String>) -> Option<Volume> {
        let span = v.span();
        let parts: Vec<&str> = v.get_ref().split(':').collect();
        let (source, rest): (Option<VolumeSource>, &[&str]) = match parts.as_slice() {
            ["shared", name, rest @ ..] if !name.starts_with('/') => {
                (valid_volume_name(name).then(|| VolumeSource::Shared((*name).to_owned())), rest)
            }
            [src, rest @ ..] if src.starts_with('/') => {
                (clean_absolute(src).then(|| VolumeSource::Host(PathBuf::from(src))), rest)
            }
            [src, rest @ ..] => {
                (valid_volume_name(src).then(|| VolumeSource::Named((*src).to_owned())), rest)
            }
            [] => (None, &[]),
        };
        let (target, read_only) = match rest {
            [t] => (Some(*t), Some(false)),
            [t, "ro"] => (Some(*t), Some(true)),
            [t, "rw"] => (Some(*t), Some(false)),
            _ => (None, None),
        };
        match (source, target.filter(|t| clean_absolute(t)), read_only) {
            (Some(source), Some(target), Some(read_only)) => {
                Some(Volume { source, target: PathBuf::from(target), read_only })
            }
            _ => {
                self.error(
                    span,
                    format!("volume `{}` is not SOURCE:TARGET[:ro|rw]", v.get_ref()),
                    Some("SOURCE is an absolute host path, a volume name, or shared:NAME; TARGET is an absolute path without `..`"),
                );
                None
            }
        }
    }

    pub(super) fn port(&mut self, p: S<String>) -> Option<Port> {
        let span = p.span();
        let parsed = parse_port(p.get_ref());
        if parsed.is_none() {
            self.error(
                span,
                format!("port `{}` is not [IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp|sctp]", p.get_ref()),
                Some("for example \"8080:80\" or \"127.0.0.1:9000:9000/udp\"; ports are 1 to 65535"),
            );
        }
        parsed
    }
}

/// Absolute, and no `.`/`..` components or empty segments that could escape or confuse.
pub(super) fn clean_absolute(p: &str) -> bool {
    p.starts_with('/')
        && !p.contains('\0')
        && !p.contains("//")
        && Path::new(p).components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && !p.split('/').any(|s| s == "." || s == "..")
}

pub(in crate::unit) fn valid_volume_name(n: &str) -> bool {
    n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.len() <= 128
        && n.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

pub(super) fn parse_port(s: &str) -> Option<Port> {
    let (spec, protocol) = match s.rsplit_once('/') {
        Some((spec, "tcp")) => (spec, Protocol::Tcp),
        Some((spec, "udp")) => (spec, Protocol::Udp),
        Some((spec, "sctp")) => (spec, Protocol::Sctp),
        Some(_) => return None,
        None => (s, Protocol::Tcp),
    };
    let (host_ip, ports) = if let Some(rest) = spec.strip_prefix('[') {
        let (ip, rest) = rest.split_once("]:")?;
        ip.parse::<std::net::Ipv6Addr>().ok()?;
        (Some(ip.to_owned()), rest)
    } else {
        match spec.split(':').collect::<Vec<_>>().as_slice() {
            [ip, _, _] => {
                ip.parse::<std::net::Ipv4Addr>().ok()?;
                (Some((*ip).to_owned()), &spec[ip.len() + 1..])
            }
            _ => (None, spec),
        }
    };
    let (host, container) = ports.split_once(':')?;
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
    Some(Port { host_ip, host_port: port(host)?, container_port: port(container)?, protocol })
}
