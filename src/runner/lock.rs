//! The runner's file-system lock: it may read any file and list any directory, and do nothing
//! else to the file system (no write, create, remove, rename, truncate, execute, device ioctl).
//!
//! Why here and not in the unit: systemd's ProtectSystem=, ProtectHome=, PrivateTmp=,
//! ProtectKernelTunables=, ProtectControlGroups= and their kin build a mount namespace at every
//! start, and on systemd 252 that costs time in proportion to the host's mount table, which every
//! running container grows (1.4-1.9 s a start at 500 containers: BENCHMARKS.md). Landlock is
//! enforced by the kernel on every open, whatever the mounts, and is set up in microseconds. It
//! also forbids more than those settings did: they left /tmp (private), /dev and /proc/self
//! writable, this leaves nothing writable. Connecting to the Docker, notify and journal sockets
//! and writing to inherited descriptors (stdout, stderr) are not file-system accesses to
//! Landlock, so they keep working. See docs/security.md, "The runner's sandbox".

use landlock::{
    Access, AccessFs, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
    ABI,
};

/// The newest Landlock ABI whose rights the runner asks for; an older kernel enforces what it
/// knows (the crate's best-effort mode), a kernel without Landlock nothing.
const ABI_WANTED: ABI = ABI::V5;

/// How much of the lock the kernel enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    Fully,
    Partly,
    /// No Landlock in this kernel (older than 5.13, or not in its `lsm=` list).
    Not,
}

/// Locks the calling process (and every thread it starts afterwards) to reading. Call it first,
/// before any thread or any input: the lock applies to the calling thread and its descendants.
pub fn restrict_to_reading() -> Result<Locked, String> {
    let read: BitFlags<AccessFs> = AccessFs::ReadFile | AccessFs::ReadDir;
    let root = PathFd::new("/").map_err(|e| format!("cannot open / for the file-system lock: {e}"))?;
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(ABI_WANTED))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rule(PathBeneath::new(root, read)))
        .and_then(|r| r.restrict_self())
        .map_err(|e| format!("cannot set up the file-system lock: {e}"))?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => Locked::Fully,
        RulesetStatus::PartiallyEnforced => Locked::Partly,
        RulesetStatus::NotEnforced => Locked::Not,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const CHILD: &str = "CONTAINERCTL_TEST_LOCK_DIR";

    /// Runs in a child process of `lock_allows_reading_only` (a lock cannot be lifted, so the
    /// test process itself must not take it); a no-op when run on its own.
    #[test]
    fn lock_child() {
        let Some(dir) = std::env::var_os(CHILD) else { return };
        let dir = std::path::PathBuf::from(dir);
        if restrict_to_reading().expect("the lock is set up") == Locked::Not {
            println!("no landlock in this kernel");
            return;
        }
        assert_eq!(std::fs::read_to_string(dir.join("kept")).expect("reading is allowed"), "kept");
        assert!(std::fs::read_dir(&dir).is_ok(), "listing is allowed");
        let refused = |r: std::io::Result<()>, what: &str| {
            let e = r.expect_err(what);
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{what}: {e}");
        };
        refused(std::fs::write(dir.join("new"), "x"), "creating a file");
        refused(std::fs::write(dir.join("kept"), "changed"), "writing a file");
        refused(std::fs::remove_file(dir.join("kept")), "removing a file");
        refused(std::fs::create_dir(dir.join("sub")), "making a directory");
        refused(std::os::unix::fs::symlink("/", dir.join("link")), "making a symlink");
        refused(std::fs::rename(dir.join("kept"), dir.join("moved")), "renaming");
        refused(
            std::fs::OpenOptions::new().write(true).open("/proc/self/oom_score_adj").map(drop),
            "writing below /proc",
        );
        println!("locked to reading");
    }

    #[test]
    fn lock_allows_reading_only() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("kept"), "kept").expect("a file to read");
        let exe = std::env::current_exe().expect("the test binary's path");
        let out = Command::new(exe)
            .args(["--exact", "runner::lock::tests::lock_child", "--nocapture", "--test-threads=1"])
            .env(CHILD, dir.path())
            .output()
            .expect("the child test runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "the locked child failed:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("locked to reading") || stdout.contains("no landlock in this kernel"),
            "the child ran its checks: {stdout}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("kept")).expect("the file is still there"),
            "kept"
        );
    }
}
