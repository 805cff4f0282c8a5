//! Object bodies for the checks, made and compared in bounded memory: a body is generated as
//! it is read, and what comes back is hashed as it is written.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, mpsc};

use sha2::{Digest as _, Sha256};

/// `len` bytes of a pattern that shows misplaced, repeated or missing chunks, generated as
/// they are read. Bodies with different seeds differ everywhere.
#[derive(Debug, Clone)]
pub(super) struct Pattern {
    len: u64,
    at: u64,
    seed: u8,
}

impl Pattern {
    pub(super) fn new(len: u64, seed: u8) -> Self {
        Pattern { len, at: 0, seed }
    }

    fn byte(&self, i: u64) -> u8 {
        (i % 251) as u8 ^ (i >> 20) as u8 ^ self.seed
    }

    /// The bytes from `offset`, at most `length` of them (for ranged reads).
    pub(super) fn slice(&self, offset: u64, length: u64) -> Vec<u8> {
        (offset..self.len.min(offset.saturating_add(length))).map(|i| self.byte(i)).collect()
    }

    /// The length and SHA-256 of the whole body.
    pub(super) fn summary(&self) -> Summary {
        let digest = Digest::default();
        std::io::copy(&mut digest.reading(Pattern::new(self.len, self.seed)), &mut std::io::sink()).expect("reading a pattern never fails");
        digest.summary()
    }
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.len - self.at).min(buf.len() as u64) as usize;
        for (slot, i) in buf[..n].iter_mut().zip(self.at..) {
            *slot = self.byte(i);
        }
        self.at += n as u64;
        Ok(n)
    }
}

/// A body's length and SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Summary {
    pub(super) len: u64,
    pub(super) sha256: [u8; 32],
}

impl Summary {
    pub(super) fn of(bytes: &[u8]) -> Self {
        Summary { len: bytes.len() as u64, sha256: Sha256::digest(bytes).into() }
    }
}

/// A running SHA-256 and byte count, shared between the blocking task that moves a body and
/// the check that reads the result.
#[derive(Clone, Default)]
pub(super) struct Digest(Arc<Mutex<(Sha256, u64)>>);

impl Digest {
    /// A reader that hashes what `inner` yields.
    pub(super) fn reading<R>(&self, inner: R) -> Digesting<R> {
        Digesting { digest: self.clone(), inner }
    }

    /// A writer that hashes what it is given and keeps none of it.
    pub(super) fn sink(&self) -> Digesting<std::io::Sink> {
        Digesting { digest: self.clone(), inner: std::io::sink() }
    }

    pub(super) fn summary(&self) -> Summary {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Summary { len: kept.1, sha256: kept.0.clone().finalize().into() }
    }

    fn add(&self, bytes: &[u8]) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.0.update(bytes);
        kept.1 += bytes.len() as u64;
    }
}

/// A reader or writer whose bytes go through a [`Digest`].
pub(super) struct Digesting<T> {
    digest: Digest,
    inner: T,
}

impl<R: Read> Read for Digesting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.add(&buf[..n]);
        Ok(n)
    }
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.add(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A body that yields its first `pause_at` bytes, then says so on `reached` and waits for
/// `resume` (or for it to be dropped) before yielding the rest: a put held open midway.
pub(super) struct Paused<R> {
    inner: R,
    left_before_pause: u64,
    reached: Option<tokio::sync::oneshot::Sender<()>>,
    resume: mpsc::Receiver<()>,
}

impl<R> Paused<R> {
    pub(super) fn new(inner: R, pause_at: u64, reached: tokio::sync::oneshot::Sender<()>, resume: mpsc::Receiver<()>) -> Self {
        Paused { inner, left_before_pause: pause_at, reached: Some(reached), resume }
    }
}

impl<R: Read> Read for Paused<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left_before_pause == 0
            && let Some(reached) = self.reached.take()
        {
            let _ = reached.send(());
            // Released by a message or by the sender going away; both mean go on.
            let _ = self.resume.recv();
        }
        let max = if self.left_before_pause > 0 { buf.len().min(self.left_before_pause as usize) } else { buf.len() };
        let n = self.inner.read(&mut buf[..max])?;
        self.left_before_pause = self.left_before_pause.saturating_sub(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_reads_as_its_slices_and_summary_say() {
        let mut whole = Vec::new();
        Pattern::new(3 << 20, 7).read_to_end(&mut whole).unwrap();
        assert_eq!(whole.len(), 3 << 20);
        assert_eq!(Pattern::new(3 << 20, 7).slice(5, 10), whole[5..15]);
        assert_eq!(Pattern::new(3 << 20, 7).slice((3 << 20) - 2, 10), whole[(3 << 20) - 2..]);
        assert_eq!(Pattern::new(3 << 20, 7).summary(), Summary::of(&whole));
        assert_ne!(Pattern::new(3 << 20, 8).summary(), Summary::of(&whole), "another seed, another body");
    }
}
