//! The stream's hand-offs between the async side (the request body, over TLS) and the blocking
//! side (packing and receiving a tar stream on a blocking thread), without a copy of a file's
//! data on the way and without either side waiting for the other at every piece.

use bytes::Bytes;
use futures_util::StreamExt;

use super::source;

/// Chunks of the request body read ahead while the stream is received.
const READ_AHEAD: usize = 32;

/// A move's request body for the blocking receiver: a task reads it ahead into a queue of up to
/// [`READ_AHEAD`] chunks, so the connection goes on reading and decrypting while the receiver
/// writes (a bridge that polls the body from the blocking side reads each next piece only when
/// the receiver asks, one hand-off between the threads per piece, each side waiting for the other).
pub struct BodyQueue {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl BodyQueue {
    /// Starts reading `body` ahead (on the current runtime).
    pub fn read_ahead<S, E>(body: S) -> BodyQueue
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        tokio::spawn(async move {
            let mut body = Box::pin(body);
            loop {
                // The receiver gone (it refused or finished): the body is dropped, not read on.
                let chunk = tokio::select! {
                    () = tx.closed() => break,
                    chunk = body.next() => chunk,
                };
                let Some(chunk) = chunk else { break };
                let broken = chunk.is_err();
                if tx.send(chunk.map_err(std::io::Error::other)).await.is_err() || broken {
                    break;
                }
            }
        });
        BodyQueue { rx, current: Bytes::new() }
    }
}

impl std::io::Read for BodyQueue {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// The packer's output as chunks of the request body: its small writes (tar headers, padding)
/// gathered into one chunk, a file's chunks handed on as they are (no copy).
pub struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

/// Small writes gathered up to this size before they go.
const GATHER: usize = 64 * 1024;

impl ChannelWriter {
    pub fn new(tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>) -> ChannelWriter {
        ChannelWriter { tx, buf: Vec::new() }
    }

    fn send(&self, chunk: Bytes) -> std::io::Result<()> {
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the receiving side went away"))
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        if self.buf.len() >= GATHER {
            self.flush()?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let gathered = Bytes::from(std::mem::take(&mut self.buf));
        self.send(gathered)
    }
}

impl source::Sink for ChannelWriter {
    fn put(&mut self, chunk: Bytes) -> std::io::Result<()> {
        std::io::Write::flush(self)?;
        self.send(chunk)
    }
}
