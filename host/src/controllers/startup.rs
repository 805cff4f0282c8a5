//! What a starting server does first: backups and restores a crash left `InProgress` are
//! marked `Failed`, in Velero's words, since nothing is running them any more.

use crate::backup::BackupError;
use crate::coffer::Coffer;
use crate::model::{Backup, Phase, Restore, now};

/// Marks every `InProgress` backup and restore (in every namespace) `Failed`; returns how
/// many of each.
pub fn fail_interrupted(coffer: &Coffer) -> Result<(usize, usize), BackupError> {
    coffer.state.write(|txn| {
        let mut backups = 0;
        for mut b in txn.list_all::<Backup>()? {
            if b.status.phase == Some(Phase::InProgress) {
                b.status.phase = Some(Phase::Failed);
                b.status.failure_reason = "found a backup with status \"InProgress\" during the server starting, mark it as \"Failed\"".into();
                b.status.completion_timestamp = Some(now());
                txn.put(&b)?;
                backups += 1;
            }
        }
        let mut restores = 0;
        for mut r in txn.list_all::<Restore>()? {
            if r.status.phase == Some(Phase::InProgress) {
                r.status.phase = Some(Phase::Failed);
                r.status.failure_reason = "found a restore with status \"InProgress\" during the server starting, mark it as \"Failed\"".into();
                r.status.completion_timestamp = Some(now());
                txn.put(&r)?;
                restores += 1;
            }
        }
        Ok::<_, BackupError>((backups, restores))
    })
}
