//! The SHA-256 of a stream's files on a thread of their own, so that hashing (the largest cost
//! of a move: about 1.4 GB/s per core with SHA-NI, and both sides hash every byte) runs beside
//! the reading and sending on the source and beside the writing on the target instead of in
//! turn with them. The data goes in chunks of buffers from a [`Pool`]: one chunk is hashed
//! there and written (or sent) here from the same memory, without a copy, and its buffer comes
//! back to the pool once both are done with it.

use std::collections::VecDeque;
use std::sync::mpsc;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{FileKey, Sums};

/// Chunks waiting for the hashing thread at most: what it may lag behind (16 MiB of 1 MiB chunks).
const QUEUE: usize = 16;

/// Buffers of one size, aligned to [`ALIGN`] (what direct I/O needs), taken and given back
/// when the chunks made of them are dropped.
pub struct Pool {
    size: usize,
    back: mpsc::Sender<Buf>,
    free: mpsc::Receiver<Buf>,
}

/// The alignment of a pool's buffers: a page, what `O_DIRECT` asks of a buffer, an offset and
/// a length on the file systems a move writes to.
pub const ALIGN: usize = 4096;

/// A buffer of a [`Pool`]: `size` bytes from `off` (aligned) of a vector that never grows.
pub struct Buf {
    vec: Vec<u8>,
    off: usize,
    size: usize,
}

impl Buf {
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.vec[self.off..self.off + self.size]
    }
}

impl Pool {
    pub fn new(size: usize) -> Pool {
        let (back, free) = mpsc::channel();
        Pool { size, back, free }
    }

    /// A buffer of the pool's size: one given back, or a new one.
    pub fn take(&self) -> Buf {
        self.free.try_recv().unwrap_or_else(|_| {
            let vec = vec![0; self.size + ALIGN];
            let off = vec.as_ptr().align_offset(ALIGN).min(ALIGN);
            Buf { vec, off, size: self.size }
        })
    }

    /// The first `len` bytes of `buf` as a chunk; `buf` goes back to the pool when the last
    /// clone of the chunk is dropped.
    pub fn chunk(&self, buf: Buf, len: usize) -> Bytes {
        let len = len.min(buf.size);
        Bytes::from_owner(Pooled { buf: Some(buf), len, back: self.back.clone() })
    }
}

struct Pooled {
    buf: Option<Buf>,
    len: usize,
    back: mpsc::Sender<Buf>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        self.buf.as_ref().map_or(&[], |b| &b.vec[b.off..b.off + self.len])
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // The pool may be gone (the stream ended): then the buffer is freed.
        if let Some(b) = self.buf.take() {
            let _ = self.back.send(b);
        }
    }
}

enum Piece {
    Data(Bytes),
    /// The current file's last byte was given.
    End,
}

/// The sums of a stream's files in stream order: files hashed on the thread (in the order
/// their ends were given), and files whose sum is known without reading them (reused from an
/// earlier pass).
pub struct FileSums {
    tx: Option<mpsc::SyncSender<Piece>>,
    sums: mpsc::Receiver<String>,
    thread: Option<std::thread::JoinHandle<()>>,
    slots: Vec<Option<String>>,
    /// The files given whole to the thread whose sums have not come back yet, with their slot.
    pending: VecDeque<(usize, FileKey)>,
}

fn gone() -> std::io::Error {
    std::io::Error::other("the hashing thread ended")
}

impl FileSums {
    pub fn start() -> std::io::Result<FileSums> {
        let (tx, rx) = mpsc::sync_channel::<Piece>(QUEUE);
        let (sum_tx, sums) = mpsc::channel();
        let thread = std::thread::Builder::new().name("move-sha256".into()).spawn(move || {
            let mut sha = Sha256::new();
            for piece in rx {
                match piece {
                    Piece::Data(chunk) => sha.update(&chunk),
                    Piece::End => {
                        let sum = crate::digest::hex(&std::mem::take(&mut sha).finalize());
                        if sum_tx.send(sum).is_err() {
                            return;
                        }
                    }
                }
            }
        })?;
        Ok(FileSums { tx: Some(tx), sums, thread: Some(thread), slots: Vec::new(), pending: VecDeque::new() })
    }

    /// The next chunk of the file being hashed (waits while the thread is [`QUEUE`] chunks behind).
    pub fn data(&self, chunk: Bytes) -> std::io::Result<()> {
        self.tx.as_ref().ok_or_else(gone)?.send(Piece::Data(chunk)).map_err(|_| gone())
    }

