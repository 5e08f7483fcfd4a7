//! The sending side: a volume walked with lstat into manifest entries (what cannot be moved is a
//! blocker, all of them listed), then packed as tar in manifest order, each file hashed as it is
//! read. Blocking file I/O: callers run it on a blocking thread.
//!
//! A warm move packs twice. The first pass runs while the unit writes: a file that changes under
//! it is still sent (cut or padded to the size the walk saw) but marked dirty. The second pass,
//! after the stop, sends only files whose [`Stamp`] differs from the first walk's, or that were
//! dirty or racy (changed so close to the first walk that a coarse file-system clock cannot tell
//! two writes apart); the others are reused from the first pass with the sum it computed.

use std::collections::{HashMap, HashSet};
use std::fs::Metadata;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use bytes::Bytes;

use super::hashing::{FileSums, Pool};

use super::{
    below, stream_path, symlink_inside, Entry, FileKey, Kind, Manifest, Sums, VolumeData, VolumeId, MODE_BITS,
};

/// At most this many blockers are listed (the count says how many more).
const MAX_BLOCKERS: usize = 20;

/// A volume as walked: its entries, and why it cannot be moved (empty: it can).
#[derive(Debug, Default)]
pub struct Walked {
    pub data: Option<VolumeData>,
    pub blockers: Vec<String>,
    /// Each file's stamp, by path (what a second walk compares).
    pub stamps: HashMap<String, Stamp>,
}

/// What says a file is unchanged since a walk: the same inode, size, modification and change
/// times (nanoseconds; the change time moves on every write, chmod and chown, even when the
/// modification time is set back by hand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl Stamp {
    fn of(m: &Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        }
    }
}

/// A file whose change time is this close to (or after) the start of the walk may change again
/// within the same tick of the file system's clock unseen: it is sent again, never reused.
pub const RACY_NS: i128 = 2_000_000_000;

/// What the first pass of a warm move leaves for the second: every file's stamp and sum, the
/// files that changed while they were read, and when the walk began (nanoseconds since the epoch).
#[derive(Debug, Default, Clone)]
pub struct FirstPass {
    pub stamps: HashMap<FileKey, Stamp>,
    pub sums: HashMap<FileKey, String>,
    pub dirty: HashSet<FileKey>,
    pub walked_at_ns: i128,
}

impl FirstPass {
    /// The files of `now` (a walk after the stop, with its stamps per volume) that the target has
    /// from the first pass, with their sums: same stamp, not dirty, not racy.
    pub fn reusable(&self, now: &Manifest, stamps: &[HashMap<String, Stamp>]) -> HashMap<FileKey, String> {
        let mut out = HashMap::new();
        for (i, v) in now.volumes.iter().enumerate() {
            for e in v.entries.iter().filter(|e| e.kind == Kind::File) {
                let key = (i, e.path.clone());
                let (Some(before), Some(after), Some(sum)) =
                    (self.stamps.get(&key), stamps.get(i).and_then(|s| s.get(&e.path)), self.sums.get(&key))
                else {
                    continue;
                };
                if before == after
                    && !self.dirty.contains(&key)
                    && before.ctime_ns < self.walked_at_ns - RACY_NS
                    && before.mtime_ns < self.walked_at_ns - RACY_NS
                {
                    out.insert(key, sum.clone());
                }
            }
        }
        out
    }
}

/// Walks `root` (the volume's directory on this host) into manifest entries, sorted by path so
/// two walks of the same tree agree.
pub fn walk(volume: VolumeId, root: &Path) -> Walked {
    let mut w = Walker {
        root,
        entries: Vec::new(),
        blockers: Vec::new(),
        more: 0,
        inodes: HashMap::new(),
        stamps: HashMap::new(),
    };
    match std::fs::symlink_metadata(root) {
        Ok(m) if m.is_dir() => w.dir("", &m),
        Ok(_) => w.block(format!("{} is not a directory", root.display())),
        Err(e) => w.block(format!("cannot read {}: {e}", root.display())),
    }
    if w.more > 0 {
        w.blockers.push(format!("and {} more", w.more));
    }
    let data = w.blockers.is_empty().then_some(VolumeData { volume, entries: w.entries });
    Walked { data, blockers: w.blockers, stamps: w.stamps }
}

