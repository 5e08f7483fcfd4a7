//! The receiving side: a tar stream from another host written into staging roots, entry by entry
//! in lockstep with a manifest that [`Manifest::validate`] accepted. The header of each entry
//! must say what the manifest says (path, kind, size, link target); what is written (mode,
//! owner, times) is the manifest's. Files are created new (never opened through a link), and
//! every parent of an entry is a directory this receiver made, so nothing lands outside the
//! roots. Blocking file I/O: callers run it on a blocking thread.
//!
//! A warm move's first pass is received unfinished (directories stay this daemon's, owners are
//! not given; synced while the unit still runs on the source), so that the second pass can take
//! its files: a file the sender
//! says is unchanged has no entry in the stream and is renamed from the first pass's tree, with
//! the sum computed when it arrived there.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::hashing::{FileSums, Pool, ALIGN};
use super::{below, refuse, stream_path, Entry, FileKey, Kind, Manifest, Refusal, Sums};

/// How a stream is received.
#[derive(Debug, Default)]
pub struct Receive {
    /// Give modes, owners and times to the directories and owners to everything, and sync: the
    /// last pass. Unfinished, the tree stays writable for a next pass.
    pub finish: bool,
    /// Files not in the stream, taken from an earlier pass: where they are and their sum.
    pub reuse: HashMap<FileKey, (PathBuf, String)>,
    /// Where each file whole in the tree is told (with its sum) as it is: what a stream that
    /// breaks leaves for a resumed pass.
    pub done: Option<std::sync::Arc<std::sync::Mutex<HashMap<FileKey, String>>>>,
}

