//! The one way the project replaces a file: a temporary file with a unique name in the same
//! directory, written with its final mode, fsynced, renamed over the target, then the directory
//! fsynced so the rename survives a crash. A failure removes the temporary file and leaves the
//! target as it was. A leaf: it uses nothing of the project.
//!
//! Temporary files are named `.NAME.tmp-PID-N`, so a process that finds `.NAME.tmp-*` files of a
//! process that is gone knows they are crash leftovers.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `bytes`, created with `mode` (before the umask). The parent directory
/// must exist: who creates it decides its mode (see [`write_private`]).
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = parent(path);
    let tmp = temp_path(dir, path);
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        // The temporary file may not exist (open failed) or be gone (rename done): either is fine.
        if let Err(e) = std::fs::remove_file(&tmp) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("cannot remove temporary file {}: {e}", tmp.display());
            }
        }
    }
    result
}

/// [`write`], creating a missing parent directory (and its parents) with mode 0700 first.
pub fn write_private(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = parent(path);
    if !dir.exists() {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    write(path, bytes, mode)
}

/// Removes the temporary files a process that is gone left in `dir`: `.NAME.tmp-PID-N` (and
/// `.NAME.tmp-PID` of older releases) whose PID `is_alive` says is not a live writer. Returns the
/// paths removed and, separately, the ones that could not be, with the reason.
pub fn remove_stale(
    dir: &Path,
    is_alive: impl Fn(u32) -> bool,
) -> (Vec<PathBuf>, Vec<(PathBuf, std::io::Error)>) {
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (removed, failed),
        Err(e) => {
            failed.push((dir.to_owned(), e));
            return (removed, failed);
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_pid) else { continue };
        if is_alive(pid) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => failed.push((path, e)),
        }
    }
    (removed, failed)
}

/// The PID in a temporary file's name `.NAME.tmp-PID-N` or `.NAME.tmp-PID`, if it is one.
fn temp_pid(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    let (target, suffix) = rest.rsplit_once(".tmp-")?;
    if target.is_empty() {
        return None;
    }
    let (pid, n) = suffix.split_once('-').unwrap_or((suffix, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(n) {
        return None;
    }
    pid.parse().ok()
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_path(dir: &Path, path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("web.toml");
        write(&p, b"one", 0o644).expect("write");
        write(&p, b"two", 0o644).expect("write");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "two");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1, "temporary file left behind");
    }

    #[test]
    fn creates_with_the_mode_and_a_private_parent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("new").join("secret");
        assert!(write(&p, b"x", 0o600).is_err(), "a missing parent is the caller's to create");
        write_private(&p, b"x", 0o600).expect("write");
        let mode = std::fs::metadata(&p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode =
            std::fs::metadata(p.parent().expect("parent")).expect("stat").permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700);
    }

    #[test]
    fn a_failed_write_keeps_the_target_and_cleans_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("sub");
        std::fs::create_dir(&target).expect("mkdir");
        std::fs::write(target.join("keep"), "k").expect("write");
        // Renaming a file over a non-empty directory fails.
        assert!(write(&target, b"x", 0o644).is_err());
        assert!(target.join("keep").exists());
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1, "temporary file left behind");
    }

    #[test]
    fn stale_temporaries_of_dead_writers_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for f in [
            "web.toml",
            ".web.toml.tmp-111-0",
            ".web.toml.tmp-111",
            ".db.toml.tmp-222-7",
            ".web.toml.tmp-x-1",
            ".tmp-111-0",
            "web.toml.tmp-111-0",
            ".web.toml.tmp-111-0-1",
        ] {
            std::fs::write(d.join(f), "x").expect("write");
        }
        let (removed, failed) = remove_stale(d, |pid| pid == 222);
        assert!(failed.is_empty(), "{failed:?}");
        let mut removed: Vec<String> =
            removed.iter().map(|p| p.file_name().expect("name").to_string_lossy().into_owned()).collect();
        removed.sort();
        assert_eq!(removed, [".web.toml.tmp-111", ".web.toml.tmp-111-0"]);
        let mut left: Vec<String> = std::fs::read_dir(d)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".db.toml.tmp-222-7",
                ".tmp-111-0",
                ".web.toml.tmp-111-0-1",
                ".web.toml.tmp-x-1",
                "web.toml",
                "web.toml.tmp-111-0"
            ]
        );
        // A written file's own temporary name is recognised.
        let own = temp_path(d, &d.join("web.toml"));
        let own = own.file_name().expect("name").to_string_lossy().into_owned();
        assert_eq!(temp_pid(&own), Some(std::process::id()));
        assert!(remove_stale(&d.join("missing"), |_| false).0.is_empty());
    }

    #[test]
    fn temporary_names_are_unique() {
        let d = Path::new("/x");
        assert_ne!(temp_path(d, Path::new("/x/a")), temp_path(d, Path::new("/x/a")));
    }
}
