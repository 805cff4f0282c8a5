//! The state in etcd (v3), which several servers share. A transaction reads one revision of
//! the store and buffers its writes; it commits as one etcd transaction that holds only if
//! nothing it read has changed since (each key's modification revision, and for each listing
//! the generation key that every change in that kind and namespace bumps). When something
//! did, the transaction runs again on the new revision, as etcd's own STM does: writes are
//! serializable across servers.
//!
//! The etcd client is asynchronous and the state's interface is not; its calls run on a
//! runtime of the store's own, so they may be made from anywhere, async code included.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, TxnOp};

use super::{StateError, StateHealth};

/// Objects: `coffer/objects/<kind>\0<namespace>\0<name>`.
const OBJECTS: &str = "coffer/objects/";
/// Generations: `coffer/generations/<kind>` and `…/<kind>\0<namespace>`, bumped by every
/// change of an object of that kind (in that namespace), so that a listing can be checked.
const GENERATIONS: &str = "coffer/generations/";
/// Written by [`Etcd::probe`].
const PROBE: &str = "coffer/probe";
/// How many keys one request of a listing reads.
const PAGE: i64 = 500;
/// How often a transaction runs before it gives up to others changing what it reads.
const TRIES: u32 = 64;
/// How long a call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A value, and the revision it was last changed at.
type Versioned = (Vec<u8>, i64);

/// An etcd cluster to keep the state in (`--state etcd://HOST:PORT[,HOST:PORT…]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdOptions {
    /// The members' client URLs (`http://HOST:PORT`).
    pub endpoints: Vec<String>,
}

/// Parses `etcd://HOST:PORT[,HOST:PORT…]`; the error names the value and what is wrong.
pub fn parse_etcd_url(value: &str) -> Result<EtcdOptions, String> {
    let wrong = |why: &str| format!("state location {value:?}: {why}; expected etcd://HOST:PORT[,HOST:PORT...]");
    if value.contains('@') {
        // Not echoed: what precedes the @ may be a password.
        return Err("state location: credentials do not go in the etcd:// URL; expected etcd://HOST:PORT[,HOST:PORT...]".into());
    }
    let members = value.strip_prefix("etcd://").ok_or_else(|| wrong("not an etcd:// URL"))?;
    let mut endpoints = Vec::new();
    for member in members.split(',').map(str::trim) {
        let url = url::Url::parse(&format!("http://{member}")).map_err(|e| wrong(&format!("member {member:?}: {e}")))?;
        let plain = url.path() == "/" && url.query().is_none();
        match (url.host_str(), url.port(), plain) {
            (Some(host), Some(port), true) => endpoints.push(format!("http://{host}:{port}")),
            _ => return Err(wrong(&format!("member {member:?} is not HOST:PORT"))),
        }
    }
    Ok(EtcdOptions { endpoints })
}

/// The state in an etcd cluster.
pub struct Etcd {
    /// How errors name it: `etcd://…`.
    name: String,
    client: Client,
    /// The runtime its calls run on (taken when it is dropped).
    runtime: Option<tokio::runtime::Runtime>,
    health: Mutex<StateHealth>,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Without waiting: it may be dropped inside another runtime.
            runtime.shutdown_background();
        }
    }
}

impl Etcd {
    /// Connects to the cluster and checks that it answers.
    pub fn connect(options: &EtcdOptions) -> Result<Etcd, StateError> {
        let name = format!("etcd://{}", options.endpoints.iter().map(|e| e.trim_start_matches("http://")).collect::<Vec<_>>().join(","));
        let path = name.clone();
        let err = |message: String| StateError::Database { path: path.clone(), message };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("coffer-etcd")
            .enable_all()
            .build()
            .map_err(|e| err(e.to_string()))?;
        let endpoints = options.endpoints.clone();
        let connect = ConnectOptions::new().with_connect_timeout(Duration::from_secs(5)).with_timeout(CALL_TIMEOUT);
        let client = block(&runtime, async move { Client::connect(endpoints, Some(connect)).await }).map_err(|e| err(e.to_string()))?;
        let health = Mutex::new(StateHealth { writable: true, ..StateHealth::default() });
        let etcd = Etcd { name, client, runtime: Some(runtime), health };
        // The client connects lazily: a first read says whether anything answers.
        etcd.get(PROBE, None).map_err(|e| err(format!("does not answer: {e}")))?;
        Ok(etcd)
    }

    fn error(&self, e: impl std::fmt::Display) -> StateError {
        StateError::Database { path: self.name.clone(), message: e.to_string() }
    }

    fn health_mut(&self) -> MutexGuard<'_, StateHealth> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How the state has fared.
    pub fn health(&self) -> StateHealth {
        self.health_mut().clone()
    }

