//! Splits the container's output into lines and writes them where journald files them under
//! the unit: stdout at info priority, stderr at warning, using the `<N>` prefixes journald reads
//! on a service's streams (SyslogLevelPrefix=, on by default).

use std::io::Write;

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

/// Writes lines of the container's two streams to the runner's stdout.
pub struct Relay {
    journal: bool,
    stdout: Lines,
    stderr: Lines,
}

impl Relay {
    /// `journal`: stdout is a journald stream (systemd sets JOURNAL_STREAM), so prefix priorities.
    pub fn new(journal: bool) -> Self {
        Relay { journal, stdout: Lines::default(), stderr: Lines::default() }
    }

    pub fn from_env() -> Self {
        Self::new(std::env::var_os("JOURNAL_STREAM").is_some())
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

    fn write(&self, stream: Stream, lines: Vec<Vec<u8>>) {
        if lines.is_empty() {
            return;
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
    fn long_lines_are_cut() {
        let mut l = Lines::default();
        let lines = l.push(&vec![b'x'; MAX_LINE * 2 + 3]);
        assert_eq!(lines.len(), 2);
        assert_eq!(l.finish().map(|r| r.len()), Some(3));
    }
}
