//! The sending side: a volume walked with lstat into manifest entries (what cannot be moved is a
//! blocker, all of them listed), then packed as tar in manifest order, each file hashed as it is
//! read. Blocking file I/O: callers run it on a blocking thread.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{
    below, stream_path, symlink_inside, Entry, Kind, Manifest, Sums, VolumeData, VolumeId, MODE_BITS,
};

/// At most this many blockers are listed (the count says how many more).
const MAX_BLOCKERS: usize = 20;

/// A volume as walked: its entries, and why it cannot be moved (empty: it can).
#[derive(Debug, Default)]
pub struct Walked {
    pub data: Option<VolumeData>,
    pub blockers: Vec<String>,
}

/// Walks `root` (the volume's directory on this host) into manifest entries, sorted by path so
/// two walks of the same tree agree.
pub fn walk(volume: VolumeId, root: &Path) -> Walked {
    let mut w = Walker { root, entries: Vec::new(), blockers: Vec::new(), more: 0, inodes: HashMap::new() };
    match std::fs::symlink_metadata(root) {
        Ok(m) if m.is_dir() => w.dir("", &m),
        Ok(_) => w.block(format!("{} is not a directory", root.display())),
        Err(e) => w.block(format!("cannot read {}: {e}", root.display())),
    }
    if w.more > 0 {
        w.blockers.push(format!("and {} more", w.more));
    }
    let data = w.blockers.is_empty().then_some(VolumeData { volume, entries: w.entries });
    Walked { data, blockers: w.blockers }
}

struct Walker<'a> {
    root: &'a Path,
    entries: Vec<Entry>,
    blockers: Vec<String>,
    more: usize,
    inodes: HashMap<(u64, u64), String>,
}

impl Walker<'_> {
    fn block(&mut self, why: String) {
        if self.blockers.len() < MAX_BLOCKERS {
            self.blockers.push(why);
        } else {
            self.more += 1;
        }
    }

    fn entry(path: &str, kind: Kind, m: &Metadata) -> Entry {
        Entry {
            path: path.to_owned(),
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            mtime: m.mtime(),
            size: 0,
            target: None,
        }
    }

    fn dir(&mut self, path: &str, m: &Metadata) {
        self.entries.push(Self::entry(path, Kind::Dir, m));
        self.check_mode(path, m);
        let full = below(self.root, path);
        let mut names = match std::fs::read_dir(&full) {
            Ok(rd) => rd.filter_map(Result::ok).map(|e| e.file_name()).collect::<Vec<_>>(),
            Err(e) => return self.block(format!("cannot list {}: {e}", full.display())),
        };
        names.sort();
        for name in names {
            let Some(name) = name.to_str() else {
                self.block(format!("{}: a name that is not UTF-8 cannot be moved", full.display()));
                continue;
            };
            let child = if path.is_empty() { name.to_owned() } else { format!("{path}/{name}") };
            let full = below(self.root, &child);
            let m = match std::fs::symlink_metadata(&full) {
                Ok(m) => m,
                Err(e) => {
                    self.block(format!("cannot read {}: {e}", full.display()));
                    continue;
                }
            };
            let t = m.file_type();
            if t.is_dir() {
                self.dir(&child, &m);
            } else if t.is_file() {
                self.file(&child, &m);
            } else if t.is_symlink() {
                self.symlink(&child, &full, &m);
            } else {
                let what = if t.is_char_device() || t.is_block_device() {
                    "a device node"
                } else if t.is_fifo() {
                    "a FIFO"
                } else {
                    "a socket"
                };
                self.block(format!(
                    "{} is {what}: only files, directories and links are moved",
                    full.display()
                ));
            }
        }
    }

    fn check_mode(&mut self, path: &str, m: &Metadata) {
        if m.mode() & 0o7777 & !MODE_BITS != 0 {
            self.block(format!(
                "{} has mode {:o}: set-user-ID and set-group-ID files are not moved",
                below(self.root, path).display(),
                m.mode() & 0o7777
            ));
        }
    }

    fn file(&mut self, path: &str, m: &Metadata) {
        self.check_mode(path, m);
        if m.nlink() > 1 {
            if let Some(first) = self.inodes.get(&(m.dev(), m.ino())) {
                let mut e = Self::entry(path, Kind::Hardlink, m);
                e.target = Some(first.clone());
                self.entries.push(e);
                return;
            }
            self.inodes.insert((m.dev(), m.ino()), path.to_owned());
        }
        // Read at once, so that a file this daemon may not read blocks the move before it stops.
        let full = below(self.root, path);
        if let Err(e) = std::fs::File::open(&full) {
            return self.block(format!("cannot read {}: {e}", full.display()));
        }
        let mut e = Self::entry(path, Kind::File, m);
        e.size = m.len();
        self.entries.push(e);
    }

    fn symlink(&mut self, path: &str, full: &Path, m: &Metadata) {
        let target = match std::fs::read_link(full) {
            Ok(t) => t,
            Err(e) => return self.block(format!("cannot read the link {}: {e}", full.display())),
        };
        let Some(target) = target.to_str().map(str::to_owned) else {
            return self
                .block(format!("{}: a link target that is not UTF-8 cannot be moved", full.display()));
        };
        if symlink_inside(path, &target).is_none() {
            return self.block(format!(
                "{} points to {target}, out of its volume: such a symlink is not moved (rule: symlinks stay inside their volume)",
                full.display()
            ));
        }
        let mut e = Self::entry(path, Kind::Symlink, m);
        e.mode = 0o777;
        e.target = Some(target);
        self.entries.push(e);
    }
}

