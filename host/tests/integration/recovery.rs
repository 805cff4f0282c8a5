//! A process that dies in the middle of a backup leaves it `InProgress` in the state; the
//! next process to open the state sets it straight against its location: complete in the
//! bucket (the crash came after `velero-backup.json`) → as the bucket has it; partial →
//! `Failed`, with the partial objects removed.

use std::collections::BTreeMap;

use coffer::backup::{self, BackupRequest};
use coffer::coffer::Coffer;
use coffer::controllers::{Opener, recover_interrupted};
use coffer::locations;
use coffer::model::{Backup, BackupSpec, Phase};
use coffer::sandbox::Limits;

use crate::common::{dir, filesystem_bsl};

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_backups_are_reconciled_with_their_location() {
    let tmp = tempfile::tempdir().unwrap();
    let coffer = Coffer::open(&tmp.path().join("data"), Limits::default()).await.unwrap();
    let store = dir(tmp.path(), "store");
    let src = dir(tmp.path(), "src");
    std::fs::write(src.join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n").unwrap();
    locations::create_backup_storage_location(&coffer, "ns", filesystem_bsl("default", &store)).await.unwrap();
    for name in ["uploaded", "partial"] {
        let request = BackupRequest {
            name: name.into(),
            source: src.clone(),
            spec: BackupSpec::default(),
            labels: BTreeMap::new(),
            default_snapshot_locations: BTreeMap::new(),
        };
        let done = backup::create_backup(&coffer, "ns", request, &mut |_| {}).await.unwrap();
        assert_eq!(done.status.phase, Some(Phase::Completed));
        // The crash: the state still says InProgress.
        let mut record = done.clone();
        record.status.phase = Some(Phase::InProgress);
        record.status.completion_timestamp = None;
        coffer.state.write(|txn| txn.put(&record)).unwrap();
    }
    // "partial" died before its last upload.
    std::fs::remove_file(store.join("b/backups/partial/velero-backup.json")).unwrap();
    assert!(store.join("b/backups/partial/partial.tar.gz").exists());

    let (backups, restores) = recover_interrupted(&coffer, Opener::Command).await.unwrap();
    assert_eq!((backups, restores), (2, 0));
    let get = |name: &str| coffer.state.read().unwrap().get::<Backup>("ns", name).unwrap().unwrap();
    let uploaded = get("uploaded");
    assert_eq!(uploaded.status.phase, Some(Phase::Completed), "{:?}", uploaded.status);
    assert!(uploaded.status.completion_timestamp.is_some());
    let partial = get("partial");
    assert_eq!(partial.status.phase, Some(Phase::Failed), "{:?}", partial.status);
    assert!(partial.status.failure_reason.contains("ended before it finished"), "{}", partial.status.failure_reason);
    assert!(!store.join("b/backups/partial").exists() || std::fs::read_dir(store.join("b/backups/partial")).unwrap().count() == 0, "partial objects removed");
    backup::delete_backup(&coffer, "ns", "partial").await.unwrap();
}
