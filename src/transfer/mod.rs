//! The data of a move: a unit's named and host-path volumes as one tar stream between two
//! daemons, described first by a [`Manifest`] (every entry's path, kind, mode, owner, time, size,
//! symlink target, hard link) and checked by the sums of its files after the last byte.
//!
//! Everything the receiving host reads comes from another host and is hostile until checked:
//! [`Manifest::validate`] (pure) refuses a manifest with a path that climbs or is absolute, a
//! symlink that points out of its volume, a hard link to anything but an earlier file of its
//! volume, a set-user-ID or set-group-ID mode, more entries or bytes than the limits, and
//! volumes that are not the unit's own. The stream must then follow the manifest entry by entry
//! ([`receive`]): a header that differs in path, kind, size or link target, a device node, or a
//! byte more than announced stops it, and nothing is written outside the staging roots. The
//! receiver writes what the manifest says (mode, owner, times), never what a header says.
//!
//! The sender is [`source`]: it walks a volume with lstat (the same rules, so a dry run names
//! every blocker before anything stops) and packs it, hashing each file as it is read. On both
//! sides the hashing runs on a thread of its own ([`hashing`]), beside the reading and sending
//! there and the writing here, on the same buffers; [`pipe`] hands the stream between the request
//! body and the blocking threads that pack and receive it.

pub mod hashing;
pub mod pipe;
pub mod receive;
pub mod source;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// At most this many entries in one move (files, directories, links).
pub const MAX_ENTRIES: usize = 2_000_000;
/// At most this long a path inside a volume, in bytes.
pub const MAX_PATH: usize = 4096;
/// At most this long one path component, in bytes.
pub const MAX_NAME: usize = 255;
/// Permission bits a moved entry may have: no set-user-ID or set-group-ID.
pub const MODE_BITS: u32 = 0o1777;

/// What kind of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Dir,
    File,
    Symlink,
    /// A second name of an earlier file (`target` is that file's path).
    Hardlink,
}

/// One entry of a volume; `path` is relative to the volume's root ("" is the root itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    #[serde(default)]
    pub size: u64,
    /// Symlink target, or the earlier path a hard link names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Where a volume's data lives, on both hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase", tag = "kind", content = "name")]
pub enum VolumeId {
    /// A Docker named volume.
    Named(String),
    /// A host directory, at the same path on the target.
    Host(PathBuf),
}

impl std::fmt::Display for VolumeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VolumeId::Named(n) => write!(f, "volume {n}"),
            VolumeId::Host(p) => write!(f, "host path {}", p.display()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeData {
    pub volume: VolumeId,
    pub entries: Vec<Entry>,
}

/// Every volume a move copies, in stream order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub volumes: Vec<VolumeData>,
}

/// A file of the stream: its volume's index and its path.
pub type FileKey = (usize, String);

/// SHA-256 of every file in stream order, sent after the stream: the receiver compares its own.
pub type Sums = Vec<String>;

/// A refusal of something another host sent: which rule, and the value that broke it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (rule: {rule})")]
pub struct Refusal {
    pub rule: &'static str,
    pub message: String,
}

pub fn refuse(rule: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { rule, message: message.into() }
}

impl Manifest {
    pub fn bytes(&self) -> u64 {
        self.entries().filter(|(_, e)| e.kind == Kind::File).map(|(_, e)| e.size).sum()
    }

    pub fn files(&self) -> usize {
        self.entries().filter(|(_, e)| e.kind == Kind::File).count()
    }

    fn entries(&self) -> impl Iterator<Item = (&VolumeData, &Entry)> {
        self.volumes.iter().flat_map(|v| v.entries.iter().map(move |e| (v, e)))
    }

