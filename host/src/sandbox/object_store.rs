//! The typed handle of an object-store provider instance.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

use crate::disk::{BelowReserve, SpaceReserve};

use super::bindings::{ObjectStoreWorld, Versioned};
use super::component::{Pre, ProviderComponent};
use super::error::{ErrorKind, ProviderError};
use super::grants::Grants;
use super::slot::{Slot, call_export, wrong_kind};
use super::streams::{CHUNK, input_from_reader, output_to_writer};
use super::{ProviderKind, Sandbox};

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    /// The whole key.
    pub key: String,
    /// Its length in bytes.
    pub size: u64,
}

/// An object store serving one location. Calls are sequential; each runs under the sandbox's
/// limits, and a trapped instance is replaced on the next call.
pub struct ObjectStoreHandle {
    slot: Slot<ObjectStoreWorld>,
}

impl ObjectStoreHandle {
    /// Instantiates `component` with `grants` and initialises it.
    pub async fn new(sandbox: &Sandbox, component: &ProviderComponent, grants: Grants) -> Result<Self, ProviderError> {
        let Pre::ObjectStore(pre) = &component.pre else {
            return Err(wrong_kind(component, &grants, ProviderKind::ObjectStore));
        };
        Ok(ObjectStoreHandle { slot: Slot::new(sandbox.clone(), pre.clone(), grants).await? })
    }

    /// The location this handle serves.
    pub fn location(&self) -> &str {
        self.slot.location()
    }

    fn error(&self, kind: ErrorKind) -> ProviderError {
        ProviderError { location: self.location().to_owned(), kind }
    }

