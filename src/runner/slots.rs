//! The host-wide limit on container starts: a runner takes one of the host's start slots
//! ([`DIR`], `[units] parallel_starts` of them) before it talks to dockerd, and gives it back once
//! its container runs.
//!
//! Why: a start is CPU work in dockerd, containerd and runc. At boot systemd starts every enabled
//! unit at once; 500 starts on two cores queued there past systemd's start timeout, which killed
//! and restarted them, and the boot never converged (BENCHMARKS.md). Waiting here instead costs
//! nothing, and the runner keeps systemd's start timeout from counting the wait (runner::run).
//!
//! A slot is an exclusive flock(2) on one of the files: it needs only a descriptor, and the
//! kernel drops it when the runner exits, however it ends. The generator tells the runners how
//! many slots there are ([`COUNT_ENV`], in its drop-in for every instance of the template); each
//! runner opens the slot files, making the missing ones, before it locks itself to reading
//! ([`prepare`]). No count in the environment: no limit.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

/// How often a waiting runner looks at every slot again (besides waiting on one of them) and
/// reports that it still waits.
const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// A start slot, held until dropped.
#[derive(Debug)]
pub struct Slot {
    _lock: Flock<File>,
    pub index: u32,
}

/// Where the host's start slots are: one empty file per unit that may be starting at once,
/// named `0` to `N-1`. Root's alone, the directory 0700 and the files 0600: anyone who can open a
/// slot file can flock it and hold back every start. The package's tmpfiles.d entry makes the
/// directory at boot; [`open`] makes it and the files when they are missing.
pub const DIR: &str = "/run/containerctl/start-slots";

/// The environment variable that gives the number of slots (`[units] parallel_starts`), set by
/// the generator's drop-in for every instance of the template (`generator::START_SLOTS_DROPIN`).
pub const COUNT_ENV: &str = "CONTAINERCTL_START_SLOTS";

/// [`DIR`], or `$CONTAINERCTL_START_SLOTS_DIR` (tests).
pub fn dir() -> PathBuf {
    std::env::var_os("CONTAINERCTL_START_SLOTS_DIR").map_or_else(|| PathBuf::from(DIR), PathBuf::from)
}

/// Opens the slot files `0` to `count - 1` of `dir`, making `dir` (0700) and the missing files
/// (0600) first; files of a higher index (a larger count before) are left alone. Refuses a `dir`
/// that is not a directory owned by this user with no access for others.
pub fn open(dir: &Path, count: u32) -> std::io::Result<Vec<(u32, File)>> {
    use std::os::unix::fs::OpenOptionsExt;
    private_dir(dir, "others could hold back every start")?;
    (0..count)
        .map(|i| {
            let file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(dir.join(i.to_string()))?;
            Ok((i, file))
        })
        .collect()
}

/// Makes `dir` (0700) if it is missing, and refuses it unless it is a directory of this user's
/// alone; `why` says what others could do with it otherwise.
pub(super) fn private_dir(dir: &Path, why: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let meta = std::fs::symlink_metadata(dir)?;
    let mode = meta.mode() & 0o7777;
    if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() || mode & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is not a directory of this user's alone (mode {mode:04o}, owner {}): {why}; make it \
             root's, mode 0700",
            dir.display(),
            meta.uid()
        )));
    }
    Ok(())
}

/// The runner's start slots, opened before it locks itself to reading (after that it can make no
/// file): as many as [`COUNT_ENV`] says, in [`dir`]. Empty, so no limit, without a valid count;
/// and when they cannot be opened, which `warn` is told about.
pub fn prepare(warn: impl FnOnce(&str)) -> Vec<(u32, File)> {
    let Some(value) = std::env::var_os(COUNT_ENV) else { return Vec::new() };
    let dir = dir();
    let count = value
        .to_str()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| (1..=crate::config::MAX_PARALLEL_STARTS).contains(n));
    let Some(count) = count else {
        warn(&format!(
            "{COUNT_ENV}={} is not from 1 to {}: this unit starts without the host-wide limit",
            value.to_string_lossy(),
            crate::config::MAX_PARALLEL_STARTS
        ));
        return Vec::new();
    };
    open(&dir, count).unwrap_or_else(|e| {
        warn(&format!(
            "cannot open the start slots in {}: this unit starts without the host-wide limit: {e}",
            dir.display()
        ));
        Vec::new()
    })
}

/// Takes the first free slot of `slots` without waiting; the others stay in `slots`, in order.
fn try_take(slots: &mut Vec<(u32, File)>) -> Option<Slot> {
    for i in 0..slots.len() {
        let (index, file) = slots.swap_remove(i);
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Some(Slot { _lock: lock, index }),
            Err((file, _)) => {
                slots.push((index, file));
                let last = slots.len() - 1;
                slots.swap(i, last);
            }
        }
    }
    None
}

/// What [`take`] reports while it waits: how long so far and how many slots there are.
pub struct Waiting {
    pub since: Duration,
    pub slots: usize,
}

