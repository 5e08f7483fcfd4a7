//! A buffered reader for the cluster API's sockets whose buffer grows only for a stream. Each
//! connection starts with [`START`] bytes (one TLS record); a read from the socket that fills the
//! whole buffer (more was waiting: a move's data) doubles it, up to [`MAX`], so a stream takes 16
//! records a system call instead of one. A fixed 256 KiB buffer per connection, as before, held
//! 25 MiB of the manager's heap after 100 members reported at once (bench/fleet.sh: 41 MiB RSS
//! instead of 16), for requests of a few KiB.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The buffer a connection starts with: one TLS record (16 KiB) and its header.
pub const START: usize = 16 << 10;
/// The most it grows to.
pub const MAX: usize = 256 << 10;

pub struct GrowingReader<S> {
    inner: S,
    buf: Vec<u8>,
    /// What of `buf` is read but not yet given out: `pos..end`.
    pos: usize,
    end: usize,
}

impl<S> GrowingReader<S> {
    pub fn new(inner: S) -> GrowingReader<S> {
        GrowingReader { inner, buf: vec![0; START], pos: 0, end: 0 }
    }

    /// The buffer's size now.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GrowingReader<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.pos == this.end {
            let mut into = ReadBuf::new(&mut this.buf);
            match Pin::new(&mut this.inner).poll_read(cx, &mut into) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
            let n = into.filled().len();
            (this.pos, this.end) = (0, n);
            if n == this.buf.len() && n < MAX {
                // What was read stays at the front.
                this.buf.resize((n * 2).min(MAX), 0);
            }
        }
        let n = out.remaining().min(this.end - this.pos);
        out.put_slice(&this.buf[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GrowingReader<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn small_requests_keep_the_small_buffer() {
        let (mut a, b) = tokio::io::duplex(1 << 20);
        let mut r = GrowingReader::new(b);
        let mut got = [0u8; 4096];
        for _ in 0..20 {
            a.write_all(&[7u8; 3000]).await.expect("write");
            let mut n = 0;
            while n < 3000 {
                n += r.read(&mut got[..]).await.expect("read");
            }
            assert_eq!(n, 3000);
        }
        assert_eq!(r.capacity(), START);
    }

    #[tokio::test]
    async fn a_stream_grows_it_to_the_most_and_every_byte_arrives_in_order() {
        let (mut a, b) = tokio::io::duplex(4 << 20);
        let data: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 251) as u8).collect();
        a.write_all(&data).await.expect("write");
        drop(a);
        let mut r = GrowingReader::new(b);
        let mut back = Vec::new();
        let mut chunk = [0u8; 5000];
        loop {
            let n = r.read(&mut chunk).await.expect("read");
            if n == 0 {
                break;
            }
            back.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(back.len(), data.len());
        assert!(back == data, "the bytes came back changed or out of order");
        assert_eq!(r.capacity(), MAX);
    }
}
