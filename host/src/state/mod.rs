//! The state: every object (locations, secrets, backups, …) by kind, namespace and name, read
//! and changed in transactions. Two stores keep it: the embedded redb file under the data
//! directory (the default; [`embedded`]) and etcd, which several servers share ([`etcd`]).
//! Either way a change commits whole or not at all, and a transaction reads one consistent
//! snapshot.

mod embedded;
mod etcd;

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

pub use embedded::{RESERVE_FILE, STATE_FILE};
pub use etcd::{EtcdOptions, EtcdTls, EtcdUser, parse_etcd_url};

/// A problem with the state.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StateError {
    /// The store failed.
    #[error("state database {path}: {message}")]
    Database {
        /// The state file, or the etcd endpoints.
        path: String,
        /// What failed.
        message: String,
    },
    /// The state could not be written for I/O (a full disk): the server keeps serving reads
    /// and tries again on every write.
    #[error("state database {path} cannot be written now: {message}")]
    Unwritable {
        /// The state file.
        path: String,
        /// What failed.
        message: String,
    },
    /// A stored object could not be decoded.
    #[error("stored {kind} {namespace}/{name} is unreadable: {message}")]
    Corrupt {
        /// Kind of object.
        kind: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The decoding error.
        message: String,
    },
    /// This process's lease in a shared state lapsed (it was paused or cut off longer than
    /// the lease lasts): others may have taken over its work, so it writes nothing more.
    #[error("state database {path}: the lease of this process (member {member}) has lapsed, so it may write nothing more; it must be restarted")]
    Fenced {
        /// The etcd endpoints.
        path: String,
        /// This process's member ID.
        member: String,
    },
    /// An update was made against a version of the object that is no longer current.
    #[error("{kind} {object} was changed since resourceVersion {expected:?} (it is at {current:?} now): read it again and apply the change to what it is now")]
    Stale {
        /// Kind of object.
        kind: &'static str,
        /// Its namespace and name, `namespace/name`.
        object: String,
        /// The version the update was made against.
        expected: String,
        /// The version stored.
        current: String,
    },
    /// A state to migrate into already holds objects.
    #[error("state {path} already holds {objects} objects: migrate only into an empty state")]
    NotEmpty {
        /// The state file, or the etcd endpoints.
        path: String,
        /// How many.
        objects: usize,
    },
    /// A transaction met concurrent changes on every try (etcd).
    #[error("state database {path}: the change conflicted with others {tries} times in a row; try again")]
    Contended {
        /// The etcd endpoints.
        path: String,
        /// How often it was tried.
        tries: u32,
    },
}

/// An object kept in the state, addressed by kind, namespace and name.
pub trait Resource: Serialize + DeserializeOwned {
    /// The kind, e.g. `BackupStorageLocation`.
    const KIND: &'static str;
    /// The namespace (tenant) it belongs to.
    fn namespace(&self) -> &str;
    /// Its name, unique per kind and namespace.
    fn name(&self) -> &str;
    /// Its `metadata.resourceVersion`, for kinds that carry one (`None`: it has none). The
    /// state sets it on every write: for each object, every write gives a version no earlier
    /// write of that name (deleted and created again included) had.
    fn resource_version(&self) -> Option<&str> {
        None
    }
    /// Its `metadata.resourceVersion`, to set (`None`: it has none).
    fn resource_version_mut(&mut self) -> Option<&mut String> {
        None
    }
}

