//! The embedded state: one redb file under the data directory. Every command's changes commit
//! in one transaction (fsynced), so a killed process leaves either all of a change or none.

use std::path::Path;
use std::time::{Duration, Instant};

use redb::{Database, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");

/// The file name of the state under the data directory.
pub const STATE_FILE: &str = "coffer.redb";

/// How long to wait for another `coffer` process to release the state file.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// A problem with the state file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StateError {
    /// The database failed.
    #[error("state database {path}: {message}")]
    Database {
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
}

/// An object kept in the state, addressed by kind, namespace and name.
pub trait Resource: Serialize + DeserializeOwned {
    /// The kind, e.g. `BackupStorageLocation`.
    const KIND: &'static str;
    /// The namespace (tenant) it belongs to.
    fn namespace(&self) -> &str;
    /// Its name, unique per kind and namespace.
    fn name(&self) -> &str;
}

fn key(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}\u{0}{namespace}\u{0}{name}")
}

/// Creates `dir` and its missing parents owner-only (0700); an existing directory is left
/// as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// The embedded state.
pub struct State {
    db: Database,
    path: String,
}

impl State {
    /// Opens (or creates) the state in `data_dir`, waiting for another process holding it.
    pub fn open(data_dir: &Path) -> Result<State, StateError> {
        let file = data_dir.join(STATE_FILE);
        let path = file.display().to_string();
        let err = |e: &dyn std::fmt::Display| StateError::Database { path: path.clone(), message: e.to_string() };
        create_private_dir(data_dir).map_err(|e| err(&e))?;
        // Owner-only from the first byte: created here before redb opens it.
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(&file).map_err(|e| err(&e))?;
        }
        let started = Instant::now();
        let db = loop {
            match Database::create(&file) {
                Ok(db) => break db,
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(err(&e)),
            }
        };
        let txn = db.begin_write().map_err(|e| err(&e))?;
        txn.open_table(OBJECTS).map_err(|e| err(&e))?;
        txn.commit().map_err(|e| err(&e))?;
        Ok(State { db, path })
    }

    fn err(&self, e: impl std::fmt::Display) -> StateError {
        StateError::Database { path: self.path.clone(), message: e.to_string() }
    }

    /// A consistent snapshot for reading.
    pub fn read(&self) -> Result<Txn<'_>, StateError> {
        Ok(Txn { state: self, inner: Inner::Read(self.db.begin_read().map_err(|e| self.err(e))?) })
    }

    /// Runs `f` in a write transaction, committed (durably) if it returns `Ok` and discarded
    /// otherwise.
    pub fn write<R, E: From<StateError>>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<R, E>) -> Result<R, E> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let mut txn = Txn { state: self, inner: Inner::Write(Box::new(txn)) };
        let out = f(&mut txn)?;
        match txn.inner {
            Inner::Write(w) => w.commit().map_err(|e| self.err(e))?,
            Inner::Read(_) => unreachable!("built as a write transaction"),
        }
        Ok(out)
    }
}

enum Inner {
    Read(redb::ReadTransaction),
    Write(Box<redb::WriteTransaction>),
}

/// A read or write transaction.
pub struct Txn<'a> {
    state: &'a State,
    inner: Inner,
}

