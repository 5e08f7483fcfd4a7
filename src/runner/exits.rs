//! Restarts on the container's clock: `restart_sec` counts from the container's exit, as Docker's
//! restart delay does, not from the moment systemd's restart timer fires.
//!
//! Why: after a crash, systemd waits RestartSec=, then runs the start job, forks the runner,
//! which connects to dockerd, inspects the container and attaches to it before it asks for the
//! start: 35-50 ms after the delay on these test hosts (BENCHMARKS.md, "Restarts on the
//! container's clock"), where Docker's own restart asks for the start when its delay is over. So
//! the generator gives systemd a RestartSec= of `restart_sec` less [`LEAD`] ([`systemd_delay`]),
//! and the runner that systemd starts does all of that, then holds the start until `restart_sec`
//! has passed since the exit ([`hold`]). systemd still decides whether and when to restart (its
//! `Restart=`, restart counter and start limit are untouched); the container just never starts
//! earlier than `restart_sec` after it exited, nor later for systemd's and the runner's own work.
//!
//! The runner that saw the container exit by itself records when ([`ExitRecord::ended`]), in a
//! file of its own in [`DIR`]; so does one that stopped an unhealthy container, and one that
//! failed (its end is then the time, and the next runner holds before anything, [`Ended`]). The
//! next runner reads and clears it as it starts ([`ExitRecord::open`]). A stop records nothing,
//! so `systemctl restart` and `containerctl restart` are never held. The file is opened before
//! the runner locks itself to reading ([`super::lock`]) and written through that descriptor.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use crate::unit::UnitName;

/// How much of `restart_sec` the runner rather than systemd waits: more than systemd and the
/// runner take to get to the start on a busy host (35-50 ms measured), and small enough that a
/// hold never matters to anyone watching.
pub const LEAD: Duration = Duration::from_millis(250);

/// Where the runners record their containers' exits: one file per unit, named after it, holding
/// the time of the exit. Root's alone, like the start slots: whoever could write a unit's file
/// could hold back its restarts (by at most [`LEAD`]). The package's tmpfiles.d entry makes the
/// directory at boot; [`ExitRecord::open`] makes it when it is missing.
pub const DIR: &str = "/run/containerctl/exits";

/// systemd's RestartSec= for a unit's `restart_sec`: [`LEAD`] less, never below zero.
pub fn systemd_delay(restart_sec: Duration) -> Duration {
    restart_sec.saturating_sub(LEAD)
}

/// How long to hold a start back: the container exited by itself at `exited_ns` and may start
/// again `restart_sec` after that; it is `now_ns` (all ns since the epoch). Never more than
/// [`LEAD`] (systemd waited the rest), nor than `restart_sec`: so a start by hand right after a
/// crash waits at most that, and a clock that jumped never holds a start for long. Pure.
pub fn hold(exited_ns: i64, restart_sec: Duration, now_ns: i64) -> Duration {
    let delay = i64::try_from(restart_sec.as_nanos()).unwrap_or(i64::MAX);
    let left = exited_ns.saturating_add(delay).saturating_sub(now_ns);
    let left = Duration::from_nanos(u64::try_from(left).unwrap_or(0));
    left.min(LEAD).min(restart_sec)
}

/// Fixed width, so a record is rewritten in place (the runner may not truncate once locked): how
/// the run ended (`x` or `f`, [`Ended`]), then its time in 20 digits.
const WIDTH: usize = 21;

/// How a recorded run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container exited by itself, or was stopped for being unhealthy: the next runner
    /// prepares the container, then holds its start.
    Exit,
    /// The runner failed (dockerd unreachable, a pull that failed): the next runner holds before
    /// anything, so that failing runs follow each other `restart_sec` apart.
    Failure,
}

impl Ended {
    fn tag(self) -> char {
        match self {
            Ended::Exit => 'x',
            Ended::Failure => 'f',
        }
    }
}

/// A unit's exit record, opened before the runner's lock.
#[derive(Debug, Default)]
pub struct ExitRecord {
    file: Option<File>,
    /// How and when the previous run ended, if it said (read and cleared by [`ExitRecord::open`]).
    last: Option<(Ended, i64)>,
}

/// A record's text: `x` or `f`, then a positive time. Pure.
fn parse(text: &[u8]) -> Option<(Ended, i64)> {
    let text = std::str::from_utf8(text).ok()?;
    let how = match text.chars().next()? {
        'x' => Ended::Exit,
        'f' => Ended::Failure,
        _ => return None,
    };
    let at = text[1..].trim().parse::<i64>().ok().filter(|t| *t > 0)?;
    Some((how, at))
}

impl ExitRecord {
    /// Opens (making it, 0600) the record of `name` in `dir` (made 0700 if missing), takes the
    /// exit it holds and clears it. On any error the runner goes on without: `warn` is told, and
    /// restarts then wait systemd's RestartSec= alone.
    pub fn open(dir: &Path, name: &UnitName, warn: impl FnOnce(&str)) -> Self {
        match Self::try_open(dir, name) {
            Ok(r) => r,
            Err(e) => {
                warn(&format!(
                    "cannot open this unit's exit record in {}: its restarts wait {} ms less than restart_sec: {e}",
                    dir.display(),
                    LEAD.as_millis()
                ));
                Self::default()
            }
        }
    }