/// A refusal to send: a file changed between the walk and the stream, or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{path} changed while it was being copied ({detail}): nothing may write to the unit's data during a cold move")]
    Changed { path: String, detail: String },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the receiving side closed the stream: {0}")]
    Write(std::io::Error),
}

/// Writes the volumes of `manifest` (whose roots are `roots`, in the same order) as tar to `out`,
/// in manifest order, and returns every file's SHA-256. `sent` is told the bytes of each file
/// chunk as it goes (progress).
pub fn pack<W: Write>(
    manifest: &Manifest,
    roots: &[&Path],
    out: W,
    sent: &mut dyn FnMut(u64),
) -> Result<Sums, PackError> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Complete);
    let mut sums = Vec::new();
    for (i, (v, root)) in manifest.volumes.iter().zip(roots).enumerate() {
        for e in &v.entries {
            let path = stream_path(i, &e.path);
            let full = below(root, &e.path);
            let mut h = tar::Header::new_gnu();
            h.set_mode(e.mode);
            h.set_uid(e.uid.into());
            h.set_gid(e.gid.into());
            h.set_mtime(u64::try_from(e.mtime).unwrap_or(0));
            let target = e.target.as_deref().unwrap_or("");
            let written = match e.kind {
                Kind::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, &path, std::io::empty())
                }
                Kind::Symlink => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, &path, target)
                }
                Kind::Hardlink => {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, &path, stream_path(i, target))
                }
                Kind::File => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(e.size);
                    let shown = full.display().to_string();
                    let f = std::fs::File::open(&full)
                        .map_err(|source| PackError::Read { path: shown.clone(), source })?;
                    let len =
                        f.metadata().map_err(|source| PackError::Read { path: shown.clone(), source })?.len();
                    if len != e.size {
                        return Err(PackError::Changed {
                            path: shown,
                            detail: format!("{} bytes, then {len}", e.size),
                        });
                    }
                    let mut r = Hashing { inner: f.take(e.size), sha: Sha256::new(), n: 0, sent: &mut *sent };
                    let res = b.append_data(&mut h, &path, &mut r);
                    if res.is_ok() && r.n != e.size {
                        return Err(PackError::Changed {
                            path: shown,
                            detail: format!("{} bytes, then {}", e.size, r.n),
                        });
                    }
                    sums.push(crate::digest::hex(&r.sha.finalize()));
                    res
                }
            };
            written.map_err(PackError::Write)?;
        }
    }
    b.into_inner().and_then(|mut w| w.flush()).map_err(PackError::Write)?;
    Ok(sums)
}

/// A reader that hashes and counts what passes through it.
pub(super) struct Hashing<'a, R> {
    pub inner: R,
    pub sha: Sha256,
    pub n: u64,
    pub sent: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.sha.update(&buf[..k]);
        self.n += k as u64;
        (self.sent)(k as u64);
        Ok(k)
    }
}
