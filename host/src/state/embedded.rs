//! The embedded state: one redb file under the data directory. Every command's changes commit
//! in one transaction (fsynced), so a killed process leaves either all of a change or none.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{StateError, StateHealth, create_private_dir};
use crate::disk::Ballast;

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
/// When the state was last written by [`Embedded::probe`].
const HEALTH: TableDefinition<&str, u64> = TableDefinition::new("health");
/// Counters: [`VERSION`].
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// The version the last write transaction gave the objects it wrote.
const VERSION: &str = "version";

/// The file name of the state under the data directory.
pub const STATE_FILE: &str = "coffer.redb";

/// The file holding the state's reserve, beside it.
pub const RESERVE_FILE: &str = "coffer.redb.reserve";

/// How long to wait for another `coffer` process to release the state file.
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// How long a reopen waits for transactions still running on the closed database.
const REOPEN_WAIT: Duration = Duration::from_secs(5);

/// The embedded state. A write that fails for I/O (a full disk) closes the database; the next
/// call reopens it (redb refuses every call after one I/O error until then), so the state
/// recovers by itself once space returns.
pub struct Embedded {
    file: PathBuf,
    path: String,
    db: RwLock<Option<Arc<Database>>>,
    health: Mutex<StateHealth>,
    ballast: OnceLock<Ballast>,
}

/// Whether a redb error is an I/O failure (after which the database must be reopened).
fn is_io(e: impl Into<redb::Error>) -> Option<String> {
    match e.into() {
        redb::Error::Io(e) => Some(e.to_string()),
        redb::Error::PreviousIo => Some("an earlier write failed".into()),
        _ => None,
    }
}

/// What a failed storage call was.
enum Failure {
    /// The disk: the database must be reopened.
    Io(String),
    /// Anything else.
    Other(String),
}

impl Failure {
    fn of<E: Into<redb::Error> + std::fmt::Display>(e: E) -> Failure {
        let text = e.to_string();
        is_io(e).map_or(Failure::Other(text), Failure::Io)
    }
}

fn open_database(file: &Path, wait: Duration) -> Result<Database, redb::DatabaseError> {
    let started = Instant::now();
    loop {
        match Database::create(file) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) if started.elapsed() < wait => std::thread::sleep(Duration::from_millis(20)),
            other => return other,
        }
    }
}

/// Rewrites a state file of redb's v2 format (written by Coffer releases on redb 2) in the v3
/// format redb 4 reads, in place and in redb's own two-phase commits.
fn upgrade_v2(file: &Path, wait: Duration) -> Result<(), String> {
    let started = Instant::now();
    let mut db = loop {
        match redb2::Database::create(file) {
            Err(redb2::DatabaseError::DatabaseAlreadyOpen) if started.elapsed() < wait => std::thread::sleep(Duration::from_millis(20)),
            other => break other.map_err(|e| e.to_string())?,
        }
    };
    db.upgrade().map_err(|e| format!("upgrading it from redb's v2 file format: {e}"))?;
    Ok(())
}

/// Opens the state file, upgrading it first if an earlier release wrote it in redb's v2 format.
fn open_or_upgrade(file: &Path, wait: Duration) -> Result<Database, String> {
    match open_database(file, wait) {
        Err(redb::DatabaseError::UpgradeRequired(2)) => {
            upgrade_v2(file, wait)?;
            tracing::info!(path = %file.display(), "upgraded the state file to redb's v3 file format");
            open_database(file, wait).map_err(|e| e.to_string())
        }
        other => other.map_err(|e| e.to_string()),
    }
}

