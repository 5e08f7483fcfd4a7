//! Splits the container's output into lines and writes them where journald files them under
//! the unit: stdout at info priority, stderr at warning, using the `<N>` prefixes journald reads
//! on a service's streams (SyslogLevelPrefix=, on by default).

use std::io::Write;
use std::time::{Duration, Instant};

use crate::unit::LogRateLimit;

/// After a window in which the output went over the unit's `log_rate_limit`, how long past the
/// window's end the runner writes its note: journald reports a drop only when the unit's next
/// message arrives in a new window, so the note makes the report appear now.
pub const NOTE_MARGIN: Duration = Duration::from_millis(500);

/// Longest line passed on whole; longer ones are split, as journald would.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Accumulates bytes and yields complete lines.
#[derive(Default)]
pub struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    /// Adds `bytes` and returns every line now complete, without the newline.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            out.push(line);
        }
        while self.buf.len() >= MAX_LINE {
            out.push(self.buf.drain(..MAX_LINE).collect());
        }
        out
    }

    /// The unterminated rest, if any (at the end of the stream).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        (!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf))
    }
}

/// Counts lines in windows of the unit's rate limit, as journald does (roughly: journald also
/// counts the runner's own lines and allows more when its disk has much free space), to tell when
/// a window went over it.
#[derive(Debug)]
pub struct RateWindow {
    burst: u64,
    interval: Duration,
    start: Option<Instant>,
    count: u64,
    note_due: Option<Instant>,
    /// Stderr lines in the window: journald counts priorities apart (info with notice, warning on
    /// its own) and reports a pool's drop only with a message of that pool.
    stderr: bool,
}

impl RateWindow {
    pub fn new(limit: LogRateLimit) -> Option<Self> {
        match limit {
            LogRateLimit::Off => None,
            LogRateLimit::Limit { burst, interval } => Some(RateWindow {
                burst: burst.into(),
                interval,
                start: None,
                count: 0,
                note_due: None,
                stderr: false,
            }),
        }
    }

    /// `n` lines of `stream` written at `now`.
    pub fn count(&mut self, now: Instant, stream: Stream, n: usize) {
        let start = match self.start {
            Some(start) if now < start + self.interval => start,
            _ => {
                self.start = Some(now);
                self.count = 0;
                if self.note_due.is_none() {
                    self.stderr = false;
                }
                now
            }
        };
        self.count += n as u64;
        self.stderr |= stream == Stream::Stderr;
        if self.count > self.burst && self.note_due.is_none() {
            self.note_due = Some(start + self.interval + NOTE_MARGIN);
        }
    }

    /// When the note about a window that went over the limit is due.
    pub fn note_due(&self) -> Option<Instant> {
        self.note_due
    }

    /// The note, once written, and whether to write it at warning priority too (stderr's pool).
    pub fn take_note(&mut self) -> (String, bool) {
        self.note_due = None;
        let note = format!(
            "the output went over log_rate_limit ({} lines per {}s): journald reports what it dropped just before this line",
            self.burst,
            self.interval.as_secs_f64()
        );
        (note, std::mem::take(&mut self.stderr))
    }
}

/// Writes lines of the container's two streams to the runner's stdout.
pub struct Relay {
    journal: bool,
    stdout: Lines,
    stderr: Lines,
    window: Option<RateWindow>,
}

impl Relay {
    /// `journal`: stdout is a journald stream (systemd sets JOURNAL_STREAM), so prefix priorities.
    pub fn new(journal: bool) -> Self {
        Relay { journal, stdout: Lines::default(), stderr: Lines::default(), window: None }
    }

    pub fn from_env() -> Self {
        Self::new(std::env::var_os("JOURNAL_STREAM").is_some())
    }

    /// Watches the unit's rate limit (see [`RateWindow`]).
    pub fn with_limit(mut self, limit: LogRateLimit) -> Self {
        self.window = RateWindow::new(limit);
        self
    }

    /// When a note about a window over the rate limit is due (see [`Relay::take_note`]).
    pub fn note_due(&self) -> Option<Instant> {
        self.window.as_ref().and_then(RateWindow::note_due)
    }

    /// The note to log at [`Relay::note_due`], and whether at warning priority too.
    pub fn take_note(&mut self) -> Option<(String, bool)> {
        self.window.as_mut().filter(|w| w.note_due().is_some()).map(RateWindow::take_note)
    }

    pub fn push(&mut self, stream: Stream, bytes: &[u8]) {
        let lines = match stream {
            Stream::Stdout => self.stdout.push(bytes),
            Stream::Stderr => self.stderr.push(bytes),
        };
        self.write(stream, lines);
    }

    pub fn finish(&mut self) {
        let out: Vec<_> = self.stdout.finish().into_iter().collect();
        self.write(Stream::Stdout, out);
        let err: Vec<_> = self.stderr.finish().into_iter().collect();
        self.write(Stream::Stderr, err);
    }

    fn write(&mut self, stream: Stream, lines: Vec<Vec<u8>>) {
        if lines.is_empty() {
            return;
        }
        if let Some(w) = &mut self.window {
            w.count(Instant::now(), stream, lines.len());
        }
        let mut buf = Vec::new();
        for line in lines {
            if self.journal {
                buf.extend_from_slice(if stream == Stream::Stdout { b"<6>" } else { b"<4>" });
            }
            buf.extend_from_slice(&line);
            buf.push(b'\n');
        }
        // Outside the journal keep the container's streams apart.
        let _ = if self.journal || stream == Stream::Stdout {
            std::io::stdout().lock().write_all(&buf)
        } else {
            std::io::stderr().lock().write_all(&buf)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_chunks() {
        let mut l = Lines::default();
        assert!(l.push(b"hel").is_empty());
        assert_eq!(l.push(b"lo\r\nwor"), vec![b"hello".to_vec()]);
        assert_eq!(l.push(b"ld\n\n"), vec![b"world".to_vec(), Vec::new()]);
        assert_eq!(l.finish(), None);
        l.push(b"tail");
        assert_eq!(l.finish(), Some(b"tail".to_vec()));
    }

    #[test]
    fn a_window_over_the_rate_limit_makes_a_note_due_after_it() {
        let limit = LogRateLimit::Limit { burst: 10, interval: Duration::from_secs(2) };
        let mut w = RateWindow::new(limit).expect("a limit");
        let t0 = Instant::now();
        w.count(t0, Stream::Stdout, 10);
        assert_eq!(w.note_due(), None);
        w.count(t0 + Duration::from_secs(1), Stream::Stdout, 1);
        assert_eq!(w.note_due(), Some(t0 + Duration::from_secs(2) + NOTE_MARGIN));
        let (note, warning) = w.take_note();
        assert!(note.contains("log_rate_limit (10 lines per 2s)"), "{note}");
        assert!(!warning);
        assert_eq!(w.note_due(), None);
        // A new window starts at the first line after the last one ended.
        w.count(t0 + Duration::from_secs(3), Stream::Stderr, 11);
        assert_eq!(w.note_due(), Some(t0 + Duration::from_secs(5) + NOTE_MARGIN));
        assert!(w.take_note().1, "stderr lines: a warning too");
        assert!(RateWindow::new(LogRateLimit::Off).is_none());
    }

    #[test]
    fn long_lines_are_cut() {
        let mut l = Lines::default();
        let lines = l.push(&vec![b'x'; MAX_LINE * 2 + 3]);
        assert_eq!(lines.len(), 2);
        assert_eq!(l.finish().map(|r| r.len()), Some(3));
    }
}