struct Walker<'a> {
    root: &'a Path,
    entries: Vec<Entry>,
    blockers: Vec<String>,
    more: usize,
    inodes: HashMap<(u64, u64), String>,
    stamps: HashMap<String, Stamp>,
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
                // Gone since it was listed (a unit that still runs removed it): not moved.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
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
        match std::fs::File::open(&full) {
            Ok(_) => {}
            // Gone since it was listed (a unit that still runs removed it): not moved, and not
            // the first name of its other links either.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.inodes.remove(&(m.dev(), m.ino()));
                return;
            }
            Err(e) => return self.block(format!("cannot read {}: {e}", full.display())),
        }
        let mut e = Self::entry(path, Kind::File, m);
        e.size = m.len();
        self.entries.push(e);
        self.stamps.insert(path.to_owned(), Stamp::of(m));
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
pub fn pack<W: Sink>(
    manifest: &Manifest,
    roots: &[&Path],
    out: W,
    sent: &mut dyn FnMut(u64),
) -> Result<Sums, PackError> {
    pack_with(manifest, roots, out, sent, &Pass::Strict, None).map(|p| p.sums)
}

/// How a pack treats the files.
#[derive(Debug)]
pub enum Pass<'a> {
    /// Every file is sent and must not change while it is read (a cold move, or after the stop).
    Strict,
    /// The unit still runs: a file that changed or went is sent as far as it could be read (cut
    /// or padded to the walk's size) and marked dirty, for the second pass to send again.
    Warm,
    /// After the stop: the files listed are not sent (the target has them); their sums are these.
    Delta(&'a HashMap<FileKey, String>),
}

/// What a pack sent: every file's sum in manifest order, and the files marked dirty.
#[derive(Debug, Default)]
pub struct Packed {
    pub sums: Sums,
    pub dirty: HashSet<FileKey>,
    /// The file bytes in the stream.
    pub bytes: u64,
}

/// [`pack`] with a [`Pass`].
pub fn pack_with<W: Sink>(
    manifest: &Manifest,
    roots: &[&Path],
    out: W,
    sent: &mut dyn FnMut(u64),
    pass: &Pass<'_>,
    sums_out: Option<&std::sync::Mutex<HashMap<FileKey, String>>>,
) -> Result<Packed, PackError> {
    let mut keep = |key: &FileKey, sum: &str| {
        if let Some(Ok(mut m)) = sums_out.map(std::sync::Mutex::lock) {
            m.insert(key.clone(), sum.to_owned());
        }
    };
    let mut sums = FileSums::start().map_err(PackError::Write)?;
    let pool = Pool::new(CHUNK);
    let mut packed = Packed::default();
    let res = pack_entries(
        manifest,
        roots,
        out,
        sent,
        pass,
        &mut Chunks { pool: &pool, sums: &mut sums },
        &mut packed,
        &mut keep,
    );
    // The sums of every file sent whole, also when the stream broke after them (kept for a
    // resumed pass).
    let all = sums.finish(&mut keep).map_err(PackError::Write);
    res?;
    packed.sums = all?;
    Ok(packed)
}

/// Where a pack's file data goes: chunks of pooled buffers, hashed on [`FileSums`]' thread and
/// handed to the output without a copy.
struct Chunks<'a> {
    pool: &'a Pool,
    sums: &'a mut FileSums,
}