/// The precondition of an update: that `current` is still at version `expected`, when one is
/// given (as an API client gives the `metadata.resourceVersion` it read). Checked inside the
/// write transaction, which commits only if nothing it read changed meanwhile, so two updates
/// of one version cannot both succeed.
pub fn expect_version<T: Resource>(current: &T, expected: Option<&str>) -> Result<(), StateError> {
    match (expected, current.resource_version()) {
        (Some(expected), Some(now)) if expected != now => Err(StateError::Stale {
            kind: T::KIND,
            object: format!("{}/{}", current.namespace(), current.name()),
            expected: expected.to_owned(),
            current: now.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// An object's key: kind, namespace and name, NUL-separated (names never hold NUL).
fn key(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}\u{0}{namespace}\u{0}{name}")
}

/// Creates `dir` and its missing parents owner-only (0700); an existing directory is left
/// as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// How the state has fared: for `/healthz` and metrics.
#[derive(Debug, Clone, Default)]
pub struct StateHealth {
    /// Whether the last write committed (false from a write that failed for I/O until one
    /// succeeds).
    pub writable: bool,
    /// Why the last failed write failed (the I/O error, without paths).
    pub last_error: Option<String>,
    /// Writes that failed for I/O, since start.
    pub write_failures: u64,
    /// Times the database was reopened after an I/O error.
    pub reopens: u64,
    /// Whether the reserve kept for the state is held (`None`: none is kept).
    pub reserve_held: Option<bool>,
}

/// Where the state is kept: `--state` (or `COFFER_STATE`).
#[derive(Debug, Clone, PartialEq)]
pub enum StateLocation {
    /// The redb file of the data directory (the default).
    Embedded,
    /// An etcd cluster.
    Etcd(EtcdOptions),
}

impl StateLocation {
    /// Parses `--state`: `etcd://HOST:PORT[,HOST:PORT…]`, or empty for the embedded file.
    pub fn parse(value: &str) -> Result<StateLocation, String> {
        match value.trim() {
            "" => Ok(StateLocation::Embedded),
            url => parse_etcd_url(url).map(StateLocation::Etcd),
        }
    }
}

/// Objects a migration writes in one transaction: with the generation keys each adds, within
/// etcd's default bound of 128 operations.
const MIGRATION_BATCH: usize = 40;

/// The state, in whichever store keeps it.
pub struct State {
    store: Store,
}

enum Store {
    Embedded(embedded::Embedded),
    /// Boxed: the client is large.
    Etcd(Box<etcd::Etcd>),
}

impl State {
    /// Opens (or creates) the embedded state in `data_dir`, waiting for another process
    /// holding it.
    pub fn open(data_dir: &Path) -> Result<State, StateError> {
        Ok(State { store: Store::Embedded(embedded::Embedded::open(data_dir)?) })
    }

    /// Opens the state where `location` says: the embedded file of `data_dir`, or etcd.
    pub fn open_at(data_dir: &Path, location: &StateLocation) -> Result<State, StateError> {
        match location {
            StateLocation::Embedded => State::open(data_dir),
            StateLocation::Etcd(options) => Ok(State { store: Store::Etcd(Box::new(etcd::Etcd::connect(options)?)) }),
        }
    }

    /// Where it is: the state file, or the etcd endpoints.
    pub fn path(&self) -> &str {
        match &self.store {
            Store::Embedded(e) => e.path(),
            Store::Etcd(e) => e.path(),
        }
    }

    /// Copies every object of `self` into `to`, which must hold none, a few objects to a
    /// transaction (etcd bounds the operations of one); returns how many it copied. Secrets go
    /// as they are sealed: `to`'s processes need the master key `self`'s had.
    pub fn migrate_to(&self, to: &State) -> Result<usize, StateError> {
        let objects = self.read()?.export()?;
        let there = to.read()?.export()?.len();
        if there > 0 {
            return Err(StateError::NotEmpty { path: to.path().to_owned(), objects: there });
        }
        for batch in objects.chunks(MIGRATION_BATCH) {
            to.write(|t| {
                for (key, value) in batch {
                    t.import(key, value.clone())?;
                }
                Ok::<_, StateError>(())
            })?;
        }
        Ok(objects.len())
    }

    /// Whether several processes may share this state at once (etcd).
    pub fn is_shared(&self) -> bool {
        matches!(self.store, Store::Etcd(_))
    }

    /// This process's member ID in a shared state (`None`: the embedded state, which one
    /// process holds at a time).
    pub fn member(&self) -> Option<&str> {
        match &self.store {
            Store::Embedded(_) => None,
            Store::Etcd(e) => Some(e.member()),
        }
    }

    /// Resolves when this process's lease in a shared state is gone, after which it writes
    /// nothing more (never, for the embedded state).
    pub fn lost(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        match &self.store {
            Store::Embedded(_) => Box::pin(std::future::pending()),
            Store::Etcd(e) => Box::pin(e.lost()),
        }
    }

    /// Resolves when this process leads the processes sharing the state, which it then does
    /// as long as it lives (at once, for the embedded state).
    pub fn lead(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        match &self.store {
            Store::Embedded(_) => Box::pin(std::future::ready(())),
            Store::Etcd(e) => Box::pin(e.lead()),
        }
    }

    /// Keeps `bytes` of the disk for the embedded state: held in a file beside it while there
    /// is room, and given up to let a write through when the disk is full. Nothing for etcd,
    /// whose disk is its own.
    pub fn keep_reserve(&self, bytes: u64) {
        if let Store::Embedded(e) = &self.store {
            e.keep_reserve(bytes);
        }
    }

    /// How the state has fared.
    pub fn health(&self) -> StateHealth {
        match &self.store {
            Store::Embedded(e) => e.health(),
            Store::Etcd(e) => e.health(),
        }
    }

    /// A consistent snapshot for reading.
    pub fn read(&self) -> Result<Txn<'_>, StateError> {
        Ok(Txn {
            inner: match &self.store {
                Store::Embedded(e) => Inner::Embedded(e.read()?),
                Store::Etcd(e) => Inner::Etcd(e.transaction()),
            },
        })
    }

    /// Runs `f` in a write transaction, committed (durably) if it returns `Ok` and discarded
    /// otherwise. `f` may run more than once: after an I/O failure of the embedded file (with
    /// the state's reserve given up to make room), and in etcd whenever another writer changed
    /// what it read before it committed.
    pub fn write<R, E: From<StateError>>(&self, f: impl FnMut(&mut Txn<'_>) -> Result<R, E>) -> Result<R, E> {
        match &self.store {
            Store::Embedded(e) => e.write(f),
            Store::Etcd(e) => e.write(f),
        }
    }

    /// For a server's controllers: whether the state can be written now. The embedded state,
    /// while unwritable, tries a small write (so it reports writable again as soon as it is),
    /// and takes its reserve back while there is room.
    pub fn probe(&self) -> bool {
        match &self.store {
            Store::Embedded(e) => e.probe(),
            Store::Etcd(e) => e.probe(),
        }
    }
}

enum Inner<'a> {
    Embedded(embedded::Txn<'a>),
    Etcd(etcd::Txn<'a>),
}

/// A read or write transaction.
pub struct Txn<'a> {
    inner: Inner<'a>,
}

impl Txn<'_> {
    fn bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        match &self.inner {
            Inner::Embedded(t) => t.bytes(key),
            Inner::Etcd(t) => t.bytes(key),
        }
    }

    /// The objects of kind `kind` (and `namespace`, when given), by key.
    fn range(&self, kind: &str, namespace: Option<&str>) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        let (start, end) = match namespace {
            Some(ns) => (format!("{kind}\u{0}{ns}\u{0}"), format!("{kind}\u{0}{ns}\u{1}")),
            None => (format!("{kind}\u{0}"), format!("{kind}\u{1}")),
        };
        match &self.inner {
            Inner::Embedded(t) => t.range(&start, &end),
            Inner::Etcd(t) => t.range(&start, &end, kind, namespace),
        }
    }

    fn store_error(&self, message: String) -> StateError {
        match &self.inner {
            Inner::Embedded(t) => t.error(message),
            Inner::Etcd(t) => t.error(message),
        }
    }

    fn decode<T: Resource>(namespace: &str, name: &str, bytes: &[u8]) -> Result<T, StateError> {
        serde_json::from_slice(bytes).map_err(|e| StateError::Corrupt {
            kind: T::KIND,
            namespace: namespace.into(),
            name: name.into(),
            message: e.to_string(),
        })
    }

    /// The object of kind `T` named `name` in `namespace`.
    pub fn get<T: Resource>(&self, namespace: &str, name: &str) -> Result<Option<T>, StateError> {
        let bytes = self.bytes(&key(T::KIND, namespace, name))?;
        bytes.map(|b| Self::decode(namespace, name, &b)).transpose()
    }

    /// Every object of kind `T` in `namespace`, by name.
    pub fn list<T: Resource>(&self, namespace: &str) -> Result<Vec<T>, StateError> {
        self.decode_all::<T>(self.range(T::KIND, Some(namespace))?)
    }

    /// Every object of kind `T` in every namespace, by namespace and name: for the server's
    /// controllers, which act for all tenants.
    pub fn list_all<T: Resource>(&self) -> Result<Vec<T>, StateError> {
        self.decode_all::<T>(self.range(T::KIND, None)?)
    }

    fn decode_all<T: Resource>(&self, raw: Vec<(String, Vec<u8>)>) -> Result<Vec<T>, StateError> {
        raw.iter()
            .map(|(k, v)| {
                let mut parts = k.split('\u{0}').skip(1);
                let (namespace, name) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
                Self::decode(namespace, name, v)
            })
            .collect()
    }

    /// Creates or replaces `object`, at a new version for kinds that carry one (whatever
    /// version `object` said, it then says the one stored). Only in a write transaction.
    pub fn put<T: Resource>(&mut self, object: &mut T) -> Result<(), StateError> {
        let k = key(T::KIND, object.namespace(), object.name());
        if object.resource_version().is_some() {
            let version = self.next_version(&k)?.to_string();
            if let Some(stored) = object.resource_version_mut() {
                *stored = version;
            }
        }
        let bytes = serde_json::to_vec(object)
            .map_err(|e| self.store_error(format!("{} {}/{}: {e}", T::KIND, object.namespace(), object.name())))?;
        match &mut self.inner {
            Inner::Embedded(t) => t.put(&k, &bytes),
            Inner::Etcd(t) => t.put(k, bytes, T::KIND, object.namespace()),
        }
    }

    /// The version a write of object `key` now gives it: later than this store's versions
    /// before this transaction, and than the version the object has.
    fn next_version(&mut self, key: &str) -> Result<u64, StateError> {
        /// Only the version of a stored object.
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Versioned {
            metadata: VersionOnly,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default, rename_all = "camelCase")]
        struct VersionOnly {
            resource_version: String,
        }
        let stored = self.bytes(key)?.map_or(0, |bytes| {
            serde_json::from_slice::<Versioned>(&bytes).ok().and_then(|v| v.metadata.resource_version.parse::<u64>().ok()).unwrap_or(0)
        });
        let base = match &mut self.inner {
            Inner::Embedded(t) => t.next_version()?,
            Inner::Etcd(t) => t.next_version()?,
        };
        Ok(base.max(stored + 1))
    }

    /// Those of `objects` (read in this transaction) whose run no live process holds
    /// ([`Txn::hold`]) at this transaction's revision: all of them for the embedded state,
    /// whose one process holds nothing it did not start itself.
    pub fn unheld<T: Resource>(&self, objects: Vec<T>) -> Result<Vec<T>, StateError> {
        match &self.inner {
            Inner::Embedded(_) => Ok(objects),
            Inner::Etcd(t) => {
                let held = t.held()?;
                Ok(objects.into_iter().filter(|o| !held.contains(&key(T::KIND, o.namespace(), o.name()))).collect())
            }
        }
    }

    /// The objects of kind `T`, in every namespace, whose run may not have ended: in a shared
    /// state, those whose run was started ([`Txn::hold`]) and not ended ([`Txn::release`]),
    /// found without listing every object of the kind; in the embedded state, which marks no
    /// runs, every object of the kind.
    pub fn runs_to_check<T: Resource>(&self) -> Result<Vec<T>, StateError> {
        let Inner::Etcd(t) = &self.inner else { return self.list_all::<T>() };
        let mut found = Vec::new();
        for key in t.running(T::KIND)? {
            let mut parts = key.split('\u{0}').skip(1);
            let (namespace, name) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            // An object deleted while it ran has nothing left to set straight.
            found.extend(self.get::<T>(namespace, name)?);
        }
        Ok(found)
    }

    /// Every object as stored, by key: for moving a state to another store.
    pub fn export(&self) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        // Keys begin with an ASCII kind; U+00FF sorts after every one.
        let (start, end) = ("", "\u{ff}");
        match &self.inner {
            Inner::Embedded(t) => t.range(start, end),
            Inner::Etcd(t) => t.range(start, end, "", None),
        }
    }

    /// Stores `value` at `key`, both as [`Txn::export`] gave them.
    pub fn import(&mut self, key: &str, value: Vec<u8>) -> Result<(), StateError> {
        let mut parts = key.split('\u{0}');
        let (kind, namespace) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        if parts.next().is_none() {
            return Err(self.store_error(format!("{key:?} is not the key of an object")));
        }
        match &mut self.inner {
            Inner::Embedded(t) => t.put(key, &value),
            Inner::Etcd(t) => t.put(key.to_owned(), value, kind, namespace),
        }
    }

    /// Marks the run of object `name` of kind `T` as this process's while it lives: in a
    /// shared state, the others then know whether the run may still be going on.
    pub fn hold<T: Resource>(&mut self, namespace: &str, name: &str) -> Result<(), StateError> {
        match &mut self.inner {
            Inner::Embedded(_) => Ok(()),
            Inner::Etcd(t) => t.hold(key(T::KIND, namespace, name), true),
        }
    }

    /// Ends what [`Txn::hold`] marked.
    pub fn release<T: Resource>(&mut self, namespace: &str, name: &str) -> Result<(), StateError> {
        match &mut self.inner {
            Inner::Embedded(_) => Ok(()),
            Inner::Etcd(t) => t.hold(key(T::KIND, namespace, name), false),
        }
    }

    /// Deletes the object of kind `T` named `name`; whether it existed.
    pub fn delete<T: Resource>(&mut self, namespace: &str, name: &str) -> Result<bool, StateError> {
        let k = key(T::KIND, namespace, name);
        match &mut self.inner {
            Inner::Embedded(t) => t.remove(&k),
            Inner::Etcd(t) => t.remove(k, T::KIND, namespace),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_locations_parse() {
        assert_eq!(StateLocation::parse("").unwrap(), StateLocation::Embedded);
        assert!(matches!(StateLocation::parse("etcd://127.0.0.1:2379,127.0.0.1:2380").unwrap(), StateLocation::Etcd(_)));
        let err = StateLocation::parse("redis://x").unwrap_err();
        assert!(err.contains("redis://x") && err.contains("etcd://"), "{err}");
    }

    #[test]
    fn a_state_file_an_earlier_release_wrote_in_redb_v2_format_is_upgraded_at_open_with_every_object_kept() {
        use crate::model::Secret;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(embedded::STATE_FILE);
        let secret = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "team-a", "resourceVersion": "41", "creationTimestamp": "2026-01-02T03:04:05Z"},
            "sealedData": {"cloud": "sealed"},
        });
        // As Coffer on redb 2 left it: the objects table and the version counter, v2 format.
        {
            let db = redb2::Database::create(&file).unwrap();
            let txn = db.begin_write().unwrap();
            let objects: redb2::TableDefinition<&str, &[u8]> = redb2::TableDefinition::new("objects");
            let counters: redb2::TableDefinition<&str, u64> = redb2::TableDefinition::new("counters");
            txn.open_table(objects).unwrap().insert(key(Secret::KIND, "team-a", "creds").as_str(), serde_json::to_vec(&secret).unwrap().as_slice()).unwrap();
            txn.open_table(counters).unwrap().insert("version", 41).unwrap();
            txn.commit().unwrap();
        }
        assert!(matches!(redb::Database::open(&file), Err(redb::DatabaseError::UpgradeRequired(2))), "the file is not in the v2 format");

        let state = State::open(dir.path()).unwrap();
        let read: Secret = state.read().unwrap().get("team-a", "creds").unwrap().expect("the secret survived the upgrade");
        assert_eq!(serde_json::to_value(&read).unwrap(), secret);
        let mut changed = read.clone();
        state.write(|t| t.put(&mut changed)).unwrap();
        assert_eq!(changed.metadata.resource_version, "42", "versions go on from the upgraded file's counter");
        drop(state);
        let reopened = State::open(dir.path()).unwrap();
        let again: Secret = reopened.read().unwrap().get("team-a", "creds").unwrap().unwrap();
        assert_eq!(again.metadata.resource_version, "42");
    }
}
