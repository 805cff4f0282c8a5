//! Moving object bodies through `wasi:io` streams.

pub use wasip2::io::streams::{InputStream, OutputStream, StreamError};

use crate::Error;

/// The chunk size for copies: large enough that per-call overhead vanishes, small enough that
/// guest memory stays bounded whatever the object size.
pub const CHUNK: u64 = 1 << 20;

fn stream_error(what: &str, err: StreamError) -> Error {
    match err {
        StreamError::Closed => Error::Other(format!("{what}: stream closed early")),
        StreamError::LastOperationFailed(e) => Error::Other(format!("{what}: {}", e.to_debug_string())),
    }
}

/// Moves at most `limit` bytes from `from` to `to` (fewer only when `from` closes first), then
/// flushes `to`. Returns the number of bytes moved.
///
/// Unlike `blocking-splice` it does not flush `to` after every move, so that a host stream may
/// gather what arrives in small pieces (an HTTP body comes in frames of a few KiB) and hand it
/// on in large ones; and it waits on the same two pollables throughout, so that a piece costs
/// the guest two calls: the move, and the wait for the next piece.
fn splice_limited(from: &InputStream, to: &OutputStream, limit: u64) -> Result<u64, Error> {
    let (readable, writable) = (from.subscribe(), to.subscribe());
    let mut total = 0u64;
    // Whether `from` was just found ready: a move of nothing then means `to` has no room.
    let mut waited_for_data = false;
    while total < limit {
        match to.splice(from, CHUNK.min(limit - total)) {
            Ok(0) if waited_for_data => {
                writable.block();
                waited_for_data = false;
            }
            Ok(0) => {
                readable.block();
                waited_for_data = true;
            }
            Ok(moved) => {
                total += moved;
                waited_for_data = false;
            }
            Err(StreamError::Closed) => break,
            Err(e) => return Err(stream_error("copying the body", e)),
        }
    }
    drop((readable, writable));
    flush(to)?;
    Ok(total)
}

/// Moves everything from `from` to `to` until `from` closes, then flushes `to`. When both are
/// host streams the bytes never enter guest memory. Returns the number of bytes moved.
pub fn splice_all(from: &InputStream, to: &OutputStream) -> Result<u64, Error> {
    splice_limited(from, to, u64::MAX)
}

/// Moves at most `limit` bytes from `from` to `to` (fewer only when `from` closes first), then
/// flushes `to`. Returns the number of bytes moved.
pub fn splice_up_to(from: &InputStream, to: &OutputStream, limit: u64) -> Result<u64, Error> {
    splice_limited(from, to, limit)
}

/// Skips `count` bytes of `from` (fewer when it closes first). Returns how many it skipped.
pub fn skip(from: &InputStream, count: u64) -> Result<u64, Error> {
    let mut skipped = 0u64;
    while skipped < count {
        match from.blocking_skip(count - skipped) {
            Ok(n) => skipped += n,
            Err(StreamError::Closed) => break,
            Err(e) => return Err(stream_error("skipping into the body", e)),
        }
    }
    Ok(skipped)
}

/// Flushes `to`. A stream that closed once everything was written to it (an HTTP body that
/// reached its `content-length`) has taken all the data, so that is success.
fn flush(to: &OutputStream) -> Result<(), Error> {
    match to.blocking_flush() {
        Ok(()) | Err(StreamError::Closed) => Ok(()),
        Err(e) => Err(stream_error("flushing the body", e)),
    }
}

/// Reads `from` to its end into memory. Only for small bodies (documents, not objects).
pub fn read_to_end(from: &InputStream) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    loop {
        match from.blocking_read(CHUNK) {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(out),
            Err(e) => return Err(stream_error("reading the body", e)),
        }
    }
}

/// Reads from `from` until `limit` bytes are in hand or the stream ends: one upload part
/// (shorter than `limit` only when it is the last).
pub fn read_up_to(from: &InputStream, limit: usize) -> Result<Vec<u8>, Error> {
    let mut part = Vec::with_capacity(limit.min(CHUNK as usize));
    while part.len() < limit {
        match from.blocking_read((limit - part.len()) as u64) {
            Ok(chunk) => part.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(e) => return Err(stream_error("reading the body", e)),
        }
    }
    Ok(part)
}

/// Writes all of `bytes` to `to` and flushes it.
pub fn write_all(to: &OutputStream, mut bytes: &[u8]) -> Result<(), Error> {
    while !bytes.is_empty() {
        let n = to.check_write().map_err(|e| stream_error("writing the body", e))?;
        if n == 0 {
            to.subscribe().block();
            continue;
        }
        let len = bytes.len().min(usize::try_from(n).unwrap_or(usize::MAX)).min(CHUNK as usize);
        to.write(&bytes[..len]).map_err(|e| stream_error("writing the body", e))?;
        bytes = &bytes[len..];
    }
    flush(to)
}