    /// Stores everything `source` yields as `key`. Returns the byte count. Into a directory on
    /// the host's data disk, the upload is refused (or stopped) when the disk's free space falls
    /// below the state's reserve.
    pub async fn put_object<R: Read + Send + 'static>(&mut self, bucket: &str, key: &str, source: R) -> Result<u64, ProviderError> {
        let source: Box<dyn Read + Send> = match self.slot.space() {
            Some(reserve) => {
                reserve.check().map_err(|e| self.error(ErrorKind::NoRoom(e)))?;
                Box::new(Guarded { inner: source, reserve, unchecked: 0 })
            }
            None => Box::new(source),
        };
        let (input, detach, reader) = input_from_reader(source, self.slot.limits().stream_idle);
        let location = self.location().to_owned();
        let live = self.slot.live().await?;
        let body = live
            .store
            .data_mut()
            .table
            .push(Box::new(input) as DynInputStream)
            .map_err(|e| ProviderError { location, kind: ErrorKind::Other(e.to_string()) })?;
        let stored = call_export!(self.slot, coffer_provider_object_store.call_put_object(bucket, key, body));
        // A provider that kept the stream gets nothing more from it.
        detach.detach().await;
        let read = reader.await.map_err(|e| self.error(ErrorKind::Source(std::io::Error::other(e))))?;
        let read = read.map_err(|e| match e.get_ref().and_then(|inner| inner.downcast_ref::<BelowReserve>()) {
            Some(below) => self.error(ErrorKind::NoRoom(below.clone())),
            None => self.error(ErrorKind::Source(e)),
        })?;
        let stored = stored?;
        if stored != read {
            return Err(self.error(ErrorKind::LengthMismatch { reported: stored, moved: read }));
        }
        Ok(stored)
    }

    /// Stores `bytes` as `key`.
    pub async fn put_bytes(&mut self, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<u64, ProviderError> {
        self.put_object(bucket, key, std::io::Cursor::new(bytes)).await
    }

    /// Writes object `key` into `sink`. Returns its length.
    pub async fn get_object<W: Write + Send + 'static>(&mut self, bucket: &str, key: &str, sink: W) -> Result<u64, ProviderError> {
        self.fetch(bucket, key, None, sink).await
    }

    /// Writes at most `length` bytes of object `key` from byte `offset` into `sink`. Returns how
    /// many: fewer than `length` only where the object ends first.
    pub async fn get_object_range<W: Write + Send + 'static>(
        &mut self,
        bucket: &str,
        key: &str,
        offset: u64,
        length: u64,
        sink: W,
    ) -> Result<u64, ProviderError> {
        self.fetch(bucket, key, Some((offset, length)), sink).await
    }

    /// Object `key`, or the `range` (offset, length) of it, streamed into `sink`; checks that
    /// what crossed the stream is what the provider reported and no more than was asked for.
    async fn fetch<W: Write + Send + 'static>(
        &mut self,
        bucket: &str,
        key: &str,
        range: Option<(u64, u64)>,
        sink: W,
    ) -> Result<u64, ProviderError> {
        if range.is_some() && !self.has("0.2.0") {
            return Err(self.older_contract("get-object-range", "0.2.0"));
        }
        let (output, detach, moved, writer) = output_to_writer(sink, self.slot.limits().stream_idle);
        let location = self.location().to_owned();
        let live = self.slot.live().await?;
        let sink = live
            .store
            .data_mut()
            .table
            .push(Box::new(output) as DynOutputStream)
            .map_err(|e| ProviderError { location, kind: ErrorKind::Other(e.to_string()) })?;
        let result = match range {
            None => call_export!(self.slot, coffer_provider_object_store.call_get_object(bucket, key, sink)),
            Some((offset, length)) => call_export!(self.slot, "get_object_range", |bindings, store| async move {
                match bindings {
                    Versioned::Current(b) => b.coffer_provider_object_store().call_get_object_range(store, bucket, key, offset, length, sink).await,
                    Versioned::V0_2(b) => b.coffer_provider_object_store().call_get_object_range(store, bucket, key, offset, length, sink).await,
                    Versioned::V0_1(_) => unreachable!("refused above"),
                }
            }),
        };
        // The stream ends with the call, even if the provider kept it.
        detach.detach().await;
        let written = writer.await.map_err(|e| self.error(ErrorKind::Sink(std::io::Error::other(e))))?;
        let length = result?;
        let written = written.map_err(|e| self.error(ErrorKind::Sink(e)))?;
        let moved = moved.load(Ordering::Relaxed);
        if length != written || moved != written {
            return Err(self.error(ErrorKind::LengthMismatch { reported: length, moved: written }));
        }
        if let Some((_, asked)) = range
            && length > asked
        {
            return Err(self.error(ErrorKind::InvalidAnswer(format!("a read of {asked} bytes of {key:?} returned {length}"))));
        }
        Ok(length)
    }

    /// Object `key` in memory, refused (without holding more than `limit` bytes) when it is
    /// larger than `limit`. For documents, not for large objects.
    pub async fn get_bytes(&mut self, bucket: &str, key: &str, limit: u64) -> Result<Vec<u8>, ProviderError> {
        let buffer = SharedBuffer { limit, ..SharedBuffer::default() };
        let result = self.get_object(bucket, key, buffer.clone()).await;
        if buffer.overflowed() {
            return Err(self.error(ErrorKind::TooLarge { key: key.into(), limit }));
        }
        result?;
        Ok(buffer.take())
    }

    /// At most `length` bytes of object `key` from byte `offset`, in memory (fewer only where
    /// the object ends first).
    pub async fn get_range_bytes(&mut self, bucket: &str, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, ProviderError> {
        let buffer = SharedBuffer { limit: length, ..SharedBuffer::default() };
        let result = self.get_object_range(bucket, key, offset, length, buffer.clone()).await;
        if buffer.overflowed() {
            return Err(self.error(ErrorKind::InvalidAnswer(format!("a read of {length} bytes of {key:?} sent more"))));
        }
        result?;
        Ok(buffer.take())
    }

    /// Whether `key` exists.
    pub async fn object_exists(&mut self, bucket: &str, key: &str) -> Result<bool, ProviderError> {
        call_export!(self.slot, coffer_provider_object_store.call_object_exists(bucket, key))
    }

    /// Prefixes under `prefix` up to the next `delimiter`, each whole and ending in it.
    pub async fn list_common_prefixes(&mut self, bucket: &str, prefix: &str, delimiter: &str) -> Result<Vec<String>, ProviderError> {
        let prefixes = call_export!(self.slot, coffer_provider_object_store.call_list_common_prefixes(bucket, prefix, delimiter))?;
        match prefixes.iter().find(|p| !p.starts_with(prefix) || !p.ends_with(delimiter) || p.len() <= prefix.len()) {
            Some(bad) => Err(self.error(ErrorKind::InvalidAnswer(format!(
                "common prefix {bad:?} is not a longer prefix of {prefix:?} ending in {delimiter:?}"
            )))),
            None => Ok(prefixes),
        }
    }

    /// Every key under `prefix`.
    pub async fn list_objects(&mut self, bucket: &str, prefix: &str) -> Result<Vec<String>, ProviderError> {
        let keys = call_export!(self.slot, "list_objects", |bindings, store| async move {
            Ok(match bindings {
                Versioned::Current(b) => b
                    .coffer_provider_object_store()
                    .call_list_objects(store, bucket, prefix)
                    .await?
                    .map(|entries| entries.into_iter().map(|e| e.key).collect::<Vec<_>>()),
                Versioned::V0_2(b) => b
                    .coffer_provider_object_store()
                    .call_list_objects(store, bucket, prefix)
                    .await?
                    .map(|entries| entries.into_iter().map(|e| e.key).collect::<Vec<_>>()),
                Versioned::V0_1(b) => b.coffer_provider_object_store().call_list_objects(store, bucket, prefix).await?,
            })
        })?;
        self.check_listing(prefix, keys.iter().map(String::as_str))?;
        Ok(keys)
    }

    /// Every object under `prefix`, with its size.
    pub async fn list_objects_with_sizes(&mut self, bucket: &str, prefix: &str) -> Result<Vec<ObjectEntry>, ProviderError> {
        if !self.has("0.2.0") {
            return Err(self.older_contract("sizes in list-objects", "0.2.0"));
        }
        let entries = call_export!(self.slot, "list_objects", |bindings, store| async move {
            Ok(match bindings {
                Versioned::Current(b) => b
                    .coffer_provider_object_store()
                    .call_list_objects(store, bucket, prefix)
                    .await?
                    .map(|entries| entries.into_iter().map(|e| ObjectEntry { key: e.key, size: e.size }).collect::<Vec<_>>()),
                Versioned::V0_2(b) => b
                    .coffer_provider_object_store()
                    .call_list_objects(store, bucket, prefix)
                    .await?
                    .map(|entries| entries.into_iter().map(|e| ObjectEntry { key: e.key, size: e.size }).collect::<Vec<_>>()),
                Versioned::V0_1(_) => unreachable!("refused above"),
            })
        })?;
        self.check_listing(prefix, entries.iter().map(|e| e.key.as_str()))?;
        Ok(entries)
    }

    fn check_listing<'a>(&self, prefix: &str, mut keys: impl Iterator<Item = &'a str>) -> Result<(), ProviderError> {
        match keys.find(|k| !k.starts_with(prefix)) {
            Some(bad) => Err(self.error(ErrorKind::InvalidAnswer(format!("listed key {bad:?} is outside the prefix {prefix:?}")))),
            None => Ok(()),
        }
    }

    /// The contract version the provider was built against.
    pub fn contract(&self) -> &'static str {
        self.slot.contract()
    }

    /// Whether the provider has the calls contract `version` added (e.g. `"0.2.0"`).
    pub fn has(&self, version: &str) -> bool {
        self.slot.has(version)
    }

    fn older_contract(&self, call: &'static str, added: &'static str) -> ProviderError {
        self.error(ErrorKind::OlderContract { contract: self.contract(), call, added })
    }

    /// Deletes `key`; a missing key is not an error.
    pub async fn delete_object(&mut self, bucket: &str, key: &str) -> Result<(), ProviderError> {
        call_export!(self.slot, coffer_provider_object_store.call_delete_object(bucket, key))
    }

    /// A URL to GET `key` during `ttl`.
    pub async fn create_signed_url(&mut self, bucket: &str, key: &str, ttl: Duration) -> Result<String, ProviderError> {
        call_export!(self.slot, coffer_provider_object_store.call_create_signed_url(bucket, key, ttl.as_secs()))
    }
}