    /// The file being hashed is whole: its sum is the next slot's; `told` learns it as it comes.
    pub fn end(&mut self, key: FileKey, told: &mut dyn FnMut(&FileKey, &str)) -> std::io::Result<()> {
        self.tx.as_ref().ok_or_else(gone)?.send(Piece::End).map_err(|_| gone())?;
        self.pending.push_back((self.slots.len(), key));
        self.slots.push(None);
        self.ready(told);
        Ok(())
    }

    /// A file whose sum is known (not in the stream): the next slot's.
    pub fn known(&mut self, key: FileKey, sum: String, told: &mut dyn FnMut(&FileKey, &str)) {
        told(&key, &sum);
        self.slots.push(Some(sum));
        self.ready(told);
    }

    /// Takes the sums that came back, without waiting.
    fn ready(&mut self, told: &mut dyn FnMut(&FileKey, &str)) {
        while let Ok(sum) = self.sums.try_recv() {
            self.settle(sum, told);
        }
    }

    fn settle(&mut self, sum: String, told: &mut dyn FnMut(&FileKey, &str)) {
        if let Some((slot, key)) = self.pending.pop_front() {
            told(&key, &sum);
            self.slots[slot] = Some(sum);
        }
    }

    /// Waits for the sum of every file given whole and returns all in stream order (what a
    /// stream that broke leaves: the files before the break, each told).
    pub fn finish(mut self, told: &mut dyn FnMut(&FileKey, &str)) -> std::io::Result<Sums> {
        self.tx = None;
        while !self.pending.is_empty() {
            let sum = self.sums.recv().map_err(|_| gone())?;
            self.settle(sum, told);
        }
        if let Some(t) = self.thread.take() {
            t.join().map_err(|_| gone())?;
        }
        std::mem::take(&mut self.slots).into_iter().map(|s| s.ok_or_else(gone)).collect()
    }
}

impl Drop for FileSums {
    fn drop(&mut self) {
        // Unblocks the thread (it ends with its queue) and waits for it.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> String {
        crate::digest::hex(&Sha256::digest(data))
    }

    #[test]
    fn sums_come_in_stream_order_with_known_ones_between() {
        let pool = Pool::new(4);
        let mut told = Vec::new();
        let mut tell = |k: &FileKey, s: &str| told.push((k.1.clone(), s.to_owned()));
        let mut sums = FileSums::start().expect("thread");
        for part in [&b"ab"[..], b"cd", b"e"] {
            let mut buf = pool.take();
            buf.space()[..part.len()].copy_from_slice(part);
            sums.data(pool.chunk(buf, part.len())).expect("data");
        }
        sums.end((0, "a".into()), &mut tell).expect("end");
        sums.known((0, "b".into()), "known".into(), &mut tell);
        sums.end((0, "empty".into()), &mut tell).expect("end");
        let got = sums.finish(&mut tell).expect("finish");
        assert_eq!(got, vec![sha(b"abcde"), "known".into(), sha(b"")]);
        told.sort();
        assert_eq!(
            told,
            vec![("a".into(), sha(b"abcde")), ("b".into(), "known".into()), ("empty".into(), sha(b""))]
        );
    }

    #[test]
    fn a_file_never_ended_is_not_told_and_buffers_come_back() {
        let pool = Pool::new(8);
        let mut told = Vec::new();
        let mut sums = FileSums::start().expect("thread");
        let (a, b) = (pool.take(), pool.take());
        sums.data(pool.chunk(a, 3)).expect("data");
        sums.end((0, "whole".into()), &mut |k, _| told.push(k.1.clone())).expect("end");
        sums.data(pool.chunk(b, 8)).expect("data of a file cut short");
        let got = sums.finish(&mut |k, _| told.push(k.1.clone())).expect("finish");
        assert_eq!((got.len(), told), (1, vec!["whole".to_owned()]));
        // Both buffers were dropped by the thread: the pool gives them again, not new ones.
        let (a, b) = (pool.free.try_recv(), pool.free.try_recv());
        assert!(a.is_ok() && b.is_ok(), "both buffers back in the pool");
        let mut a = a.expect("a buffer");
        assert_eq!((a.space().as_ptr() as usize % ALIGN, a.space().len()), (0, 8), "aligned, of the size");
    }
}