    /// Runs `call` on the store's runtime and waits for it.
    fn run<T: Send + 'static>(&self, call: impl Future<Output = T> + Send + 'static) -> T {
        block(self.runtime.as_ref().expect("the runtime lives as long as the store"), call)
    }

    /// The value and modification revision of `key` (absent: `None`), at `revision` (the
    /// newest: `None`); and the revision read at.
    fn get(&self, key: &str, revision: Option<i64>) -> Result<(Option<Versioned>, i64), StateError> {
        let mut kv = self.client.kv_client();
        let options = GetOptions::new().with_revision(revision.unwrap_or(0));
        let key = key.to_owned();
        let response = self.run(async move { kv.get(key, Some(options)).await }).map_err(|e| self.error(e))?;
        let at = response.header().map_or(0, |h| h.revision());
        Ok((response.kvs().first().map(|kv| (kv.value().to_vec(), kv.mod_revision())), at))
    }

    /// The keys from `start` to `end` (exclusive) with their values, at `revision`, read a page
    /// at a time.
    fn range(&self, start: &str, end: &str, revision: i64) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        let mut out = Vec::new();
        let mut from = start.as_bytes().to_vec();
        loop {
            let mut kv = self.client.kv_client();
            let options = GetOptions::new().with_range(end).with_revision(revision).with_limit(PAGE);
            let key = from.clone();
            let response = self.run(async move { kv.get(key, Some(options)).await }).map_err(|e| self.error(e))?;
            for kv in response.kvs() {
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                out.push((key, kv.value().to_vec()));
            }
            match (response.more(), response.kvs().last()) {
                (true, Some(last)) => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => return Ok(out),
            }
        }
    }

    /// A transaction on the newest revision (fixed at its first read).
    pub fn transaction(&self) -> Txn<'_> {
        Txn { etcd: self, writable: false, revision: Mutex::new(None), seen: Mutex::new(BTreeMap::new()), writes: BTreeMap::new(), touched: BTreeSet::new() }
    }

    /// Runs `f` in a transaction and commits what it wrote if nothing it read has changed
    /// meanwhile; otherwise runs it again on the newest revision.
    pub fn write<R, E: From<StateError>>(&self, mut f: impl FnMut(&mut super::Txn<'_>) -> Result<R, E>) -> Result<R, E> {
        for attempt in 0..TRIES {
            let mut txn = self.transaction();
            txn.writable = true;
            let mut shared = super::Txn { inner: super::Inner::Etcd(txn) };
            let out = f(&mut shared)?;
            let super::Inner::Etcd(txn) = shared.inner else { unreachable!("built as an etcd transaction") };
            match self.commit(txn) {
                Ok(true) => {
                    self.health_mut().writable = true;
                    return Ok(out);
                }
                // Another writer changed what it read: again, after a moment that grows.
                Ok(false) => std::thread::sleep(Duration::from_millis(u64::from(attempt.min(20)) + rand::random::<u64>() % 5)),
                Err(e) => {
                    let mut health = self.health_mut();
                    health.writable = false;
                    health.write_failures += 1;
                    health.last_error = Some(e.to_string());
                    return Err(e.into());
                }
            }
        }
        Err(StateError::Contended { path: self.name.clone(), tries: TRIES }.into())
    }

    /// Commits `txn`'s writes if nothing it read changed since; whether it did.
    fn commit(&self, txn: Txn<'_>) -> Result<bool, StateError> {
        if txn.writes.is_empty() {
            return Ok(true);
        }
        let seen = txn.seen.into_inner().unwrap_or_else(|e| e.into_inner());
        let compares: Vec<Compare> =
            seen.iter().map(|(key, revision)| Compare::mod_revision(key.as_bytes(), CompareOp::Equal, *revision)).collect();
        let mut operations: Vec<TxnOp> = txn
            .writes
            .into_iter()
            .map(|(key, value)| match value {
                Some(value) => TxnOp::put(key, value, None),
                None => TxnOp::delete(key, None),
            })
            .collect();
        operations.extend(txn.touched.into_iter().map(|generation| TxnOp::put(generation, Vec::new(), None)));
        let mut kv = self.client.kv_client();
        let request = etcd_client::Txn::new().when(compares).and_then(operations);
        let response = self.run(async move { kv.txn(request).await }).map_err(|e| self.error(e))?;
        Ok(response.succeeded())
    }

    /// Whether etcd takes a write now.
    pub fn probe(&self) -> bool {
        let mut kv = self.client.kv_client();
        let stamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        let written = self.run(async move { kv.put(PROBE, stamp, None).await }).is_ok();
        self.health_mut().writable = written;
        written
    }
}