/// A `Write` into memory, up to `limit` bytes, that can be read back after a blocking task
/// wrote into it. A write beyond the limit fails and drops what was kept.
#[derive(Clone, Default)]
struct SharedBuffer {
    bytes: std::sync::Arc<std::sync::Mutex<(Vec<u8>, bool)>>,
    limit: u64,
}

impl SharedBuffer {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.bytes.lock().expect("buffer lock").0)
    }

    fn overflowed(&self) -> bool {
        self.bytes.lock().expect("buffer lock").1
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut kept = self.bytes.lock().expect("buffer lock");
        if kept.1 || (kept.0.len() + buf.len()) as u64 > self.limit {
            *kept = (Vec::new(), true);
            return Err(std::io::Error::other(format!("larger than {} bytes", self.limit)));
        }
        kept.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A source that stops with [`BelowReserve`] when the data disk's free space falls below the
/// reserve, checked once per chunk.
struct Guarded<R> {
    inner: R,
    reserve: Arc<SpaceReserve>,
    /// Bytes read since the last check.
    unchecked: usize,
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.unchecked >= CHUNK {
            self.reserve.check().map_err(std::io::Error::other)?;
            self.unchecked = 0;
        }
        let n = self.inner.read(buf)?;
        self.unchecked += n;
        Ok(n)
    }
}
