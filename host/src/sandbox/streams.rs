//! Host ends of the `wasi:io` streams that carry object bodies: bounded channels of up to
//! 1 MiB chunks, so memory stays bounded and the guest can splice them straight into files or
//! HTTP bodies without copying them into its own memory.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

/// Bytes per chunk on the host side.
pub(crate) const CHUNK: usize = 1 << 20;
/// Chunks in flight per stream: bounds host memory per transfer to `CHUNK * DEPTH`.
const DEPTH: usize = 4;

/// The guest's `input-stream` over chunks that a host task produces.
pub(crate) struct ChannelInput {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    pending: Option<Bytes>,
    failed: Option<io::Error>,
    closed: bool,
}

#[async_trait::async_trait]
impl Pollable for ChannelInput {
    async fn ready(&mut self) {
        if self.pending.is_none() && !self.closed {
            match self.rx.recv().await {
                Some(Ok(chunk)) => self.pending = Some(chunk),
                Some(Err(e)) => self.failed = Some(e),
                None => self.closed = true,
            }
        }
    }
}

impl InputStream for ChannelInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if let Some(e) = self.failed.take() {
            self.closed = true;
            return Err(StreamError::LastOperationFailed(e.into()));
        }
        if self.pending.is_none() && !self.closed {
            match self.rx.try_recv() {
                Ok(Ok(chunk)) => self.pending = Some(chunk),
                Ok(Err(e)) => return Err(StreamError::LastOperationFailed(e.into())),
                Err(mpsc::error::TryRecvError::Empty) => return Ok(Bytes::new()),
                Err(mpsc::error::TryRecvError::Disconnected) => self.closed = true,
            }
        }
        match self.pending.as_mut() {
            Some(chunk) => {
                let out = chunk.split_to(size.min(chunk.len()));
                if chunk.is_empty() {
                    self.pending = None;
                }
                Ok(out)
            }
            None => Err(StreamError::Closed),
        }
    }
}

/// Starts a blocking task reading `source` into a new input stream. The task's result says
/// how many bytes it read, or why reading failed.
pub(crate) fn input_from_reader<R: Read + Send + 'static>(
    mut source: R,
) -> (ChannelInput, tokio::task::JoinHandle<io::Result<u64>>) {
    let (tx, rx) = mpsc::channel(DEPTH);
    let task = tokio::task::spawn_blocking(move || {
        let mut total = 0u64;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                match source.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
                        return Err(e);
                    }
                }
            }
            if filled == 0 {
                return Ok(total);
            }
            buf.truncate(filled);
            total += filled as u64;
            if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                // The guest stopped reading; what it stored is its answer.
                return Ok(total);
            }
        }
    });
    (ChannelInput { rx, pending: None, failed: None, closed: false }, task)
}

/// The guest's `output-stream` into chunks that a host task consumes.
pub(crate) struct ChannelOutput {
    tx: Option<mpsc::Sender<Bytes>>,
    moved: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl Pollable for ChannelOutput {
    async fn ready(&mut self) {
        if let Some(tx) = &self.tx {
            // Wait for room, then give the slot back: this stream is its only producer.
            if let Ok(permit) = tx.reserve().await {
                drop(permit);
            }
        }
    }
}

#[async_trait::async_trait]
impl OutputStream for ChannelOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let tx = self.tx.as_ref().ok_or(StreamError::Closed)?;
        let len = bytes.len() as u64;
        tx.try_send(bytes).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StreamError::trap("write without permit"),
            mpsc::error::TrySendError::Closed(_) => {
                StreamError::LastOperationFailed(wasmtime::format_err!("the host stopped accepting data"))
            }
        })?;
        self.moved.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        match &self.tx {
            None => Err(StreamError::Closed),
            Some(tx) if tx.is_closed() => {
                Err(StreamError::LastOperationFailed(wasmtime::format_err!("the host stopped accepting data")))
            }
            Some(tx) => Ok(if tx.capacity() > 0 { CHUNK } else { 0 }),
        }
    }
}

/// Starts a blocking task writing a new output stream's bytes into `sink`. The task ends when
/// the guest drops the stream; its result is the byte count or the write error. The counter
/// says how many bytes the guest wrote.
pub(crate) fn output_to_writer<W: Write + Send + 'static>(
    mut sink: W,
) -> (ChannelOutput, Arc<AtomicU64>, tokio::task::JoinHandle<io::Result<u64>>) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(DEPTH);
    let moved = Arc::new(AtomicU64::new(0));
    let task = tokio::task::spawn_blocking(move || {
        let mut total = 0u64;
        while let Some(chunk) = rx.blocking_recv() {
            sink.write_all(&chunk)?;
            total += chunk.len() as u64;
        }
        sink.flush()?;
        Ok(total)
    });
    (ChannelOutput { tx: Some(tx), moved: moved.clone() }, moved, task)
}
