//! The host-wide limit on container starts: a runner takes one of the start slots the generator
//! made (`generator::START_SLOTS_DIR`, `[units] parallel_starts` of them) before it talks to
//! dockerd, and gives it back once its container runs.
//!
//! Why: a start is CPU work in dockerd, containerd and runc. At boot systemd starts every enabled
//! unit at once; 500 starts on two cores queued there past systemd's start timeout, which killed
//! and restarted them, and the boot never converged (BENCHMARKS.md). Waiting here instead costs
//! nothing, and the runner keeps systemd's start timeout from counting the wait (runner::run).
//!
//! A slot is an exclusive flock(2) on one of the files: it needs only a descriptor opened for
//! reading, which the runner's Landlock lock allows, and the kernel drops it when the runner
//! exits, however it ends. No slot files (the generator did not run): no limit.

use std::fs::File;
use std::path::Path;
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

/// The slot files of `dir` in index order, opened for reading; empty when there are none.
fn open_all(dir: &Path) -> Vec<(u32, File)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut slots: Vec<(u32, File)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let index = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((index, File::open(e.path()).ok()?))
        })
        .collect();
    slots.sort_by_key(|(i, _)| *i);
    slots
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

/// Waits for a start slot of `dir`. None: `dir` has no slots, so there is no limit. Err: none
/// came free within `bound` (how long it waited). `waiting` is called when the wait begins and
/// every [`SWEEP_EVERY`] after, so the caller can tell systemd.
///
/// The wait is a blocking flock on one slot (`spread` picks which) on a thread of its own,
/// plus a look at every slot every [`SWEEP_EVERY`], so a runner queued behind a long start
/// takes another slot that came free. The thread is not joined: it ends with the process.
pub async fn take(
    dir: &Path,
    spread: usize,
    bound: Duration,
    mut waiting: impl FnMut(Waiting),
) -> Result<Option<Slot>, Duration> {
    let mut slots = open_all(dir);
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
    fn no_slot_files_means_no_limit() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let got = runtime().block_on(take(&dir.path().join("absent"), 0, Duration::from_secs(1), |_| {}));
        assert!(matches!(got, Ok(None)), "{got:?}");
    }

    #[test]
    fn slots_are_exclusive_and_a_waiter_gets_the_one_freed() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        crate::generator::generate_start_slots(dir.path(), 2).expect("two slots");
        let rt = runtime();
        let bound = Duration::from_secs(30);
        let a = rt.block_on(take(dir.path(), 0, bound, |_| {})).expect("a slot").expect("limited");
        let b = rt.block_on(take(dir.path(), 0, bound, |_| {})).expect("a slot").expect("limited");
        assert_ne!(a.index, b.index, "two holders never share a slot");
        let mut waits = 0;
        let freed = a.index;
        let got = rt.block_on(async {
            let waiter = take(dir.path(), 1, bound, |w| {
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
        crate::generator::generate_start_slots(dir.path(), 1).expect("one slot");
        let rt = runtime();
        let held = rt.block_on(take(dir.path(), 0, Duration::from_secs(1), |_| {})).expect("a slot");
        let got = rt.block_on(take(dir.path(), 0, Duration::from_millis(100), |_| {}));
        let waited = got.expect_err("the only slot is held");
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        drop(held);
    }
}