    /// Checks a manifest another host sent against the volumes the unit declares (`expected`,
    /// in the unit's order) and `max_bytes`. Nothing here trusts the sender.
    pub fn validate(&self, expected: &[VolumeId], max_bytes: u64) -> Result<(), Refusal> {
        let got: Vec<&VolumeId> = self.volumes.iter().map(|v| &v.volume).collect();
        if got != expected.iter().collect::<Vec<_>>() {
            let names = |v: &[&VolumeId]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            return Err(refuse(
                "volumes of the unit",
                format!(
                    "the stream carries [{}] but the unit declares [{}]",
                    names(&got),
                    names(&expected.iter().collect::<Vec<_>>())
                ),
            ));
        }
        let count: usize = self.volumes.iter().map(|v| v.entries.len()).sum();
        if count > MAX_ENTRIES {
            return Err(refuse(
                "entry limit",
                format!("{count} entries; at most {MAX_ENTRIES} are accepted"),
            ));
        }
        let mut total: u64 = 0;
        for v in &self.volumes {
            check_volume_id(&v.volume)?;
            validate_volume(v)?;
            for e in &v.entries {
                total = total.checked_add(e.size).ok_or_else(|| refuse("size", "sizes overflow"))?;
            }
        }
        if total > max_bytes {
            return Err(refuse(
                "size",
                format!("the stream claims {total} bytes; at most {max_bytes} were announced and fit"),
            ));
        }
        Ok(())
    }
}

/// A Docker volume name or an absolute, normal host path.
pub fn check_volume_id(v: &VolumeId) -> Result<(), Refusal> {
    match v {
        VolumeId::Named(n) => {
            let ok = n.len() >= 2
                && n.len() <= MAX_NAME
                && n.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && n.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if ok {
                Ok(())
            } else {
                Err(refuse(
                    "volume name",
                    format!("`{n}` is not a Docker volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)"),
                ))
            }
        }
        VolumeId::Host(p) => {
            let normal = p.is_absolute()
                && p.components().skip(1).all(|c| matches!(c, Component::Normal(_)))
                && p.components().count() > 1;
            if normal {
                Ok(())
            } else {
                Err(refuse(
                    "host path",
                    format!("`{}` is not an absolute path without `.` or `..` below /", p.display()),
                ))
            }
        }
    }
}