#[allow(clippy::too_many_arguments)]
fn pack_entries<W: Sink>(
    manifest: &Manifest,
    roots: &[&Path],
    out: W,
    sent: &mut dyn FnMut(u64),
    pass: &Pass<'_>,
    chunks: &mut Chunks<'_>,
    packed: &mut Packed,
    keep: &mut dyn FnMut(&FileKey, &str),
) -> Result<(), PackError> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Complete);
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
                    let key = (i, e.path.clone());
                    if let Pass::Delta(reuse) = pass {
                        if let Some(sum) = reuse.get(&key) {
                            chunks.sums.known(key, sum.clone(), keep);
                            continue;
                        }
                    }
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(e.size);
                    let shown = full.display().to_string();
                    let opened = std::fs::File::open(&full).and_then(|f| f.metadata().map(|m| (f, m.len())));
                    let (f, len) = match (opened, pass) {
                        (Ok(ok), _) => ok,
                        (Err(_), Pass::Warm) => {
                            packed.dirty.insert(key.clone());
                            let mut r = std::io::repeat(0).take(e.size);
                            append_file(&mut b, &mut h, &path, &mut r, chunks, sent)
                                .map_err(PackError::Write)?;
                            chunks.sums.end(key, keep).map_err(PackError::Write)?;
                            packed.bytes += e.size;
                            continue;
                        }
                        (Err(source), _) => return Err(PackError::Read { path: shown, source }),
                    };
                    let warm = matches!(pass, Pass::Warm);
                    if len != e.size {
                        if !warm {
                            return Err(PackError::Changed {
                                path: shown,
                                detail: format!("{} bytes, then {len}", e.size),
                            });
                        }
                        packed.dirty.insert(key.clone());
                    }
                    // Warm: a file cut short while it is read is padded with zeros to its size;
                    // the unit still runs, its page cache is left alone. Stopped: what was read
                    // is let go behind the reader.
                    let mut body: Box<dyn Read> = if warm {
                        Box::new(f.take(e.size).chain(std::io::repeat(0)).take(e.size))
                    } else {
                        Box::new(DropBehind { f, read: 0, dropped: 0 }.take(e.size))
                    };
                    let n = append_file(&mut b, &mut h, &path, &mut body, chunks, sent)
                        .map_err(PackError::Write)?;
                    if n != e.size {
                        return Err(PackError::Changed {
                            path: shown,
                            detail: format!("{} bytes, then {n}", e.size),
                        });
                    }
                    chunks.sums.end(key, keep).map_err(PackError::Write)?;
                    packed.bytes += e.size;
                    Ok(())
                }
            };
            written.map_err(PackError::Write)?;
        }
    }
    b.into_inner().and_then(|mut w| w.flush()).map_err(PackError::Write)
}

/// A file read once, front to back, whose pages are let go behind the reader every
/// [`super::DROP_EVERY`] bytes and at the end ([`super::drop_cache`]).
struct DropBehind {
    f: std::fs::File,
    read: u64,
    dropped: u64,
}

impl Read for DropBehind {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.f.read(buf)?;
        self.read += k as u64;
        if self.read - self.dropped >= super::DROP_EVERY {
            super::drop_cache(&self.f, self.dropped, self.read - self.dropped);
            self.dropped = self.read;
        }
        Ok(k)
    }
}

impl Drop for DropBehind {
    fn drop(&mut self) {
        if self.read > self.dropped {
            super::drop_cache(&self.f, self.dropped, 0);
        }
    }
}

/// The size of the reads of a file's data (tar's own copy reads 8 KiB at a time: a system call
/// and a copy more for every 8 KiB, a third of the sender's time for a large file).
const CHUNK: usize = 1 << 20;

/// What a pack writes to: bytes (headers, padding) and whole chunks of file data, which an
/// output that hands them on (a request body) takes without copying them.
pub trait Sink: Write {
    fn put(&mut self, chunk: Bytes) -> std::io::Result<()> {
        self.write_all(&chunk)
    }
}

impl Sink for Vec<u8> {}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn put(&mut self, chunk: Bytes) -> std::io::Result<()> {
        (**self).put(chunk)
    }
}

/// Appends a file entry to `b`: the header (and a GNU long-name entry where the path needs one)
/// through the tar crate, whose copy of an empty body writes no data and no padding, then the
/// data read in chunks of the pool's buffers (each hashed on the thread and handed on as it
/// is) and the padding to the next 512-byte block. The header says the size; the receiver
/// refuses a stream whose data is not that long. Returns the data's length.
fn append_file<W: Sink>(
    b: &mut tar::Builder<W>,
    h: &mut tar::Header,
    path: &str,
    data: &mut dyn Read,
    chunks: &mut Chunks<'_>,
    sent: &mut dyn FnMut(u64),
) -> std::io::Result<u64> {
    b.append_data(h, path, std::io::empty())?;
    let out = b.get_mut();
    let mut n = 0u64;
    loop {
        let mut buf = chunks.pool.take();
        let k = match data.read(buf.space()) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = chunks.pool.chunk(buf, k);
        chunks.sums.data(chunk.clone())?;
        out.put(chunk)?;
        n += k as u64;
        sent(k as u64);
    }
    let pad = (512 - n % 512) % 512;
    out.write_all(&[0u8; 512][..usize::try_from(pad).unwrap_or(0)])?;
    Ok(n)
}
