//! Logs kept in the state: a failed backup leaves nothing in object storage, and a restore's
//! log may not reach it (a full disk, a dead endpoint); `logs` still says what happened.

use serde::{Deserialize, Serialize};

use super::run_log::RunLog;
use crate::state::{Resource, StateError, Txn};

/// The most of a log the state keeps (its last lines).
const LIMIT: usize = 256 << 10;

/// A run's log, kept in the state.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeptLog {
    namespace: String,
    /// `backup/<name>` or `restore/<name>`.
    name: String,
    /// The log's text (its last lines, within the limit).
    log: String,
}

impl Resource for KeptLog {
    const KIND: &'static str = "KeptLog";
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// Which run a kept log belongs to.
#[derive(Debug, Clone, Copy)]
pub enum Run<'a> {
    /// A backup, by name.
    Backup(&'a str),
    /// A restore, by name.
    Restore(&'a str),
}

impl Run<'_> {
    fn key(self) -> String {
        match self {
            Run::Backup(name) => format!("backup/{name}"),
            Run::Restore(name) => format!("restore/{name}"),
        }
    }
}

/// Keeps `log` for `run`.
pub fn keep(txn: &mut Txn<'_>, namespace: &str, run: Run<'_>, log: &RunLog) -> Result<(), StateError> {
    txn.put(&mut KeptLog { namespace: namespace.to_owned(), name: run.key(), log: log.tail(LIMIT) })
}

/// The log kept for `run`, if any.
pub fn kept(txn: &Txn<'_>, namespace: &str, run: Run<'_>) -> Result<Option<Vec<u8>>, StateError> {
    Ok(txn.get::<KeptLog>(namespace, &run.key())?.map(|k| k.log.into_bytes()))
}

/// Forgets the log kept for `run`.
pub fn forget(txn: &mut Txn<'_>, namespace: &str, run: Run<'_>) -> Result<(), StateError> {
    txn.delete::<KeptLog>(namespace, &run.key()).map(drop)
}