impl Receive {
    fn done(&self, key: FileKey, sum: &str) {
        if let Some(d) = &self.done {
            if let Ok(mut d) = d.lock() {
                d.insert(key, sum.to_owned());
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("the stream broke: {0}")]
    Stream(std::io::Error),
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReceiveError + '_ {
    move |source| ReceiveError::Write { path: path.display().to_string(), source }
}

fn kind_of(t: tar::EntryType, path: &str) -> Result<Kind, Refusal> {
    match t {
        tar::EntryType::Regular | tar::EntryType::Continuous => Ok(Kind::File),
        tar::EntryType::Directory => Ok(Kind::Dir),
        tar::EntryType::Symlink => Ok(Kind::Symlink),
        tar::EntryType::Link => Ok(Kind::Hardlink),
        tar::EntryType::Char | tar::EntryType::Block => {
            Err(refuse("no device files", format!("entry `{path}` is a device node")))
        }
        other => Err(refuse(
            "entry types",
            format!("entry `{path}` is of type {other:?}: only files, directories, symlinks and hard links are accepted"),
        )),
    }
}

/// The raw path of a header, checked for the attacks before it is compared.
fn header_path(bytes: &[u8]) -> Result<String, Refusal> {
    let p = String::from_utf8_lossy(bytes);
    let p = p.trim_end_matches('/').to_owned();
    if p.starts_with('/') {
        return Err(refuse("relative paths", format!("entry `{p}` is absolute")));
    }
    if p.split('/').any(|c| c == "..") {
        return Err(refuse("no path traversal", format!("entry `{p}` climbs out with `..`")));
    }
    Ok(p)
}

/// Receives `input` into `roots` (one empty, existing directory per volume of `manifest`, in the
/// same order). Returns every file's SHA-256 as received; `received` is told each chunk's size.
pub fn receive<R: Read>(
    manifest: &Manifest,
    roots: &[PathBuf],
    input: R,
    received: &mut dyn FnMut(u64),
) -> Result<Sums, ReceiveError> {
    receive_with(manifest, roots, input, received, &Receive { finish: true, ..Receive::default() })
}

/// [`receive`] as `how` says (a pass of a warm move).
pub fn receive_with<R: Read>(
    manifest: &Manifest,
    roots: &[PathBuf],
    input: R,
    received: &mut dyn FnMut(u64),
    how: &Receive,
) -> Result<Sums, ReceiveError> {
    let mut sums = FileSums::start().map_err(ReceiveError::Stream)?;
    let pool = Pool::new(CHUNK);
    let mut placed = Placed::default();
    let res = receive_entries(manifest, roots, input, received, how, &pool, &mut sums, &mut placed);
    // The sums of every file written whole, also when the stream broke after them: each is
    // told to `how.done`, for a resumed pass.
    let all = sums.finish(&mut |key, sum| how.done(key.clone(), sum)).map_err(ReceiveError::Stream);
    res?;
    let sums = all?;
    if !how.finish {
        // A warm move's first pass, received while the unit runs: what it wrote goes to disk now,
        // so that the sync of the last pass (in the downtime) has only the delta to write.
        sync_roots(roots)?;
        return Ok(sums);
    }
    // Directories last, deepest first: creating their children changed their times.
    for (path, e) in &placed.owners {
        std::os::unix::fs::lchown(path, Some(e.uid), Some(e.gid)).map_err(write_err(path))?;
    }
    for (path, e) in placed.dirs.iter().rev() {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(e.mode))
            .map_err(write_err(path))?;
        set_time(path, e.mtime)?;
        std::os::unix::fs::lchown(path, Some(e.uid), Some(e.gid)).map_err(write_err(path))?;
    }
    sync_roots(roots)?;
    Ok(sums)
}

/// What a stream placed that gets its owner (and directories their mode and time) at the end.
#[derive(Default)]
struct Placed<'m> {
    dirs: Vec<(PathBuf, &'m Entry)>,
    // Ownership is given last: the daemon may set modes and times, and link (protected_hardlinks),
    // only what it owns (no CAP_FOWNER).
    owners: Vec<(PathBuf, &'m Entry)>,
}

/// The entries of the stream, in lockstep with the manifest.
#[allow(clippy::too_many_arguments)]
fn receive_entries<'m, R: Read>(
    manifest: &'m Manifest,
    roots: &[PathBuf],
    input: R,
    received: &mut dyn FnMut(u64),
    how: &Receive,
    pool: &Pool,
    sums: &mut FileSums,
    placed: &mut Placed<'m>,
) -> Result<(), ReceiveError> {
    let mut told = |key: &FileKey, sum: &str| how.done(key.clone(), sum);
    let mut archive = tar::Archive::new(input);
    let mut entries = archive.entries().map_err(ReceiveError::Stream)?;
    for (i, (v, root)) in manifest.volumes.iter().zip(roots).enumerate() {
        for e in &v.entries {
            if e.kind == Kind::File {
                if let Some((from, sum)) = how.reuse.get(&(i, e.path.clone())) {
                    let path = below(root, &e.path);
                    take_file(from, &path, e)?;
                    sums.known((i, e.path.clone()), sum.clone(), &mut told);
                    placed.owners.push((path, e));
                    continue;
                }
            }
            let want = stream_path(i, &e.path);
            let want = want.trim_end_matches('/');
            let mut t = match entries.next() {
                Some(t) => t.map_err(ReceiveError::Stream)?,
                None => {
                    return Err(refuse(
                        "stream follows the manifest",
                        format!("the stream ended before `{want}`"),
                    )
                    .into())
                }
            };
            let got = header_path(&t.path_bytes())?;
            let kind = kind_of(t.header().entry_type(), &got)?;
            if got != want {
                return Err(refuse(
                    "stream follows the manifest",
                    format!("entry `{got}` where the manifest has `{want}`"),
                )
                .into());
            }
            if kind != e.kind {
                return Err(refuse(
                    "stream follows the manifest",
                    format!("entry `{got}` is a {kind:?}, the manifest says {:?}", e.kind),
                )
                .into());
            }
            let size = t.header().size().map_err(ReceiveError::Stream)?;
            if size != e.size {
                return Err(refuse(
                    "size",
                    format!("entry `{got}` claims {size} bytes, the manifest {}", e.size),
                )
                .into());
            }
            let link = t.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned());
            let want_link = match e.kind {
                Kind::Symlink => e.target.clone(),
                Kind::Hardlink => e.target.as_deref().map(|t| stream_path(i, t)),
                Kind::Dir | Kind::File => None,
            };
            if link != want_link {
                return Err(refuse(
                    "stream follows the manifest",
                    format!("entry `{got}` links to {link:?}, the manifest says {want_link:?}"),
                )
                .into());
            }
            let path = below(root, &e.path);
            match e.kind {
                Kind::Dir => {
                    if !e.path.is_empty() {
                        std::fs::create_dir(&path).map_err(write_err(&path))?;
                    }
                    placed.dirs.push((path, e));
                }
                Kind::File => {
                    write_file(&mut t, &path, e, received, pool, sums)?;
                    sums.end((i, e.path.clone()), &mut told).map_err(ReceiveError::Stream)?;
                    placed.owners.push((path, e));
                }
                Kind::Symlink => {
                    std::os::unix::fs::symlink(e.target.as_deref().unwrap_or(""), &path)
                        .map_err(write_err(&path))?;
                    set_time(&path, e.mtime)?;
                    placed.owners.push((path, e));
                }
                Kind::Hardlink => {
                    let first = below(root, e.target.as_deref().unwrap_or(""));
                    std::fs::hard_link(&first, &path).map_err(write_err(&path))?;
                }
            }
        }
    }
    if let Some(extra) = entries.next() {
        let extra = extra.map_err(ReceiveError::Stream)?;
        let p = String::from_utf8_lossy(&extra.path_bytes()).into_owned();
        return Err(
            refuse("stream follows the manifest", format!("entry `{p}` is not in the manifest")).into()
        );
    }
    Ok(())
}

