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
use crate::model::{Backup, Phase, Restore, now};

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

/// Sets every `InProgress` backup and restore (in every namespace) that no live process
/// holds straight, as `opener` words it; returns how many of each were found.
pub async fn recover_interrupted(coffer: &Coffer, opener: Opener) -> Result<(usize, usize), BackupError> {
    let (backups, restores) = {
        let txn = coffer.state.read()?;
        let running = |phase: Option<Phase>| phase == Some(Phase::InProgress);
        let backups: Vec<Backup> = txn.list_all::<Backup>()?.into_iter().filter(|b| running(b.status.phase)).collect();
        let restores: Vec<Restore> = txn.list_all::<Restore>()?.into_iter().filter(|r| running(r.status.phase)).collect();
        (backups, restores)
    };
    let (backups, restores) = (coffer.state.unheld(backups)?, coffer.state.unheld(restores)?);
    let reason = opener.reason("backup");
    for mut backup in backups.iter().cloned() {
        crate::backup::recover_backup(coffer, &mut backup, &reason).await;
        coffer.state.write(|txn| txn.put(&mut backup))?;
    }
    let reason = opener.reason("restore");
    coffer.state.write(|txn| {
        for mut r in restores.iter().cloned() {
            r.status.phase = Some(Phase::Failed);
            r.status.failure_reason = reason.clone();
            r.status.completion_timestamp = Some(now());
            txn.put(&mut r)?;
        }
        Ok::<_, BackupError>(())
    })?;
    Ok((backups.len(), restores.len()))
}
