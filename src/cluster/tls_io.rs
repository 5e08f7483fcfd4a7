//! The cluster API's read adapters around TLS; both pass writes through as they are.
//!
//! [`GrowingReader`], under TLS: a buffered reader whose buffer grows only for a stream. Each
//! connection starts with [`START`] bytes (one TLS record); a read from the socket that fills the
//! whole buffer (more was waiting: a move's data) doubles it, up to [`MAX`], so a stream takes 16
//! records a system call instead of one. A fixed 256 KiB buffer per connection, as before, held
//! 25 MiB of the manager's heap after 100 members reported at once (bench/fleet.sh: 41 MiB RSS
//! instead of 16), for requests of a few KiB.
//!
//! [`ReadAll`], over TLS: each read takes every record already there.

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

/// A stream whose reads take every TLS record already received (up to the caller's buffer),
/// not one: tokio-rustls gives one record (16 KiB) a read, so hyper would hand a large request
/// body (a move's data) on in pieces of 16 KiB, each a wake-up of its reader; with this, in
/// pieces of its read buffer (up to about 400 KiB). A read never waits for more than the first
/// byte, as before.
pub struct ReadAll<S> {
    inner: S,
    /// An error met after some bytes were read: given by the next read.
    error: Option<std::io::Error>,
}

impl<S> ReadAll<S> {
    pub fn new(inner: S) -> ReadAll<S> {
        ReadAll { inner, error: None }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAll<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.error.take() {
            return Poll::Ready(Err(e));
        }
        let start = buf.filled().len();
        while buf.remaining() > 0 {
            let before = buf.filled().len();
            match Pin::new(&mut this.inner).poll_read(cx, buf) {
                // The end of the stream.
                Poll::Ready(Ok(())) if buf.filled().len() == before => break,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) if buf.filled().len() == start => return Poll::Ready(Err(e)),
                Poll::Ready(Err(e)) => {
                    this.error = Some(e);
                    break;
                }
                Poll::Pending if buf.filled().len() == start => return Poll::Pending,
                Poll::Pending => break,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// `AsyncWrite` for an adapter `$ty<S>` whose stream is its field `inner`: every call passed on.
macro_rules! write_through {
    ($ty:ident) => {
        impl<S: AsyncWrite + Unpin> AsyncWrite for $ty<S> {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<std::io::Result<usize>> {
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
    };
}

write_through!(GrowingReader);
write_through!(ReadAll);

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

    #[tokio::test]
    async fn read_all_takes_what_is_there_and_waits_only_for_the_first_byte() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut a, b) = tokio::io::duplex(1 << 16);
        let mut r = ReadAll::new(b);
        for piece in [&b"abc"[..], b"def", b"gh"] {
            a.write_all(piece).await.expect("write");
        }
        let mut buf = [0u8; 64];
        let n = r.read(&mut buf).await.expect("read");
        assert_eq!(&buf[..n], b"abcdefgh", "every piece there in one read");
        let reading = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let n = r.read(&mut buf).await.expect("read");
            (buf[..n].to_vec(), r)
        });
        a.write_all(b"late").await.expect("write");
        let (got, mut r) = reading.await.expect("task");
        assert_eq!(got, b"late");
        drop(a);
        assert_eq!(r.read(&mut buf).await.expect("eof"), 0, "the end of the stream");
    }
}