/// `syncfs` of the file systems of `roots` only, not every disk of the host; once for the whole
/// stream, not per file: thousands of small files would each wait.
fn sync_roots(roots: &[PathBuf]) -> Result<(), ReceiveError> {
    let syncing = std::time::Instant::now();
    for root in roots {
        let dir = std::fs::File::open(root).map_err(write_err(root))?;
        nix::unistd::syncfs(&dir).map_err(|e| write_err(root)(e.into()))?;
    }
    tracing::info!("the received data synced in {} ms", syncing.elapsed().as_millis());
    Ok(())
}

/// A file of an earlier pass renamed into this pass's tree: it must be a plain file of the size
/// the manifest says (the earlier pass wrote it, this daemon owns it), then gets the manifest's
/// mode and time.
fn take_file(from: &Path, to: &Path, e: &Entry) -> Result<(), ReceiveError> {
    let m = std::fs::symlink_metadata(from).map_err(write_err(from))?;
    if !m.is_file() || m.len() != e.size {
        return Err(refuse(
            "reused files were received before",
            format!("`{}` is not the file of {} bytes an earlier pass received", e.path, e.size),
        )
        .into());
    }
    std::fs::rename(from, to).map_err(write_err(to))?;
    std::fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(e.mode))
        .map_err(write_err(to))?;
    set_time(to, e.mtime)
}

/// The size of the chunks a file's data is written (and hashed) in.
const CHUNK: usize = 1 << 20;

/// Writes a file's data from `input` into a new file at `path`; each chunk is written here and
/// hashed on `sums`' thread from the same buffer.
///
/// Whole chunks are written with `O_DIRECT` where the file system takes it: from the buffer to
/// the disk, no copy into the page cache. On the test hosts (2 shared cores, a virtual disk)
/// writing 1 GiB so took 0.07-0.1 CPU-seconds and 0.6-0.75 s, against 0.4-0.55 CPU-s and
/// 1.1-1.6 s through the page cache with the writeback started every 8 MiB, and 0.6-1.9 CPU-s
/// without (fresh page-cache pages of this virtual machine cost a fault on its host first).
/// The last piece of a file (not a whole number of blocks), and everything on a file system
/// that refuses direct I/O, is written through the page cache. Either way the `syncfs` before
/// the commit makes it durable (a direct write may sit in the disk's cache until then).
fn write_file<R: Read>(
    input: &mut R,
    path: &Path,
    e: &Entry,
    received: &mut dyn FnMut(u64),
    pool: &Pool,
    sums: &FileSums,
) -> Result<(), ReceiveError> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(write_err(path))?;
    let mut direct = e.size >= ALIGN as u64 && set_direct(&f, true).is_ok();
    let mut at = 0u64;
    let mut flushed = 0u64;
    while at < e.size {
        let mut buf = pool.take();
        let space = buf.space();
        let want = usize::try_from((e.size - at).min(space.len() as u64)).unwrap_or(space.len());
        // A whole chunk (the stream arrives in pieces of a TLS record or so): fewer, larger
        // writes and hand-offs to the hashing thread.
        input.read_exact(&mut space[..want]).map_err(|err| match err.kind() {
            std::io::ErrorKind::UnexpectedEof => ReceiveError::Stream(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the stream ended inside `{}`", e.path),
            )),
            _ => ReceiveError::Stream(err),
        })?;
        let k = want;
        let chunk = pool.chunk(buf, k);
        sums.data(chunk.clone()).map_err(ReceiveError::Stream)?;
        if direct && k % ALIGN != 0 {
            direct = false;
            set_direct(&f, false).map_err(write_err(path))?;
        }
        match f.write_all_at(&chunk, at) {
            Ok(()) => {}
            // Direct I/O refused here after all (an alignment this device does not take).
            Err(err) if direct && err.raw_os_error() == Some(nix::libc::EINVAL) => {
                direct = false;
                set_direct(&f, false).map_err(write_err(path))?;
                f.write_all_at(&chunk, at).map_err(write_err(path))?;
            }
            Err(err) => return Err(write_err(path)(err)),
        }
        drop(chunk);
        at += k as u64;
        received(k as u64);
        if direct {
            flushed = at;
        } else if at - flushed >= WRITEBACK {
            start_writeback(&f, flushed, at - flushed);
            flushed = at;
        }
    }
    if flushed < at {
        start_writeback(&f, flushed, 0);
    }
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(e.mode)).map_err(write_err(path))?;
    f.set_modified(mtime(e.mtime)).map_err(write_err(path))?;
    Ok(())
}