/// Runs `call` on `runtime` and waits for its end, from any thread (an async one included:
/// the wait blocks only this thread, as a file read would).
fn block<T: Send + 'static>(runtime: &tokio::runtime::Runtime, call: impl Future<Output = T> + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = done.send(call.await);
    });
    result.recv().expect("the store's runtime runs every call to its end")
}

/// An object's key in etcd.
fn object_key(key: &str) -> String {
    format!("{OBJECTS}{key}")
}

/// The generation key of `kind` (in `namespace`).
fn generation_key(kind: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{GENERATIONS}{kind}\u{0}{ns}"),
        None => format!("{GENERATIONS}{kind}"),
    }
}

/// A transaction: reads at one revision, writes buffered until the commit.
pub struct Txn<'a> {
    etcd: &'a Etcd,
    /// Whether it may write (a write transaction).
    writable: bool,
    /// The revision every read is at: the newest at its first read.
    revision: Mutex<Option<i64>>,
    /// Each etcd key read, with its modification revision then (0: absent).
    seen: Mutex<BTreeMap<String, i64>>,
    /// What it writes, by object key: a value, or `None` to delete.
    writes: BTreeMap<String, Option<Vec<u8>>>,
    /// The generation keys of what it writes.
    touched: BTreeSet<String>,
}

impl Txn<'_> {
    /// Says `message` as this store's error.
    pub(super) fn error(&self, message: String) -> StateError {
        self.etcd.error(message)
    }

    /// Reads etcd key `key` at the transaction's revision, noting it as read.
    fn read(&self, key: String) -> Result<Option<Vec<u8>>, StateError> {
        let mut revision = self.revision.lock().unwrap_or_else(|e| e.into_inner());
        let (found, at) = self.etcd.get(&key, *revision)?;
        revision.get_or_insert(at);
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).insert(key, found.as_ref().map_or(0, |(_, r)| *r));
        Ok(found.map(|(value, _)| value))
    }

    /// The value at `key`, as this transaction has it.
    pub(super) fn bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let key = object_key(key);
        match self.writes.get(&key) {
            Some(written) => Ok(written.clone()),
            None => self.read(key),
        }
    }

    /// The objects from `start` to `end` (exclusive), which are those of `kind` (in
    /// `namespace`), by key, as this transaction has them.
    pub(super) fn range(&self, start: &str, end: &str, kind: &str, namespace: Option<&str>) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        // The generation first: a change in the range after this revision fails the commit.
        self.read(generation_key(kind, namespace))?;
        let revision = self.revision.lock().unwrap_or_else(|e| e.into_inner()).expect("set by the read above");
        let (start, end) = (object_key(start), object_key(end));
        let mut found: BTreeMap<String, Vec<u8>> = self.etcd.range(&start, &end, revision)?.into_iter().collect();
        for (key, written) in self.writes.range(start..end) {
            match written {
                Some(value) => found.insert(key.clone(), value.clone()),
                None => found.remove(key),
            };
        }
        Ok(found.into_iter().map(|(key, value)| (key[OBJECTS.len()..].to_owned(), value)).collect())
    }

    fn write(&mut self, key: String, value: Option<Vec<u8>>, kind: &str, namespace: &str) -> Result<(), StateError> {
        if !self.writable {
            return Err(self.error("write in a read transaction".into()));
        }
        self.writes.insert(key, value);
        self.touched.insert(generation_key(kind, Some(namespace)));
        self.touched.insert(generation_key(kind, None));
        Ok(())
    }

    /// Sets object `key` (of `kind` in `namespace`) to `value`.
    pub(super) fn put(&mut self, key: String, value: Vec<u8>, kind: &str, namespace: &str) -> Result<(), StateError> {
        self.write(object_key(&key), Some(value), kind, namespace)
    }

    /// Removes object `key` (of `kind` in `namespace`); whether it was there.
    pub(super) fn remove(&mut self, key: String, kind: &str, namespace: &str) -> Result<bool, StateError> {
        let existed = self.bytes(&key)?.is_some();
        self.write(object_key(&key), None, kind, namespace)?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_urls_parse_and_bad_ones_are_named() {
        let options = parse_etcd_url("etcd://127.0.0.1:2379, [::1]:22379").unwrap();
        assert_eq!(options.endpoints, ["http://127.0.0.1:2379", "http://[::1]:22379"]);
        for bad in ["http://127.0.0.1:2379", "etcd://127.0.0.1", "etcd://a:1/path", "etcd://"] {
            let err = parse_etcd_url(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        let err = parse_etcd_url("etcd://user:hunter2@a:1").unwrap_err();
        assert!(err.contains("credentials") && !err.contains("hunter2"), "{err}");
    }
}