impl Txn<'_> {
    fn decode<T: Resource>(&self, namespace: &str, name: &str, bytes: &[u8]) -> Result<T, StateError> {
        serde_json::from_slice(bytes).map_err(|e| StateError::Corrupt {
            kind: T::KIND,
            namespace: namespace.into(),
            name: name.into(),
            message: e.to_string(),
        })
    }

    /// The object of kind `T` named `name` in `namespace`.
    pub fn get<T: Resource>(&self, namespace: &str, name: &str) -> Result<Option<T>, StateError> {
        let k = key(T::KIND, namespace, name);
        let bytes = match &self.inner {
            Inner::Read(r) => {
                let table = r.open_table(OBJECTS).map_err(|e| self.state.err(e))?;
                table.get(k.as_str()).map_err(|e| self.state.err(e))?.map(|v| v.value().to_vec())
            }
            Inner::Write(w) => {
                let table = w.open_table(OBJECTS).map_err(|e| self.state.err(e))?;
                table.get(k.as_str()).map_err(|e| self.state.err(e))?.map(|v| v.value().to_vec())
            }
        };
        bytes.map(|b| self.decode(namespace, name, &b)).transpose()
    }

    /// Every object of kind `T` in `namespace`, by name.
    pub fn list<T: Resource>(&self, namespace: &str) -> Result<Vec<T>, StateError> {
        let start = key(T::KIND, namespace, "");
        let end = format!("{}\u{1}", &start[..start.len() - 1]);
        self.range(&start, &end)
    }

    /// Every object of kind `T` in every namespace, by namespace and name: for the server's
    /// controllers, which act for all tenants.
    pub fn list_all<T: Resource>(&self) -> Result<Vec<T>, StateError> {
        self.range(&format!("{}\u{0}", T::KIND), &format!("{}\u{1}", T::KIND))
    }

    fn range<T: Resource>(&self, start: &str, end: &str) -> Result<Vec<T>, StateError> {
        let mut raw: Vec<(String, Vec<u8>)> = Vec::new();
        let mut collect = |table: &dyn ReadableRange| table.range_into(start, end, &mut raw);
        match &self.inner {
            Inner::Read(r) => collect(&r.open_table(OBJECTS).map_err(|e| self.state.err(e))?),
            Inner::Write(w) => collect(&w.open_table(OBJECTS).map_err(|e| self.state.err(e))?),
        }
        .map_err(|e| self.state.err(e))?;
        raw.iter()
            .map(|(k, v)| {
                let mut parts = k.split('\u{0}').skip(1);
                let (namespace, name) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
                self.decode(namespace, name, v)
            })
            .collect()
    }

    /// Creates or replaces `object`. Only in a write transaction.
    pub fn put<T: Resource>(&mut self, object: &T) -> Result<(), StateError> {
        let k = key(T::KIND, object.namespace(), object.name());
        let bytes = serde_json::to_vec(object).map_err(|e| self.state.err(e))?;
        let Inner::Write(w) = &self.inner else { return Err(self.state.err("write in a read transaction")) };
        let mut table = w.open_table(OBJECTS).map_err(|e| self.state.err(e))?;
        table.insert(k.as_str(), bytes.as_slice()).map_err(|e| self.state.err(e))?;
        Ok(())
    }

    /// Deletes the object of kind `T` named `name`; whether it existed.
    pub fn delete<T: Resource>(&mut self, namespace: &str, name: &str) -> Result<bool, StateError> {
        let k = key(T::KIND, namespace, name);
        let Inner::Write(w) = &self.inner else { return Err(self.state.err("write in a read transaction")) };
        let mut table = w.open_table(OBJECTS).map_err(|e| self.state.err(e))?;
        let existed = table.remove(k.as_str()).map_err(|e| self.state.err(e))?.is_some();
        Ok(existed)
    }
}

/// Range reads over either kind of table handle.
trait ReadableRange {
    fn range_into(&self, start: &str, end: &str, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), redb::StorageError>;
}

impl<T: ReadableTable<&'static str, &'static [u8]>> ReadableRange for T {
    fn range_into(&self, start: &str, end: &str, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), redb::StorageError> {
        for entry in self.range(start..end)? {
            let (k, v) = entry?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Thing {
        ns: String,
        name: String,
        n: u32,
    }

    impl Resource for Thing {
        const KIND: &'static str = "Thing";
        fn namespace(&self) -> &str {
            &self.ns
        }
        fn name(&self) -> &str {
            &self.name
        }
    }

    fn thing(ns: &str, name: &str, n: u32) -> Thing {
        Thing { ns: ns.into(), name: name.into(), n }
    }

    #[test]
    fn namespaces_are_separate_and_failed_writes_roll_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        state.write(|t| {
            t.put(&thing("a", "x", 1))?;
            t.put(&thing("a", "y", 2))?;
            t.put(&thing("ab", "z", 3))?;
            Ok::<_, StateError>(())
        })
        .unwrap();
        let r = state.read().unwrap();
        assert_eq!(r.list::<Thing>("a").unwrap(), [thing("a", "x", 1), thing("a", "y", 2)]);
        assert_eq!(r.get::<Thing>("ab", "z").unwrap(), Some(thing("ab", "z", 3)));
        assert_eq!(r.get::<Thing>("a", "z").unwrap(), None);
        assert_eq!(r.list_all::<Thing>().unwrap(), [thing("a", "x", 1), thing("a", "y", 2), thing("ab", "z", 3)]);
        drop(r);
        let failed: Result<(), StateError> = state.write(|t| {
            t.put(&thing("a", "w", 9))?;
            Err(StateError::Database { path: String::new(), message: "boom".into() })
        });
        assert!(failed.is_err());
        assert_eq!(state.read().unwrap().get::<Thing>("a", "w").unwrap(), None);
    }
}
