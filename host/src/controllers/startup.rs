//! What a process that opens the state does first: backups and restores left `InProgress`
//! are set straight, since nothing is running them any more. The embedded state is held by
//! one process at a time (the database is locked while open), so whatever is `InProgress`
//! when it is opened was left by a process that ended before it finished: a crashed server,
//! or a command killed mid-run. In a shared state, a run is left when the process holding it
//! is gone (its lease expired); the leading server looks for those all along. A backup that
//! had finished uploading is recorded as its location has it; any other is `Failed` and its
//! partial objects removed.

use crate::backup::BackupError;
use crate::coffer::Coffer;
use crate::model::{Backup, ObjectMeta, Phase, Restore, now};
use crate::state::Resource;

/// Who found the interrupted runs, which words their failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    /// A starting server (Velero's words).
    Server,
    /// A command run without a server.
    Command,
    /// The server leading the others on a shared state.
    Leader,
}

impl Opener {
    fn reason(self, kind: &str) -> String {
        match self {
            Opener::Server => format!("found a {kind} with status \"InProgress\" during the server starting, mark it as \"Failed\""),
            Opener::Command => format!(
                "found a {kind} with status \"InProgress\" when the state was next opened: the process running it ended before it finished, mark it as \"Failed\""
            ),
            Opener::Leader => format!(
                "found a {kind} with status \"InProgress\" that no live process runs any more (the lease of the process running it in the shared state expired), mark it as \"Failed\""
            ),
        }
    }
}

/// Which backups and restores a look for interrupted runs reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// Every one.
    All,
    /// In a shared state, those marked running when they started
    /// ([`crate::state::Txn::runs_to_check`]): what the leader reads every few seconds, without
    /// listing every backup. It reads all of them once, when it starts leading, for runs
    /// recorded before there were marks (a state moved in with `state migrate`).
    Marked,
}

/// Sets every `InProgress` backup and restore (in every namespace, of those `scan` reads)
/// that no live process holds straight, as `opener` words it; returns how many of each were
/// set straight. Runs are found running and unheld at one moment, and each is written only if
/// it is still as found then: a run that ended meanwhile is left as it ended.
pub async fn recover_interrupted(coffer: &Coffer, opener: Opener, scan: Scan) -> Result<(usize, usize), BackupError> {
    let (backups, restores) = {
        let txn = coffer.state.read()?;
        let running = |phase: Option<Phase>| phase == Some(Phase::InProgress);
        let (backups, restores) = match scan {
            Scan::All => (txn.list_all::<Backup>()?, txn.list_all::<Restore>()?),
            Scan::Marked => (txn.runs_to_check::<Backup>()?, txn.runs_to_check::<Restore>()?),
        };
        let backups: Vec<Backup> = backups.into_iter().filter(|b| running(b.status.phase)).collect();
        let restores: Vec<Restore> = restores.into_iter().filter(|r| running(r.status.phase)).collect();
        (txn.unheld(backups)?, txn.unheld(restores)?)
    };
    let reason = opener.reason("backup");
    let mut recovered = (0, 0);
    for found in backups {
        let mut backup = found.clone();
        crate::backup::recover_backup(coffer, &mut backup, &reason).await;
        if replace_unchanged(coffer, &found.metadata.meta, &mut backup)? {
            recovered.0 += 1;
        }
    }
    let reason = opener.reason("restore");
    for found in restores {
        let mut restore = found.clone();
        restore.status.phase = Some(Phase::Failed);
        restore.status.failure_reason = reason.clone();
        restore.status.completion_timestamp = Some(now());
        if replace_unchanged(coffer, &found.metadata.meta, &mut restore)? {
            recovered.1 += 1;
        }
    }
    Ok(recovered)
}

/// Stores `object` in place of the one `found` describes, if that is still stored at the
/// version found, and ends its run's mark; whether it did.
fn replace_unchanged<T: Resource>(coffer: &Coffer, found: &ObjectMeta, object: &mut T) -> Result<bool, BackupError> {
    coffer.state.write(|txn| {
        let stored = txn.get::<T>(&found.namespace, &found.name)?;
        if stored.as_ref().and_then(Resource::resource_version) != Some(found.resource_version.as_str()) {
            return Ok(false);
        }
        txn.put(object)?;
        txn.release::<T>(&found.namespace, &found.name)?;
        Ok(true)
    })
}