impl Embedded {
    /// Opens (or creates) the state in `data_dir`, waiting for another process holding it.
    pub fn open(data_dir: &Path) -> Result<Embedded, StateError> {
        let file = data_dir.join(STATE_FILE);
        let path = file.display().to_string();
        let err = |e: &dyn std::fmt::Display| StateError::Database { path: path.clone(), message: e.to_string() };
        create_private_dir(data_dir).map_err(|e| err(&e))?;
        // Owner-only from the first byte: created here before redb opens it.
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(&file).map_err(|e| err(&e))?;
        }
        let db = open_or_upgrade(&file, LOCK_WAIT).map_err(|e| err(&e))?;
        let txn = db.begin_write().map_err(|e| err(&e))?;
        txn.open_table(OBJECTS).map_err(|e| err(&e))?;
        txn.commit().map_err(|e| err(&e))?;
        let health = StateHealth { writable: true, ..StateHealth::default() };
        Ok(Embedded { file, path, db: RwLock::new(Some(Arc::new(db))), health: Mutex::new(health), ballast: OnceLock::new() })
    }

    /// Keeps `bytes` of the disk for the state: held in a file beside it while there is room,
    /// and given up to let a write through when the disk is full.
    pub fn keep_reserve(&self, bytes: u64) {
        let path = self.file.with_file_name(RESERVE_FILE);
        if bytes == 0 {
            let _ = std::fs::remove_file(&path);
            return;
        }
        let _ = self.ballast.set(Ballast::new(path, bytes));
    }

    /// The state file.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn err(&self, e: impl std::fmt::Display) -> StateError {
        StateError::Database { path: self.path.clone(), message: e.to_string() }
    }

    fn health_mut(&self) -> std::sync::MutexGuard<'_, StateHealth> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How the state has fared.
    pub fn health(&self) -> StateHealth {
        let mut health = self.health_mut().clone();
        health.reserve_held = self.ballast.get().map(Ballast::is_held);
        health
    }

    /// The open database, reopened if an I/O error closed it.
    fn database(&self) -> Result<Arc<Database>, StateError> {
        if let Some(db) = self.db.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            return Ok(db.clone());
        }
        let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
        if let Some(db) = slot.as_ref() {
            return Ok(db.clone());
        }
        // Transactions still running on the closed database hold its lock for a moment.
        let db = Arc::new(open_database(&self.file, REOPEN_WAIT).map_err(|e| self.unwritable(e))?);
        self.health_mut().reopens += 1;
        tracing::info!(path = %self.path, "reopened the state database");
        *slot = Some(db.clone());
        Ok(db)
    }

    /// Closes `db` after an I/O error, so that the next call reopens it.
    fn lost(&self, db: &Arc<Database>, message: &str, writing: bool) {
        let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|open| Arc::ptr_eq(open, db)) {
            *slot = None;
        }
        drop(slot);
        if writing {
            let mut health = self.health_mut();
            health.writable = false;
            health.write_failures += 1;
            health.last_error = Some(message.to_owned());
        }
        tracing::error!(path = %self.path, "the state database failed: {message}; reopening it");
    }

    fn unwritable(&self, e: impl std::fmt::Display) -> StateError {
        StateError::Unwritable { path: self.path.clone(), message: e.to_string() }
    }

    /// A consistent snapshot for reading.
    pub fn read(&self) -> Result<Txn<'_>, StateError> {
        let db = self.database()?;
        match db.begin_read() {
            Ok(txn) => Ok(Txn { state: self, db, inner: Inner::Read(txn), io: Mutex::new(None), version: None }),
            Err(e) => match Failure::of(e) {
                Failure::Io(message) => {
                    self.lost(&db, &message, false);
                    let db = self.database()?;
                    let txn = db.begin_read().map_err(|e| self.err(e))?;
                    Ok(Txn { state: self, db, inner: Inner::Read(txn), io: Mutex::new(None), version: None })
                }
                Failure::Other(message) => Err(self.err(message)),
            },
        }
    }

    /// Runs `f` in a write transaction, committed (durably) if it returns `Ok` and discarded
    /// otherwise. A write that fails for I/O is retried once on the reopened database, with the
    /// state's reserve given up to make room.
    pub fn write<R, E: From<StateError>>(&self, mut f: impl FnMut(&mut super::Txn<'_>) -> Result<R, E>) -> Result<R, E> {
        if let Ok(out) = self.attempt(&mut f)? {
            return Ok(out);
        }
        if self.ballast.get().is_some_and(Ballast::release) {
            tracing::warn!(path = %self.path, "gave up the state's reserve to write the state: the disk is full");
        }
        self.attempt(&mut f)?.map_err(|message| self.unwritable(message).into())
    }

    /// One try of a write: `Err(message)` when it failed for I/O (and the database was closed).
    fn attempt<R, E: From<StateError>>(&self, f: &mut impl FnMut(&mut super::Txn<'_>) -> Result<R, E>) -> Result<Result<R, String>, E> {
        let db = self.database()?;
        let txn = match db.begin_write() {
            Ok(txn) => txn,
            Err(e) => {
                return match Failure::of(e) {
                    Failure::Io(message) => {
                        self.lost(&db, &message, true);
                        Ok(Err(message))
                    }
                    Failure::Other(message) => Err(self.err(message).into()),
                };
            }
        };
        let txn = Txn { state: self, db: db.clone(), inner: Inner::Write(Box::new(txn)), io: Mutex::new(None), version: None };
        let mut shared = super::Txn { inner: super::Inner::Embedded(txn) };
        let out = f(&mut shared);
        let super::Inner::Embedded(mut txn) = shared.inner else { unreachable!("built as an embedded transaction") };
        if let Some(message) = txn.io.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            self.lost(&db, &message, true);
            return Ok(Err(message));
        }
        let out = out?;
        let Inner::Write(w) = txn.inner else { unreachable!("built as a write transaction") };
        match w.commit() {
            Ok(()) => {
                let mut health = self.health_mut();
                if !health.writable {
                    health.writable = true;
                    tracing::info!(path = %self.path, "the state can be written again");
                }
                Ok(Ok(out))
            }
            Err(e) => match Failure::of(e) {
                Failure::Io(message) => {
                    self.lost(&db, &message, true);
                    Ok(Err(message))
                }
                Failure::Other(message) => Err(self.err(message).into()),
            },
        }
    }

    /// For a server's controllers: while the state is unwritable, tries a small write (so it
    /// reports writable again as soon as it is); while there is room, takes the state's reserve
    /// back. Returns whether the state is writable.
    pub fn probe(&self) -> bool {
        if !self.health_mut().writable {
            let probe = self.write(|txn| {
                let super::Inner::Embedded(txn) = &txn.inner else { unreachable!("an embedded transaction") };
                let Inner::Write(w) = &txn.inner else { unreachable!("a write transaction") };
                let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
                let written = w.open_table(HEALTH).and_then(|mut t| t.insert("probe", stamp).map(drop).map_err(Into::into));
                written.map_err(|e| txn.fail(e))
            });
            if probe.is_err() {
                return false;
            }
        }
        if let Some(ballast) = self.ballast.get() {
            ballast.top_up();
        }
        true
    }
}