/// A relative path of plain components ("" is the root).
fn check_path(path: &str) -> Result<(), Refusal> {
    if path.len() > MAX_PATH {
        return Err(refuse("path length", format!("a path of {} bytes; at most {MAX_PATH}", path.len())));
    }
    if path.is_empty() {
        return Ok(());
    }
    if path.starts_with('/') {
        return Err(refuse("relative paths", format!("`{path}` is absolute")));
    }
    for part in path.split('/') {
        match part {
            "" | "." => {
                return Err(refuse("relative paths", format!("`{path}` has an empty or `.` component")))
            }
            ".." => return Err(refuse("no path traversal", format!("`{path}` climbs out with `..`"))),
            p if p.len() > MAX_NAME => {
                return Err(refuse(
                    "path length",
                    format!("`{path}` has a component longer than {MAX_NAME} bytes"),
                ))
            }
            p if p.contains('\0') => {
                return Err(refuse("relative paths", format!("`{path}` holds a NUL byte")))
            }
            _ => {}
        }
    }
    Ok(())
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

/// Where a symlink at `path` pointing to `target` lands, lexically, relative to the volume's
/// root; None when it leaves the volume (or is absolute).
pub fn symlink_inside(path: &str, target: &str) -> Option<String> {
    if target.is_empty() || target.starts_with('/') || target.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = parent(path).split('/').filter(|p| !p.is_empty()).collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

fn validate_volume(v: &VolumeData) -> Result<(), Refusal> {
    let mut seen: HashMap<&str, Kind> = HashMap::new();
    let Some(root) = v.entries.first() else {
        return Err(refuse("manifest", format!("{} has no root entry", v.volume)));
    };
    if !root.path.is_empty() || root.kind != Kind::Dir {
        return Err(refuse(
            "manifest",
            format!("the first entry of {} must be its root directory", v.volume),
        ));
    }
    for e in &v.entries {
        check_path(&e.path)?;
        let at = |m: String| format!("{}: `{}`: {m}", v.volume, e.path);
        if e.mode & !MODE_BITS != 0 {
            return Err(refuse(
                "no set-user-ID or set-group-ID files",
                at(format!("mode {:o} has bits beyond {MODE_BITS:o}", e.mode)),
            ));
        }
        if !e.path.is_empty() {
            match seen.get(parent(&e.path)) {
                Some(Kind::Dir) => {}
                Some(_) => return Err(refuse("manifest", at("its parent is not a directory".into()))),
                None => {
                    return Err(refuse(
                        "manifest",
                        at("its parent directory comes later or not at all".into()),
                    ))
                }
            }
        }
        if seen.contains_key(e.path.as_str()) {
            return Err(refuse("manifest", at("the path appears twice".into())));
        }
        match e.kind {
            Kind::Dir | Kind::File if e.target.is_some() => {
                return Err(refuse("manifest", at("only links have a target".into())))
            }
            Kind::Dir | Kind::Symlink | Kind::Hardlink if e.size != 0 => {
                return Err(refuse("manifest", at("only files have a size".into())))
            }
            Kind::Symlink => {
                let t = e.target.as_deref().unwrap_or("");
                if t.len() > MAX_PATH || symlink_inside(&e.path, t).is_none() {
                    return Err(refuse("symlinks stay inside their volume", at(format!("points to `{t}`"))));
                }
            }
            Kind::Hardlink => {
                let t = e.target.as_deref().unwrap_or("");
                if seen.get(t) != Some(&Kind::File) {
                    return Err(refuse(
                        "hard links name an earlier file of their volume",
                        at(format!("links to `{t}`")),
                    ));
                }
            }
            Kind::Dir | Kind::File => {}
        }
        seen.insert(e.path.as_str(), e.kind);
    }
    Ok(())
}

/// The volumes of `unit` a move copies, in the unit's order: named volumes and host paths, each
/// once; `shared:` volumes are everywhere already.
pub fn volumes_of(unit: &crate::unit::Unit) -> Vec<VolumeId> {
    let mut out = Vec::new();
    for v in &unit.container.volumes {
        let id = match &v.source {
            crate::unit::VolumeSource::Named(n) => VolumeId::Named(n.clone()),
            crate::unit::VolumeSource::Host(p) => VolumeId::Host(p.clone()),
            crate::unit::VolumeSource::Shared(_) => continue,
        };
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// The path of an entry inside the tar stream: the volume's index, then its path.
pub fn stream_path(volume: usize, path: &str) -> String {
    if path.is_empty() {
        volume.to_string()
    } else {
        format!("{volume}/{path}")
    }
}

/// `root` joined with a validated relative path.
pub fn below(root: &Path, path: &str) -> PathBuf {
    if path.is_empty() {
        root.to_path_buf()
    } else {
        root.join(path)
    }
}

/// Every this many bytes of a file read or written, their pages are let go ([`drop_cache`]).
pub const DROP_EVERY: u64 = 8 << 20;

/// `POSIX_FADV_DONTNEED` of `len` bytes of `f` from `offset` (0: to the end): dirty pages start
/// their writeback at once, clean ones are dropped from the page cache, so the next pages a
/// stream needs are the ones it just let go (on the test hosts, a virtual machine, pages the
/// page cache has not used before cost several times as much: 1 GiB read cold took 1.8
/// CPU-seconds in the kernel, 0.3-0.4 so). A hint: its failure changes nothing.
pub fn drop_cache(f: &std::fs::File, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else { return };
    let _ = nix::fcntl::posix_fadvise(f, offset, len, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED);
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn dir(path: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 1,
            size: 0,
            target: None,
        }
    }
    pub(crate) fn file(path: &str, size: u64) -> Entry {
        Entry { kind: Kind::File, size, mode: 0o644, ..dir(path) }
    }
    pub(crate) fn link(path: &str, kind: Kind, target: &str) -> Entry {
        Entry { kind, target: Some(target.into()), mode: 0o777, ..dir(path) }
    }
    fn one(entries: Vec<Entry>) -> Manifest {
        Manifest { volumes: vec![VolumeData { volume: VolumeId::Named("data".into()), entries }] }
    }
    fn check(m: &Manifest) -> Result<(), Refusal> {
        m.validate(&[VolumeId::Named("data".into())], 1 << 20)
    }

    #[test]
    fn a_plain_manifest_passes() {
        let m = one(vec![
            dir(""),
            dir("a"),
            file("a/f", 10),
            link("a/l", Kind::Symlink, "f"),
            link("up", Kind::Symlink, "a/../a/f"),
            link("a/h", Kind::Hardlink, "a/f"),
        ]);
        assert_eq!(check(&m), Ok(()));
        assert_eq!((m.bytes(), m.files()), (10, 1));
    }

    #[test]
    fn hostile_manifests_are_refused_naming_the_rule() {
        let cases: Vec<(Vec<Entry>, &str, &str)> = vec![
            (vec![dir(""), file("../etc/passwd", 1)], "no path traversal", "../etc/passwd"),
            (vec![dir(""), dir("a"), file("a/../../x", 1)], "no path traversal", "a/../../x"),
            (vec![dir(""), file("/etc/passwd", 1)], "relative paths", "/etc/passwd"),
            (vec![dir(""), link("l", Kind::Symlink, "/etc")], "symlinks stay inside their volume", "/etc"),
            (
                vec![dir(""), dir("a"), link("a/l", Kind::Symlink, "../../x")],
                "symlinks stay inside",
                "../../x",
            ),
            (
                vec![dir(""), link("h", Kind::Hardlink, "/etc/shadow")],
                "hard links name an earlier file",
                "/etc/shadow",
            ),
            (vec![dir(""), link("l", Kind::Symlink, "x"), file("l/f", 1)], "manifest", "not a directory"),
            (vec![dir(""), file("f", 1), file("f", 1)], "manifest", "twice"),
            (vec![dir(""), Entry { mode: 0o4755, ..file("suid", 1) }], "set-user-ID", "4755"),
            (vec![dir(""), file("big", 2 << 20)], "size", "2097152"),
            (vec![file("f", 1)], "manifest", "root directory"),
        ];
        for (entries, rule, value) in cases {
            let e = check(&one(entries.clone())).expect_err(&format!("{entries:?}"));
            assert!(e.rule.contains(rule) || e.message.contains(rule), "{e} for {entries:?}");
            assert!(e.to_string().contains(value), "{e} should name {value}");
        }
    }

    #[test]
    fn the_volumes_must_be_the_units_and_well_named() {
        let m = one(vec![dir("")]);
        let e = m.validate(&[VolumeId::Named("other".into())], 0).expect_err("not the unit's");
        assert_eq!(e.rule, "volumes of the unit");
        for bad in [
            VolumeId::Named("../x".into()),
            VolumeId::Host("relative".into()),
            VolumeId::Host("/a/../etc".into()),
            VolumeId::Host("/".into()),
        ] {
            assert!(check_volume_id(&bad).is_err(), "{bad:?}");
        }
        assert!(check_volume_id(&VolumeId::Host("/srv/cam".into())).is_ok());
    }

    #[test]
    fn symlink_targets_resolve_lexically() {
        assert_eq!(symlink_inside("a/b/l", "../c").as_deref(), Some("a/c"));
        assert_eq!(symlink_inside("l", "..").as_deref(), None);
        assert_eq!(symlink_inside("a/l", "..").as_deref(), Some(""));
        assert_eq!(symlink_inside("l", "/x"), None);
    }
}
