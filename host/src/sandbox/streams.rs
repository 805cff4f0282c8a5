//! Host ends of the `wasi:io` streams that carry object bodies: bounded channels of chunks of
//! about 1 MiB, so memory stays bounded and the guest can splice them straight into files or
//! HTTP bodies without copying them into its own memory.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

/// Bytes per chunk on the host side.
pub(crate) const CHUNK: usize = 1 << 20;

/// The room [`input_from_reader`] starts its first chunk with.
const FIRST_READ: usize = 64 << 10;
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
    /// How long the guest may wait for the next chunk before the stream fails.
    idle: Duration,
}

#[async_trait::async_trait]
impl Pollable for ChannelInput {
    async fn ready(&mut self) {
        if self.pending.is_none() && !self.closed && self.failed.is_none() {
            let mut rx = self.rx.lock().await;
            match rx.as_mut() {
                None => self.closed = true,
                Some(rx) => match tokio::time::timeout(self.idle, rx.recv()).await {
                    Ok(Some(Ok(chunk))) => self.pending = Some(chunk),
                    Ok(Some(Err(e))) => self.failed = Some(e),
                    Ok(None) => self.closed = true,
                    Err(_) => self.failed = Some(io::Error::new(io::ErrorKind::TimedOut, format!("no data came for {:?}", self.idle))),
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
/// how many bytes it read, or why reading failed. A source that yields nothing for `idle`
/// fails the stream.
pub(crate) fn input_from_reader<R: Read + Send + 'static>(
    mut source: R,
    idle: Duration,
) -> (ChannelInput, InputDetach, tokio::task::JoinHandle<io::Result<u64>>) {
    let (tx, rx) = mpsc::channel(DEPTH);
    let rx: SharedReceiver = Arc::new(tokio::sync::Mutex::new(Some(rx)));
    let task = tokio::task::spawn_blocking(move || {
        let mut total = 0u64;
        // The first chunk starts small and grows with what arrives (most objects are small,
        // and zeroing a whole chunk for each cost more than reading them); once a chunk came
        // full, the next is made whole at once.
        let mut capacity = FIRST_READ;
        loop {
            let mut buf = Vec::with_capacity(capacity);
            if let Err(e) = (&mut source).take(CHUNK as u64).read_to_end(&mut buf) {
                let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
                return Err(e);
            }
            if buf.is_empty() {
                return Ok(total);
            }
            if buf.len() == CHUNK {
                capacity = CHUNK;
            }
            total += buf.len() as u64;
            if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                // The guest stopped reading; what it stored is its answer.
                return Ok(total);
            }
        }
    });
    (ChannelInput { rx: rx.clone(), pending: None, failed: None, closed: false, idle }, InputDetach(rx), task)
}

/// Writes smaller than this are gathered before they go to the consumer: HTTP bodies arrive
/// in frames of a few KiB, and one hand-off per frame would cost more than the copy.
const GATHER: usize = 256 << 10;

/// What the guest's end and the host's detach handle share.
struct OutputShared {
    /// `None` once detached.
    tx: Option<mpsc::Sender<Bytes>>,
    /// Bytes written and not yet handed to the consumer.
    gathered: BytesMut,
    /// A chunk a flush could not hand over for lack of room; `ready` hands it over.
    unsent: Option<Bytes>,
    /// Set when the consumer took nothing for the idle time: the stream has failed.
    stalled: Option<Duration>,
}

type SharedOutput = Arc<Mutex<OutputShared>>;

fn stalled(idle: Duration) -> StreamError {
    StreamError::LastOperationFailed(wasmtime::format_err!("nothing was read from the stream for {idle:?}"))
}

fn host_stopped() -> StreamError {
    StreamError::LastOperationFailed(wasmtime::format_err!("the host stopped accepting data"))
}

/// The guest's `output-stream` into chunks that a host task consumes. Small writes are
/// gathered; everything written reaches the consumer by the next flush, or when the host
/// detaches the stream after the call, whichever comes first. Detaching also means a provider
/// that keeps the stream cannot hold the consumer forever.
pub(crate) struct ChannelOutput {
    shared: SharedOutput,
    moved: Arc<AtomicU64>,
    /// How long the consumer may take nothing before the stream fails.
    idle: Duration,
}

impl ChannelOutput {
    fn shared(&self) -> std::sync::MutexGuard<'_, OutputShared> {
        self.shared.lock().expect("output stream lock")
    }
}

#[async_trait::async_trait]
impl Pollable for ChannelOutput {
    async fn ready(&mut self) {
        let (tx, unsent) = {
            let mut shared = self.shared();
            (shared.tx.clone(), shared.unsent.take())
        };
        let Some(tx) = tx else { return };
        let waited = match unsent {
            // A failed send means the consumer is gone; the next call reports it.
            Some(chunk) => tokio::time::timeout(self.idle, tx.send(chunk)).await.map(drop),
            // Wait for room, then give the slot back: this stream is its only producer.
            None => tokio::time::timeout(self.idle, tx.reserve()).await.map(drop),
        };
        // A consumer that takes nothing (a client that stopped reading) fails the stream.
        if waited.is_err() {
            self.shared().stalled = Some(self.idle);
        }
    }
}

#[async_trait::async_trait]
impl OutputStream for ChannelOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let len = bytes.len() as u64;
        if bytes.len() > CHUNK {
            return Err(StreamError::trap(&format!("a write of {len} bytes exceeds the permit of {CHUNK} bytes")));
        }
        let mut shared = self.shared();
        let tx = shared.tx.clone().ok_or(StreamError::Closed)?;
        if let Some(idle) = shared.stalled {
            return Err(stalled(idle));
        }
        if shared.unsent.is_some() {
            return Err(StreamError::trap("write without permit"));
        }
        let chunk = if shared.gathered.is_empty() && bytes.len() >= GATHER {
            bytes
        } else {
            shared.gathered.extend_from_slice(&bytes);
            if shared.gathered.len() < GATHER {
                drop(shared);
                self.moved.fetch_add(len, Ordering::Relaxed);
                return Ok(());
            }
            shared.gathered.split().freeze()
        };
        drop(shared);
        // `check_write` saw a free slot, and only this stream takes slots.
        tx.try_send(chunk).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StreamError::trap("write without permit"),
            mpsc::error::TrySendError::Closed(_) => host_stopped(),
        })?;
        self.moved.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        let mut shared = self.shared();
        let tx = shared.tx.clone().ok_or(StreamError::Closed)?;
        if shared.gathered.is_empty() || shared.unsent.is_some() {
            return Ok(());
        }
        let chunk = shared.gathered.split().freeze();
        match tx.try_send(chunk) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(chunk)) => {
                shared.unsent = Some(chunk);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(host_stopped()),
        }
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        let shared = self.shared();
        if let Some(idle) = shared.stalled {
            return Err(stalled(idle));
        }
        match &shared.tx {
            None => Err(StreamError::Closed),
            Some(tx) if tx.is_closed() => Err(host_stopped()),
            Some(_) if shared.unsent.is_some() => Ok(0),
            Some(tx) => Ok(if tx.capacity() > 0 { CHUNK } else { 0 }),
        }
    }
}

