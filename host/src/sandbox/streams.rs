//! Host ends of the `wasi:io` streams that carry object bodies: bounded channels of up to
//! 1 MiB chunks, so memory stays bounded and the guest can splice them straight into files or
//! HTTP bodies without copying them into its own memory.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

/// Bytes per chunk on the host side.
pub(crate) const CHUNK: usize = 1 << 20;
/// Chunks in flight per stream: bounds host memory per transfer to `CHUNK * DEPTH`.
const DEPTH: usize = 4;

type SharedReceiver = Arc<tokio::sync::Mutex<Option<mpsc::Receiver<io::Result<Bytes>>>>>;

/// The guest's `input-stream` over chunks that a host task produces. The host can detach it
/// after the call, so a provider that keeps the stream cannot hold the producer forever.
pub(crate) struct ChannelInput {
    rx: SharedReceiver,
    pending: Option<Bytes>,
    failed: Option<io::Error>,
    closed: bool,
}

#[async_trait::async_trait]
impl Pollable for ChannelInput {
    async fn ready(&mut self) {
        if self.pending.is_none() && !self.closed && self.failed.is_none() {
            let mut rx = self.rx.lock().await;
            match rx.as_mut() {
                None => self.closed = true,
                Some(rx) => match rx.recv().await {
                    Some(Ok(chunk)) => self.pending = Some(chunk),
                    Some(Err(e)) => self.failed = Some(e),
                    None => self.closed = true,
                },
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
            // Calls on one store are sequential, so the lock is free whenever the guest reads.
            let Ok(mut rx) = self.rx.try_lock() else { return Ok(Bytes::new()) };
            match rx.as_mut().map(|rx| rx.try_recv()) {
                Some(Ok(Ok(chunk))) => self.pending = Some(chunk),
                Some(Ok(Err(e))) => return Err(StreamError::LastOperationFailed(e.into())),
                Some(Err(mpsc::error::TryRecvError::Empty)) => return Ok(Bytes::new()),
                Some(Err(mpsc::error::TryRecvError::Disconnected)) | None => self.closed = true,
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

/// The host's hold on an input stream it gave away: detaching ends the stream for the guest
/// and stops its producer.
pub(crate) struct InputDetach(SharedReceiver);

impl InputDetach {
    pub(crate) async fn detach(self) {
        self.0.lock().await.take();
    }
}

/// Starts a blocking task reading `source` into a new input stream. The task's result says
/// how many bytes it read, or why reading failed.
pub(crate) fn input_from_reader<R: Read + Send + 'static>(
    mut source: R,
) -> (ChannelInput, InputDetach, tokio::task::JoinHandle<io::Result<u64>>) {
    let (tx, rx) = mpsc::channel(DEPTH);
    let rx: SharedReceiver = Arc::new(tokio::sync::Mutex::new(Some(rx)));
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
    (ChannelInput { rx: rx.clone(), pending: None, failed: None, closed: false }, InputDetach(rx), task)
}

type SharedSender = Arc<Mutex<Option<mpsc::Sender<Bytes>>>>;

/// The guest's `output-stream` into chunks that a host task consumes. The host can detach it
/// after the call, so a provider that keeps the stream cannot hold the consumer forever.
pub(crate) struct ChannelOutput {
    tx: SharedSender,
    moved: Arc<AtomicU64>,
}

impl ChannelOutput {
    fn sender(&self) -> Option<mpsc::Sender<Bytes>> {
        self.tx.lock().expect("sender lock").clone()
    }
}

#[async_trait::async_trait]
impl Pollable for ChannelOutput {
    async fn ready(&mut self) {
        if let Some(tx) = self.sender() {
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
        let tx = self.sender().ok_or(StreamError::Closed)?;
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
        match &self.sender() {
            None => Err(StreamError::Closed),
            Some(tx) if tx.is_closed() => {
                Err(StreamError::LastOperationFailed(wasmtime::format_err!("the host stopped accepting data")))
            }
            Some(tx) => Ok(if tx.capacity() > 0 { CHUNK } else { 0 }),
        }
    }
}

/// The host's hold on an output stream it gave away: detaching ends the stream for the guest
/// and lets the consumer finish.
pub(crate) struct OutputDetach(SharedSender);

impl OutputDetach {
    pub(crate) fn detach(self) {
        self.0.lock().expect("sender lock").take();
    }
}

/// Starts a blocking task writing a new output stream's bytes into `sink`. The task ends when
/// the stream is dropped or detached; its result is the byte count or the write error. The
/// counter says how many bytes the guest wrote.
pub(crate) fn output_to_writer<W: Write + Send + 'static>(
    mut sink: W,
) -> (ChannelOutput, OutputDetach, Arc<AtomicU64>, tokio::task::JoinHandle<io::Result<u64>>) {
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
    let tx: SharedSender = Arc::new(Mutex::new(Some(tx)));
    (ChannelOutput { tx: tx.clone(), moved: moved.clone() }, OutputDetach(tx), moved, task)
}
