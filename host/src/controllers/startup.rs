//! What a process that opens the state does first: backups and restores left `InProgress`
//! are marked `Failed`, since nothing is running them any more. The state is held by one
//! process at a time (the embedded database is locked while open), so whatever is
//! `InProgress` when it is opened was left by a process that ended before it finished:
//! a crashed server, or a command killed mid-run.

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
}

impl Opener {
    fn reason(self, kind: &str) -> String {
        match self {
            Opener::Server => format!("found a {kind} with status \"InProgress\" during the server starting, mark it as \"Failed\""),
            Opener::Command => format!(
                "found a {kind} with status \"InProgress\" when the state was next opened: the process running it ended before it finished, mark it as \"Failed\""
            ),
        }
    }
}

/// Marks every `InProgress` backup and restore (in every namespace) `Failed`, as `opener`
/// words it; returns how many of each.
pub fn fail_interrupted(coffer: &Coffer, opener: Opener) -> Result<(usize, usize), BackupError> {
    coffer.state.write(|txn| {
        let mut backups = 0;
        for mut b in txn.list_all::<Backup>()? {
            if b.status.phase == Some(Phase::InProgress) {
                b.status.phase = Some(Phase::Failed);
                b.status.failure_reason = opener.reason("backup");
                b.status.completion_timestamp = Some(now());
                txn.put(&b)?;
                backups += 1;
            }
        }
        let mut restores = 0;
        for mut r in txn.list_all::<Restore>()? {
            if r.status.phase == Some(Phase::InProgress) {
                r.status.phase = Some(Phase::Failed);
                r.status.failure_reason = opener.reason("restore");
                r.status.completion_timestamp = Some(now());
                txn.put(&r)?;
                restores += 1;
            }
        }
        Ok::<_, BackupError>((backups, restores))
    })
}