/// The host's hold on an output stream it gave away: detaching hands the consumer what the
/// guest wrote and did not flush, ends the stream for the guest, and lets the consumer finish.
pub(crate) struct OutputDetach(SharedOutput);

impl OutputDetach {
    pub(crate) async fn detach(self) {
        let (tx, unsent, gathered) = {
            let mut shared = self.0.lock().expect("output stream lock");
            (shared.tx.take(), shared.unsent.take(), shared.gathered.split().freeze())
        };
        let Some(tx) = tx else { return };
        for chunk in unsent.into_iter().chain((!gathered.is_empty()).then_some(gathered)) {
            // A failed send means the consumer is gone, and its result says why.
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    }
}

/// Starts a blocking task writing a new output stream's bytes into `sink`. The task ends when
/// the stream is dropped or detached; its result is the byte count or the write error. The
/// counter says how many bytes the guest wrote. A sink that takes nothing for `idle` fails
/// the stream.
pub(crate) fn output_to_writer<W: Write + Send + 'static>(
    mut sink: W,
    idle: Duration,
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
    let shared = Arc::new(Mutex::new(OutputShared { tx: Some(tx), gathered: BytesMut::new(), unsent: None, stalled: None }));
    (ChannelOutput { shared: shared.clone(), moved: moved.clone(), idle }, OutputDetach(shared), moved, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Consumer = (ChannelOutput, OutputDetach, tokio::task::JoinHandle<io::Result<u64>>, Arc<Mutex<Vec<u8>>>);

    /// An output stream whose consumer collects what it receives.
    fn consumer() -> Consumer {
        #[derive(Clone, Default)]
        struct Collect(Arc<Mutex<Vec<u8>>>);
        impl Write for Collect {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let sink = Collect::default();
        let seen = sink.0.clone();
        let (output, detach, _, task) = output_to_writer(sink, Duration::from_secs(60));
        (output, detach, task, seen)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn small_writes_are_gathered_and_all_arrive_by_detach_even_unflushed() {
        let (mut output, detach, task, seen) = consumer();
        let mut expected = Vec::new();
        for i in 0..1000u32 {
            let piece = vec![(i % 251) as u8; 1000 + (i as usize % 7)];
            while output.check_write().unwrap() == 0 {
                output.ready().await;
            }
            output.write(Bytes::from(piece.clone())).unwrap();
            expected.extend_from_slice(&piece);
        }
        // Nothing flushed: the last gathered bytes are still on the guest's side.
        detach.detach().await;
        assert_eq!(task.await.unwrap().unwrap(), expected.len() as u64);
        assert!(*seen.lock().unwrap() == expected);
        assert!(matches!(output.write(Bytes::from_static(b"late")), Err(StreamError::Closed)));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_flush_hands_over_what_was_gathered() {
        let (mut output, detach, task, seen) = consumer();
        output.write(Bytes::from_static(b"hello")).unwrap();
        output.flush().unwrap();
        output.ready().await;
        // The consumer gets it without the stream being detached.
        for _ in 0..200 {
            if seen.lock().unwrap().as_slice() == b"hello" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(seen.lock().unwrap().as_slice(), b"hello");
        detach.detach().await;
        assert_eq!(task.await.unwrap().unwrap(), 5);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_write_beyond_the_permit_traps() {
        let (mut output, detach, _task, _) = consumer();
        assert_eq!(output.check_write().unwrap(), CHUNK);
        let err = output.write(Bytes::from(vec![0u8; CHUNK + 1])).unwrap_err();
        assert!(matches!(err, StreamError::Trap(_)), "{err:?}");
        detach.detach().await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_sink_that_takes_nothing_fails_the_stream_after_the_idle_time() {
        /// A sink that blocks until told to go, as a client that stopped reading does.
        struct Stalled(std::sync::mpsc::Receiver<()>);
        impl Write for Stalled {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let _ = self.0.recv();
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (go, wait) = std::sync::mpsc::channel();
        let (mut output, detach, _, task) = output_to_writer(Stalled(wait), Duration::from_millis(200));
        let started = std::time::Instant::now();
        let failed = loop {
            match output.check_write() {
                Ok(0) => output.ready().await,
                Ok(_) => output.write(Bytes::from(vec![1u8; CHUNK])).unwrap(),
                Err(e) => break e,
            }
            assert!(started.elapsed() < Duration::from_secs(10), "the stream never failed");
        };
        assert!(format!("{failed:?}").contains("nothing was read from the stream for 200ms"), "{failed:?}");
        drop(go);
        detach.detach().await;
        let _ = task.await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_source_that_yields_nothing_fails_the_stream_after_the_idle_time() {
        /// A source that never yields, as an upload from a client that went silent.
        struct Silent(std::sync::mpsc::Receiver<()>);
        impl Read for Silent {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                let _ = self.0.recv();
                Ok(0)
            }
        }
        let (go, wait) = std::sync::mpsc::channel();
        let (mut input, detach, task) = input_from_reader(Silent(wait), Duration::from_millis(200));
        input.ready().await;
        let err = input.read(10).unwrap_err();
        assert!(format!("{err:?}").contains("no data came for 200ms"), "{err:?}");
        drop(go);
        detach.detach().await;
        let _ = task.await;
    }
}