/// Turns `O_DIRECT` on or off for `f`; refused (`EINVAL`) by a file system without direct I/O.
fn set_direct(f: &std::fs::File, on: bool) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(f, FcntlArg::F_GETFL)?);
    let flags = if on { flags | OFlag::O_DIRECT } else { flags - OFlag::O_DIRECT };
    fcntl(f, FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// Every this many bytes of a file written (through the page cache), their writeback is started.
const WRITEBACK: u64 = super::DROP_EVERY;

/// Starts the writeback of `len` bytes of `f` from `offset` (0: to the end) without waiting
/// for it ([`super::drop_cache`] writes dirty pages back asynchronously, then drops the clean
/// ones): the disk writes while the stream goes on, so the `syncfs` before the commit waits for
/// the rest only. A hint: its failure changes nothing, the `syncfs` still makes the data durable.
fn start_writeback(f: &std::fs::File, offset: u64, len: u64) {
    super::drop_cache(f, offset, len);
}

fn mtime(secs: i64) -> SystemTime {
    match u64::try_from(secs) {
        Ok(s) => SystemTime::UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()),
    }
}

fn set_time(path: &Path, secs: i64) -> Result<(), ReceiveError> {
    let t = nix::sys::time::TimeSpec::new(secs, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| ReceiveError::Write { path: path.display().to_string(), source: e.into() })
}