enum Inner {
    Read(redb::ReadTransaction),
    Write(Box<redb::WriteTransaction>),
}

/// A read or write transaction.
pub struct Txn<'a> {
    state: &'a Embedded,
    /// The database it runs on, so that an I/O error closes that one.
    db: Arc<Database>,
    inner: Inner,
    /// The I/O error a call in it met, if any.
    io: Mutex<Option<String>>,
    /// The version it gives the objects it writes, once it has written one.
    version: Option<u64>,
}

impl Txn<'_> {
    /// Words a storage failure, noting an I/O one so that the database is reopened.
    fn fail<E: Into<redb::Error> + std::fmt::Display>(&self, e: E) -> StateError {
        let text = e.to_string();
        match is_io(e) {
            Some(message) => {
                if matches!(self.inner, Inner::Read(_)) {
                    self.state.lost(&self.db, &message, false);
                }
                *self.io.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
                self.state.unwritable(text)
            }
            None => self.state.err(text),
        }
    }

    /// Says `message` as this store's error.
    pub(super) fn error(&self, message: String) -> StateError {
        self.state.err(message)
    }

    /// Runs `f` on the objects table, for reading.
    fn read_table<R>(&self, f: impl FnOnce(&dyn ReadObjects) -> Result<R, redb::StorageError>) -> Result<R, StateError> {
        match &self.inner {
            Inner::Read(r) => {
                let table = r.open_table(OBJECTS).map_err(|e| self.fail(e))?;
                f(&table).map_err(|e| self.fail(e))
            }
            Inner::Write(w) => {
                let table = w.open_table(OBJECTS).map_err(|e| self.fail(e))?;
                f(&table).map_err(|e| self.fail(e))
            }
        }
    }

    /// Runs `f` on the objects table, for writing. Only in a write transaction.
    fn write_table<R>(&self, f: impl FnOnce(&mut redb::Table<'_, &'static str, &'static [u8]>) -> Result<R, redb::StorageError>) -> Result<R, StateError> {
        let Inner::Write(w) = &self.inner else { return Err(self.state.err("write in a read transaction")) };
        let mut table = w.open_table(OBJECTS).map_err(|e| self.fail(e))?;
        f(&mut table).map_err(|e| self.fail(e))
    }

    /// The value at `key`.
    pub(super) fn bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.read_table(|t| t.bytes(key))
    }

    /// The keys and values from `start` to `end` (exclusive), by key.
    pub(super) fn range(&self, start: &str, end: &str) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        self.read_table(|t| t.range_of(start, end))
    }

    /// Sets `key` to `value`.
    pub(super) fn put(&mut self, key: &str, value: &[u8]) -> Result<(), StateError> {
        self.write_table(|t| t.insert(key, value).map(drop))
    }

    /// The version this transaction gives the objects it writes: one after the last
    /// transaction's (write transactions of the file take turns).
    pub(super) fn next_version(&mut self) -> Result<u64, StateError> {
        if let Some(version) = self.version {
            return Ok(version);
        }
        let Inner::Write(w) = &self.inner else { return Err(self.state.err("write in a read transaction")) };
        let mut counters = w.open_table(COUNTERS).map_err(|e| self.fail(e))?;
        let counted = counters.get(VERSION).map(|v| v.map_or(0, |v| v.value()) + 1);
        let version = counted.and_then(|version| counters.insert(VERSION, version).map(|_| version)).map_err(|e| self.fail(e))?;
        drop(counters);
        self.version = Some(version);
        Ok(version)
    }

    /// Removes `key`; whether it was there.
    pub(super) fn remove(&mut self, key: &str) -> Result<bool, StateError> {
        self.write_table(|t| Ok(t.remove(key)?.is_some()))
    }
}

/// Reads over either kind of table handle.
trait ReadObjects {
    fn bytes(&self, key: &str) -> Result<Option<Vec<u8>>, redb::StorageError>;
    fn range_of(&self, start: &str, end: &str) -> Result<Vec<(String, Vec<u8>)>, redb::StorageError>;
}

impl<T: ReadableTable<&'static str, &'static [u8]>> ReadObjects for T {
    fn bytes(&self, key: &str) -> Result<Option<Vec<u8>>, redb::StorageError> {
        Ok(self.get(key)?.map(|v| v.value().to_vec()))
    }

    fn range_of(&self, start: &str, end: &str) -> Result<Vec<(String, Vec<u8>)>, redb::StorageError> {
        let mut out = Vec::new();
        for entry in self.range(start..end)? {
            let (k, v) = entry?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }
}