/// Waits for one of `slots` (from [`prepare`]). None: there are none, so there is no limit. Err:
/// none came free within `bound` (how long it waited). `waiting` is called when the wait begins and
/// every [`SWEEP_EVERY`] after, so the caller can tell systemd.
///
/// The wait is a blocking flock on one slot (`spread` picks which) on a thread of its own,
/// plus a look at every slot every [`SWEEP_EVERY`], so a runner queued behind a long start
/// takes another slot that came free. The thread is not joined: it ends with the process.
pub async fn take(
    mut slots: Vec<(u32, File)>,
    spread: usize,
    bound: Duration,
    mut waiting: impl FnMut(Waiting),
) -> Result<Option<Slot>, Duration> {
    let count = slots.len();
    if count == 0 {
        return Ok(None);
    }
    if let Some(slot) = try_take(&mut slots) {
        return Ok(Some(slot));
    }
    let start = Instant::now();
    waiting(Waiting { since: Duration::ZERO, slots: count });
    let (index, file) = slots.swap_remove(spread % count);
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusive) {
            // Dropped (so unlocked) at once if the runner took another slot meanwhile.
            let _ = tx.send(Slot { _lock: lock, index });
        }
    });
    let mut waiter_open = true;
    let mut sweep = tokio::time::interval_at(tokio::time::Instant::now() + SWEEP_EVERY, SWEEP_EVERY);
    loop {
        tokio::select! {
            got = &mut rx, if waiter_open => match got {
                Ok(slot) => return Ok(Some(slot)),
                Err(_) => waiter_open = false,
            },
            _ = sweep.tick() => {
                if let Some(slot) = try_take(&mut slots) {
                    return Ok(Some(slot));
                }
                let since = start.elapsed();
                if since >= bound {
                    return Err(since);
                }
                waiting(Waiting { since, slots: count });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
    }

    #[test]
    fn no_slots_means_no_limit() {
        let got = runtime().block_on(take(Vec::new(), 0, Duration::from_secs(1), |_| {}));
        assert!(matches!(got, Ok(None)), "{got:?}");
    }

    #[test]
    fn slots_are_made_root_only_and_kept() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let parent = tempfile::tempdir().expect("a temporary directory");
        let dir = parent.path().join("start-slots");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").mode() & 0o777;
        let slots = open(&dir, 3).expect("made");
        assert_eq!(slots.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(mode(&dir), 0o700, "only root may reach the slots");
        for i in 0..3 {
            assert_eq!(mode(&dir.join(i.to_string())), 0o600, "slot {i}: only root may flock it");
        }
        let inode = std::fs::metadata(dir.join("1")).expect("slot 1").ino();
        let fewer = open(&dir, 2).expect("opened again");
        assert_eq!(fewer.len(), 2);
        assert_eq!(
            std::fs::metadata(dir.join("1")).expect("slot 1").ino(),
            inode,
            "an existing slot is kept"
        );
        assert!(dir.join("2").exists(), "a higher slot is left alone: a runner may hold it");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("0755");
        let refused = open(&dir, 2).expect_err("a directory others can reach");
        assert!(refused.to_string().contains("mode 0755"), "{refused}");
    }

    #[test]
    fn slots_are_exclusive_and_a_waiter_gets_the_one_freed() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let slots = || open(&dir.path().join("s"), 2).expect("two slots");
        let rt = runtime();
        let bound = Duration::from_secs(30);
        let a = rt.block_on(take(slots(), 0, bound, |_| {})).expect("a slot").expect("limited");
        let b = rt.block_on(take(slots(), 0, bound, |_| {})).expect("a slot").expect("limited");
        assert_ne!(a.index, b.index, "two holders never share a slot");
        let mut waits = 0;
        let freed = a.index;
        let got = rt.block_on(async {
            let waiter = take(slots(), 1, bound, |w| {
                waits += 1;
                assert_eq!(w.slots, 2);
            });
            tokio::pin!(waiter);
            // Both taken: the third waits until one is given back.
            let early = tokio::time::timeout(Duration::from_millis(300), &mut waiter).await;
            assert!(early.is_err(), "a third runner must wait while both slots are held");
            drop(a);
            waiter.await
        });
        let c = got.expect("a slot").expect("limited");
        assert_eq!(c.index, freed, "the waiter gets the slot that was given back");
        assert!(waits >= 1, "the wait was reported");
        drop(b);
    }

    #[test]
    fn a_wait_past_its_bound_ends_with_how_long_it_waited() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let slots = || open(&dir.path().join("s"), 1).expect("one slot");
        let rt = runtime();
        let held = rt.block_on(take(slots(), 0, Duration::from_secs(1), |_| {})).expect("a slot");
        let got = rt.block_on(take(slots(), 0, Duration::from_millis(100), |_| {}));
        let waited = got.expect_err("the only slot is held");
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        drop(held);
    }
}