/// Compares the sums the sender computed with the receiver's; names the first file that differs.
pub fn verify(manifest: &Manifest, sent: &Sums, received: &Sums) -> Result<(), Refusal> {
    if sent.len() != received.len() {
        return Err(refuse(
            "checksums",
            format!("the sender hashed {} files, {} were received", sent.len(), received.len()),
        ));
    }
    let files = manifest
        .volumes
        .iter()
        .flat_map(|v| v.entries.iter().filter(|e| e.kind == Kind::File).map(move |e| (&v.volume, e)));
    for ((volume, e), (a, b)) in files.zip(sent.iter().zip(received)) {
        if a != b {
            return Err(refuse(
                "checksums",
                format!("{volume}: `{}` has SHA-256 {b} here, {a} on the source", e.path),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::super::source::{pack, walk};
    use super::super::{Manifest, VolumeId};
    use super::*;

    fn tree(root: &Path) {
        std::fs::create_dir_all(root.join("a/b")).expect("dirs");
        std::fs::write(root.join("a/f"), b"hello").expect("f");
        std::fs::write(root.join("a/b/big"), vec![7u8; 300_000]).expect("big");
        std::os::unix::fs::symlink("../f", root.join("a/b/l")).expect("symlink");
        std::fs::hard_link(root.join("a/f"), root.join("h")).expect("hard link");
    }

    fn packed(m: &Manifest, root: &Path) -> (Vec<u8>, Sums) {
        let mut out = Vec::new();
        let sums = pack(m, &[root], &mut out, &mut |_| {}).expect("pack");
        (out, sums)
    }

    #[test]
    fn a_tree_round_trips_with_links_modes_and_sums() {
        let src = tempfile::tempdir().expect("tempdir");
        tree(src.path());
        let w = walk(VolumeId::Named("data".into()), src.path());
        assert!(w.blockers.is_empty(), "{:?}", w.blockers);
        let m = Manifest { volumes: vec![w.data.expect("data")] };
        m.validate(&[VolumeId::Named("data".into())], 1 << 30).expect("valid");
        let (stream, sent) = packed(&m, src.path());
        let dst = tempfile::tempdir().expect("tempdir");
        let mut n = 0;
        let got = receive(&m, &[dst.path().to_path_buf()], &stream[..], &mut |k| n += k).expect("receive");
        verify(&m, &sent, &got).expect("sums equal");
        assert_eq!(n, 300_005);
        assert_eq!(std::fs::read(dst.path().join("a/f")).expect("f"), b"hello");
        assert_eq!(std::fs::read_link(dst.path().join("a/b/l")).expect("l").to_str(), Some("../f"));
        let (f, h) =
            (dst.path().join("a/f").metadata().expect("f"), dst.path().join("h").metadata().expect("h"));
        assert_eq!(f.ino(), h.ino(), "the hard link is one file");
        let srcf = src.path().join("a/f").metadata().expect("f");
        assert_eq!((f.mode(), f.mtime()), (srcf.mode(), srcf.mtime()));
        let mut other = got.clone();
        other[0] = "0".repeat(64);
        assert!(verify(&m, &sent, &other).expect_err("differs").to_string().contains("checksums"));
    }

    #[test]
    fn files_of_every_size_and_long_paths_round_trip() {
        let src = tempfile::tempdir().expect("tempdir");
        let long = "d".repeat(120);
        std::fs::create_dir(src.path().join(&long)).expect("dir");
        // Around the 512-byte blocks and the sender's 1 MiB chunks, and one long enough for the
        // receiver's writeback to start mid-file.
        let sizes = [0usize, 1, 511, 512, 513, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, (9 << 20) + 7];
        for (i, n) in sizes.iter().enumerate() {
            let data: Vec<u8> = (0..*n).map(|k| (k * 31 + i) as u8).collect();
            std::fs::write(src.path().join(&long).join(format!("{}-{i}", "f".repeat(100))), data)
                .expect("file");
        }
        let w = walk(VolumeId::Named("data".into()), src.path());
        let m = Manifest { volumes: vec![w.data.expect("data")] };
        let (stream, sent) = packed(&m, src.path());
        let dst = tempfile::tempdir().expect("tempdir");
        let got = receive(&m, &[dst.path().to_path_buf()], &stream[..], &mut |_| {}).expect("receive");
        verify(&m, &sent, &got).expect("sums equal");
        for (i, _) in sizes.iter().enumerate() {
            let rel = Path::new(&long).join(format!("{}-{i}", "f".repeat(100)));
            assert_eq!(
                std::fs::read(dst.path().join(&rel)).expect("received"),
                std::fs::read(src.path().join(&rel)).expect("sent"),
                "{}",
                rel.display()
            );
        }
    }

    #[test]
    fn a_warm_move_sends_only_what_changed_and_verifies_everything() {
        use super::super::source::{pack_with, FirstPass, Pass};
        let src = tempfile::tempdir().expect("tempdir");
        tree(src.path());
        std::fs::write(src.path().join("gone"), b"bye").expect("gone");
        let vol = || VolumeId::Named("data".into());
        let w1 = walk(vol(), src.path());
        let m1 = Manifest { volumes: vec![w1.data.expect("data")] };
        let mut stream = Vec::new();
        let p1 =
            pack_with(&m1, &[src.path()], &mut stream, &mut |_| {}, &Pass::Warm, None).expect("first pass");
        let first_dst = tempfile::tempdir().expect("tempdir");
        let first_root = first_dst.path().to_path_buf();
        let got1 = receive_with(
            &m1,
            std::slice::from_ref(&first_root),
            &stream[..],
            &mut |_| {},
            &Receive::default(),
        )
        .expect("first pass received");
        assert_eq!(got1, p1.sums);
        // The unit writes on: a file changed (same size), one removed, one added.
        std::fs::write(src.path().join("a/f"), b"HELLO").expect("changed");
        std::fs::remove_file(src.path().join("gone")).expect("removed");
        std::fs::write(src.path().join("new"), b"new").expect("added");
        let mut first = FirstPass {
            // The first walk long before these writes (else every file is racy and sent again).
            walked_at_ns: i128::MAX / 2,
            ..FirstPass::default()
        };
        let files = m1.volumes[0].entries.iter().filter(|e| e.kind == Kind::File);
        for (e, sum) in files.zip(&p1.sums) {
            let key = (0, e.path.clone());
            first.stamps.insert(key.clone(), w1.stamps[&e.path]);
            first.sums.insert(key, sum.clone());
        }
        let w2 = walk(vol(), src.path());
        let m2 = Manifest { volumes: vec![w2.data.expect("data")] };
        let reuse = first.reusable(&m2, std::slice::from_ref(&w2.stamps));
        let mut keys: Vec<&str> = reuse.keys().map(|(_, p)| p.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["a/b/big"], "only the unchanged file is reused");
        let mut delta = Vec::new();
        let p2 = pack_with(&m2, &[src.path()], &mut delta, &mut |_| {}, &Pass::Delta(&reuse), None)
            .expect("delta");
        assert_eq!(p2.bytes, 8, "a/f and new only");
        let how = Receive {
            finish: true,
            reuse: reuse.iter().map(|(k, sum)| (k.clone(), (first_root.join(&k.1), sum.clone()))).collect(),
            done: None,
        };
        let dst = tempfile::tempdir().expect("tempdir");
        let got =
            receive_with(&m2, &[dst.path().to_path_buf()], &delta[..], &mut |_| {}, &how).expect("delta");
        let full = packed(&m2, src.path()).1;
        verify(&m2, &full, &got).expect("every file's sum equals a full copy's");
        assert_eq!(std::fs::read(dst.path().join("a/f")).expect("f"), b"HELLO");
        assert_eq!(std::fs::read(dst.path().join("a/b/big")).expect("big").len(), 300_000);
        assert!(!dst.path().join("gone").exists());
        // A file to reuse that is not the one the first pass received is refused naming the rule.
        let bad = Receive {
            finish: true,
            reuse: [((0, "a/b/big".to_owned()), (first_root.join("a/f"), "0".repeat(64)))].into(),
            done: None,
        };
        let dst = tempfile::tempdir().expect("tempdir");
        let e = receive_with(&m2, &[dst.path().to_path_buf()], &delta[..], &mut |_| {}, &bad)
            .expect_err("refused");
        assert!(e.to_string().contains("reused files were received before"), "{e}");
    }

    #[test]
    fn a_stream_that_breaks_keeps_the_files_that_arrived_whole() {
        let src = tempfile::tempdir().expect("tempdir");
        tree(src.path());
        let w = walk(VolumeId::Named("data".into()), src.path());
        let m = Manifest { volumes: vec![w.data.expect("data")] };
        let (stream, sent) = packed(&m, src.path());
        // Cut inside the last header (the hard link h), after every file.
        let cut = &stream[..stream.len() - 1024 - 256];
        let done = std::sync::Arc::new(std::sync::Mutex::new(HashMap::new()));
        let how = Receive { finish: true, reuse: HashMap::new(), done: Some(done.clone()) };
        let dst = tempfile::tempdir().expect("tempdir");
        let e = receive_with(&m, &[dst.path().to_path_buf()], cut, &mut |_| {}, &how).expect_err("cut");
        assert!(matches!(e, ReceiveError::Stream(_)), "{e}");
        let done = done.lock().expect("lock").clone();
        let mut whole: Vec<&str> = done.keys().map(|k| k.1.as_str()).collect();
        whole.sort_unstable();
        assert_eq!(whole, ["a/b/big", "a/f"], "the files before the cut are whole");
        // A resumed pass takes what arrived whole and gets the rest from a delta.
        let files: Vec<&str> =
            m.volumes[0].entries.iter().filter(|e| e.kind == Kind::File).map(|e| e.path.as_str()).collect();
        let reuse: HashMap<FileKey, String> = done
            .iter()
            .map(|(k, sum)| {
                let i = files.iter().position(|p| *p == k.1).expect("a file of the manifest");
                assert_eq!(sum, &sent[i], "the sum of {} as the sender read it", k.1);
                (k.clone(), sum.clone())
            })
            .collect();
        let mut delta = Vec::new();
        super::super::source::pack_with(
            &m,
            &[src.path()],
            &mut delta,
            &mut |_| {},
            &super::super::source::Pass::Delta(&reuse),
            None,
        )
        .expect("delta");
        let how = Receive {
            finish: true,
            reuse: reuse.iter().map(|(k, sum)| (k.clone(), (dst.path().join(&k.1), sum.clone()))).collect(),
            done: None,
        };
        let again = tempfile::tempdir().expect("tempdir");
        let got =
            receive_with(&m, &[again.path().to_path_buf()], &delta[..], &mut |_| {}, &how).expect("resumed");
        verify(&m, &sent, &got).expect("every sum equal after the resumed pass");
    }

    #[test]
    fn the_walk_lists_every_blocker() {
        let src = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("out")).expect("symlink");
        std::os::unix::fs::symlink("../../x", src.path().join("up")).expect("symlink");
        nix::unistd::mkfifo(&src.path().join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("fifo");
        let w = walk(VolumeId::Named("data".into()), src.path());
        assert!(w.data.is_none());
        assert_eq!(w.blockers.len(), 3, "{:?}", w.blockers);
        assert!(w.blockers.iter().any(|b| b.contains("/etc/passwd") && b.contains("symlinks stay inside")));
        assert!(w.blockers.iter().any(|b| b.contains("a FIFO")));
    }

    /// A stream whose headers are written by hand, as a hostile host would.
    fn hostile(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, t, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_entry_type(*t);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            if let Some(l) = link {
                h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_cksum();
            b.append(&h, *data).expect("append");
        }
        b.into_inner().expect("tar")
    }

    fn simple() -> Manifest {
        use super::super::tests::{dir, file};
        Manifest {
            volumes: vec![super::super::VolumeData {
                volume: VolumeId::Named("data".into()),
                entries: vec![dir(""), file("f", 3)],
            }],
        }
    }

    #[test]
    fn hostile_streams_are_refused_and_write_nothing_outside() {
        let m = simple();
        let outside = tempfile::tempdir().expect("tempdir");
        let escape =
            format!("0/../../{}/pwned", outside.path().file_name().and_then(|n| n.to_str()).unwrap_or("x"));
        let abs = format!("{}/pwned", outside.path().display());
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                hostile(&[
                    ("0", tar::EntryType::Directory, b"", None),
                    (&escape, tar::EntryType::Regular, b"abc", None),
                ]),
                "no path traversal",
            ),
            (
                hostile(&[
                    ("0", tar::EntryType::Directory, b"", None),
                    (&abs, tar::EntryType::Regular, b"abc", None),
                ]),
                "relative paths",
            ),
            (
                hostile(&[
                    ("0", tar::EntryType::Directory, b"", None),
                    ("0/f", tar::EntryType::Symlink, b"", Some("/etc")),
                ]),
                "stream follows the manifest",
            ),
            (
                hostile(&[
                    ("0", tar::EntryType::Directory, b"", None),
                    ("0/f", tar::EntryType::Char, b"", None),
                ]),
                "no device files",
            ),
            (
                hostile(&[
                    ("0", tar::EntryType::Directory, b"", None),
                    ("0/f", tar::EntryType::Regular, &[1u8; 4096], None),
                ]),
                "size",
            ),
            (
                hostile(&[
                    ("0", tar::EntryType::Directory, b"", None),
                    ("0/g", tar::EntryType::Regular, b"abc", None),
                ]),
                "stream follows the manifest",
            ),
            (
                hostile(&[
                    ("0", tar::EntryType::Directory, b"", None),
                    ("0/f", tar::EntryType::Regular, b"abc", None),
                    ("0/x", tar::EntryType::Regular, b"abc", None),
                ]),
                "not in the manifest",
            ),
        ];
        for (stream, rule) in cases {
            let dst = tempfile::tempdir().expect("tempdir");
            let e = receive(&m, &[dst.path().to_path_buf()], &stream[..], &mut |_| {}).expect_err(rule);
            assert!(e.to_string().contains(rule), "{e} should name {rule}");
            assert!(!outside.path().join("pwned").exists(), "nothing written outside for {rule}");
        }
    }
}