    fn try_open(dir: &Path, name: &UnitName) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        super::slots::private_dir(dir, "others could hold back the restarts of any unit")?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(dir.join(name.as_str()))?;
        let mut buf = [0u8; WIDTH];
        let n = file.read_at(&mut buf, 0)?;
        let last = parse(&buf[..n]);
        if last.is_some() {
            file.write_all_at(&[b'0'; WIDTH], 0)?;
        }
        Ok(ExitRecord { file: Some(file), last })
    }

    /// When the last run ended, if it ended as `how` (as the previous runner recorded it).
    pub fn last(&self, how: Ended) -> Option<i64> {
        self.last.filter(|(h, _)| *h == how).map(|(_, at)| at)
    }

    /// Records that this run ended as `how` at `at_ns`; errors are only given to `warn`: a
    /// restart then waits systemd's RestartSec= alone.
    pub fn ended(&self, how: Ended, at_ns: i64, warn: impl FnOnce(&str)) {
        let Some(file) = &self.file else { return };
        let text = format!("{}{:020}", how.tag(), at_ns.max(0));
        if let Err(e) = file.write_all_at(&text.as_bytes()[..WIDTH.min(text.len())], 0) {
            warn(&format!("cannot record the end of this run: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    #[test]
    fn systemd_waits_all_but_the_lead() {
        assert_eq!(systemd_delay(Duration::from_secs(2)), Duration::from_millis(1750));
        assert_eq!(systemd_delay(Duration::from_millis(100)), Duration::ZERO);
        assert_eq!(systemd_delay(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_start_is_held_until_restart_sec_after_the_exit() {
        let exit = 1_000_000 * MS;
        let sec = Duration::from_secs(2);
        // systemd fired at 1.75 s, the runner is ready 40 ms later: it waits the last 210 ms.
        assert_eq!(hold(exit, sec, exit + 1790 * MS), Duration::from_millis(210));
        // Late (a busy host, a start slot): no hold at all.
        assert_eq!(hold(exit, sec, exit + 2300 * MS), Duration::ZERO);
        // A start by hand right after the crash: at most the lead.
        assert_eq!(hold(exit, sec, exit + 10 * MS), LEAD);
        // A short restart_sec (systemd's RestartSec=0): at most restart_sec itself.
        let short = Duration::from_millis(100);
        assert_eq!(hold(exit, short, exit + 30 * MS), Duration::from_millis(70));
        assert_eq!(hold(exit, short, exit - 5000 * MS), short, "an exit in the future (a clock jump)");
        assert_eq!(hold(exit, Duration::ZERO, exit), Duration::ZERO);
        assert_eq!(hold(i64::MAX, Duration::MAX, 0), LEAD, "no overflow");
    }

    #[test]
    fn records_say_how_and_when() {
        assert_eq!(parse(b"x00000000000000000042"), Some((Ended::Exit, 42)));
        assert_eq!(parse(b"f01796165297045473010"), Some((Ended::Failure, 1_796_165_297_045_473_010)));
        assert_eq!(parse(b"000000000000000000000"), None, "cleared");
        assert_eq!(parse(b"x00000000000000000000"), None, "no time");
        assert_eq!(parse(b"x-0000000000000000001"), None);
        assert_eq!(parse(b"y00000000000000000042"), None);
        assert_eq!(parse(b""), None);
        assert_eq!(parse(&[0xff, b'1']), None);
    }

    #[test]
    fn an_exit_is_read_once_and_only_an_exit_is_recorded() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let parent = tempfile::tempdir().expect("a temporary directory");
        let dir = parent.path().join("exits");
        let name = UnitName::new("web").expect("a name");
        let warned = std::cell::RefCell::new(Vec::<String>::new());
        let warn = |m: &str| warned.borrow_mut().push(m.to_owned());
        let first = ExitRecord::open(&dir, &name, warn);
        assert_eq!(first.last(Ended::Exit), None, "nothing recorded yet");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("web")), 0o600);
        first.ended(Ended::Exit, 1_796_165_297_045_473_010, warn);
        let second = ExitRecord::open(&dir, &name, warn);
        assert_eq!(second.last(Ended::Exit), Some(1_796_165_297_045_473_010));
        assert_eq!(second.last(Ended::Failure), None);
        second.ended(Ended::Failure, 1_796_165_300_000_000_000, warn);
        let third = ExitRecord::open(&dir, &name, warn);
        assert_eq!(third.last(Ended::Failure), Some(1_796_165_300_000_000_000));
        assert_eq!(third.last(Ended::Exit), None);
        let fourth = ExitRecord::open(&dir, &name, warn);
        assert_eq!(fourth.last, None, "read once: a later start is not held");
        std::fs::write(dir.join("web"), "garbage").expect("write");
        assert_eq!(ExitRecord::open(&dir, &name, warn).last, None, "not a record: ignored");
        assert!(warned.borrow().is_empty(), "{:?}", warned.borrow());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("0755");
        let refused = ExitRecord::open(&dir, &name, warn);
        assert_eq!(refused.last, None);
        refused.ended(Ended::Exit, 1, warn);
        assert!(warned.borrow()[0].contains("mode 0755"), "{:?}", warned.borrow());
    }

    #[test]
    fn a_link_in_place_of_the_record_is_not_followed() {
        let parent = tempfile::tempdir().expect("a temporary directory");
        let dir = parent.path().join("exits");
        std::fs::create_dir(&dir).expect("dir");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("0700");
        let target = parent.path().join("elsewhere");
        std::fs::write(&target, "x00000000000000000042").expect("write");
        std::os::unix::fs::symlink(&target, dir.join("web")).expect("link");
        let mut warned = String::new();
        let r = ExitRecord::open(&dir, &UnitName::new("web").expect("a name"), |m| warned = m.to_owned());
        assert_eq!(r.last, None);
        assert!(!warned.is_empty(), "the link is refused");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "x00000000000000000042", "not cleared");
    }
}
