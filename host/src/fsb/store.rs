//! rustic_core's backend traits over a location's object-store provider: the restic layout
//! (`config`, `keys/`, `snapshots/`, `index/`, `data/<2 hex>/`) under the repository's root in
//! the location's bucket. Every byte goes through the provider, so file-system backup works on
//! every object store, third-party components included, with only the location's grants.
//!
//! rustic calls these traits from its own threads; each call waits there for the provider
//! call on the Tokio runtime, so it must run outside the runtime's workers (in
//! `spawn_blocking`). Several provider instances serve one repository, so that packs upload
//! and download in parallel.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use bytes::Bytes;
use rustic_core::{BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::sandbox::{ObjectStoreHandle, ProviderError};

/// Provider instances serving one repository at once.
pub const INSTANCES: usize = 4;

/// The largest repository file read whole: rustic's own limit (sizes are `u32`).
const MAX_FILE: u64 = u32::MAX as u64;

/// A repository in a location's bucket, as rustic sees a backend.
pub struct RepositoryStore {
    pool: Pool,
    bucket: String,
    /// The repository's root key, without a trailing `/`.
    root: String,
    /// `backup-location "name"`, for errors.
    label: String,
    runtime: Handle,
    /// The first call that failed, in words: rustic stops some work by panicking on an error,
    /// and this is then what names the cause.
    failure: Mutex<Option<String>>,
}

impl std::fmt::Debug for RepositoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepositoryStore").field("bucket", &self.bucket).field("root", &self.root).finish()
    }
}

impl RepositoryStore {
    /// A repository at `root` in `bucket`, served by `handles` (at least one) of one location.
    pub fn new(handles: Vec<ObjectStoreHandle>, bucket: &str, root: &str, runtime: Handle) -> Self {
        let label = handles.first().map_or_else(String::new, |h| h.location().to_owned());
        let root = root.trim_end_matches('/').to_owned();
        RepositoryStore { pool: Pool::new(handles), bucket: bucket.to_owned(), root, label, runtime, failure: Mutex::new(None) }
    }

    /// The first provider call that failed since the last time this was asked, in words.
    pub fn take_failure(&self) -> Option<String> {
        self.failure.lock().expect("failure lock").take()
    }

    /// The object key of a repository file.
    fn key(&self, tpe: FileType, id: &Id) -> String {
        let hex = id.to_hex();
        match tpe {
            FileType::Config => format!("{}/config", self.root),
            FileType::Pack => format!("{}/data/{}/{}", self.root, &hex[..2], hex.as_str()),
            other => format!("{}/{}/{}", self.root, other.dirname(), hex.as_str()),
        }
    }

    /// Runs a provider call on a free instance, from one of rustic's threads.
    fn call<T>(&self, what: &str, key: &str, call: impl AsyncFnOnce(&mut ObjectStoreHandle) -> Result<T, ProviderError>) -> RusticResult<T> {
        self.runtime
            .block_on(async {
                let mut handle = self.pool.take().await;
                call(&mut handle).await
            })
            .map_err(|e| self.error(what, key, e))
    }

    fn error(&self, what: &str, key: &str, source: ProviderError) -> Box<RusticError> {
        self.failure.lock().expect("failure lock").get_or_insert_with(|| format!("{what} {key} failed: {source}"));
        let kind = match source.kind {
            crate::sandbox::ErrorKind::NotFound(_) => ErrorKind::MissingInput,
            _ => ErrorKind::Backend,
        };
        RusticError::with_source(kind, "{what} `{key}` in bucket `{bucket}` failed", source)
            .attach_context("what", what.to_owned())
            .attach_context("key", key.to_owned())
            .attach_context("bucket", self.bucket.clone())
    }
}

impl ReadBackend for RepositoryStore {
    fn location(&self) -> String {
        format!("{}:{}/{}", self.label, self.bucket, self.root)
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        let prefix = match tpe {
            FileType::Config => format!("{}/config", self.root),
            other => format!("{}/{}/", self.root, other.dirname()),
        };
        let (bucket, listed) = (&self.bucket, prefix.clone());
        let entries = self.call("listing", &prefix, async move |h| h.list_objects_with_sizes(bucket, &listed).await)?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let size = u32::try_from(entry.size).map_err(|_| {
                RusticError::new(ErrorKind::Backend, "repository file `{key}` is larger than 4 GiB")
                    .attach_context("key", entry.key.clone())
            })?;
            match tpe {
                FileType::Config if entry.key == prefix => out.push((Id::default(), size)),
                FileType::Config => {}
                // Anything that is not named by an ID (a stray file) is not a repository file.
                _ => {
                    if let Ok(id) = entry.key.rsplit('/').next().unwrap_or_default().parse::<Id>() {
                        out.push((id, size));
                    }
                }
            }
        }
        Ok(out)
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let key = self.key(tpe, id);
        let (bucket, k) = (&self.bucket, key.clone());
        Ok(self.call("reading", &key, async move |h| h.get_bytes(bucket, &k, MAX_FILE).await)?.into())
    }

    fn read_partial(&self, tpe: FileType, id: &Id, _cacheable: bool, offset: u32, length: u32) -> RusticResult<Bytes> {
        let key = self.key(tpe, id);
        let (bucket, k) = (&self.bucket, key.clone());
        let bytes = self.call("reading", &key, async move |h| h.get_range_bytes(bucket, &k, offset.into(), length.into()).await)?;
        if bytes.len() != length as usize {
            return Err(RusticError::new(ErrorKind::Backend, "repository file `{key}` ended before byte {end}: it is truncated")
                .attach_context("key", key)
                .attach_context("end", (u64::from(offset) + u64::from(length)).to_string()));
        }
        Ok(bytes.into())
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.key(tpe, id)
    }
}

impl WriteBackend for RepositoryStore {
    fn write_bytes(&self, tpe: FileType, id: &Id, _cacheable: bool, content: BytesList) -> RusticResult<()> {
        let key = self.key(tpe, id);
        let (bucket, k) = (&self.bucket, key.clone());
        self.call("writing", &key, async move |h| h.put_object(bucket, &k, content.reader()).await).map(drop)
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let key = self.key(tpe, id);
        let (bucket, k) = (&self.bucket, key.clone());
        self.call("deleting", &key, async move |h| h.delete_object(bucket, &k).await)
    }
}

/// Instances of one location's provider, each lent to one call at a time.
struct Pool {
    free: Mutex<Vec<ObjectStoreHandle>>,
    available: Semaphore,
}

impl Pool {
    fn new(handles: Vec<ObjectStoreHandle>) -> Self {
        Pool { available: Semaphore::new(handles.len()), free: Mutex::new(handles) }
    }

    async fn take(&self) -> Lease<'_> {
        let permit = self.available.acquire().await.expect("the pool's semaphore is never closed");
        permit.forget();
        let handle = self.free.lock().expect("pool lock").pop().expect("a permit means a free instance");
        Lease { pool: self, handle: Some(handle) }
    }
}

/// An instance lent out of the pool; it goes back when dropped.
struct Lease<'a> {
    pool: &'a Pool,
    handle: Option<ObjectStoreHandle>,
}

impl Deref for Lease<'_> {
    type Target = ObjectStoreHandle;
    fn deref(&self) -> &ObjectStoreHandle {
        self.handle.as_ref().expect("held until dropped")
    }
}

impl DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut ObjectStoreHandle {
        self.handle.as_mut().expect("held until dropped")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.pool.free.lock().expect("pool lock").push(handle);
            self.pool.available.add_permits(1);
        }
    }
}
