//! The controllers driven by a clock of the test's own: `tick(at)` then `settle()`, no
//! sleeping on `@every 1s`. Schedules run when due and not before, a paused one not at all,
//! and garbage collection deletes backups once their TTL has passed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use coffer::backup;
use coffer::coffer::Coffer;
use coffer::controllers::{Controllers, Settings};
use coffer::locations;
use coffer::model::{BackupSpec, Phase, now};
use coffer::sandbox::Limits;
use coffer::schedules::{self, NewSchedule};
use coffer::jobs::{JobLimits, Jobs};

use crate::common::{dir, filesystem_bsl};

#[tokio::test(flavor = "multi_thread")]
async fn schedules_and_garbage_collection_follow_the_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let coffer = Arc::new(Coffer::open(&tmp.path().join("data"), Limits::default()).await.unwrap());
    let store = dir(tmp.path(), "store");
    let src = dir(tmp.path(), "src");
    std::fs::write(src.join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n").unwrap();
    locations::create_backup_storage_location(&coffer, "ns", filesystem_bsl("default", &store)).await.unwrap();
    let template = BackupSpec { ttl: Some(Duration::from_secs(5 * 3600)), ..BackupSpec::default() };
    let new = NewSchedule {
        name: "hourly".into(),
        schedule: "@every 1h".into(),
        template,
        source: src,
        labels: BTreeMap::new(),
        paused: false,
        skip_immediately: false,
    };
    schedules::create_schedule(&coffer, "ns", new).unwrap();
    let jobs = Arc::new(Jobs::new(JobLimits::default(), 1).unwrap());
    let mut controllers = Controllers::new(coffer.clone(), Settings::default(), jobs);
    let backups = || {
        let mut names: Vec<(String, Option<Phase>)> =
            backup::list_backups(&coffer, "ns").unwrap().into_iter().map(|b| (b.metadata.meta.name, b.status.phase)).collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        names
    };

    let t0 = now().replace_nanosecond(0).unwrap();
    let minutes = |m: i64| t0 + time::Duration::minutes(m);
    // The first run at once, then one an hour, never early, never twice for one due time.
    for (at, expected) in [(0, 1), (1, 1), (59, 1), (60, 2), (60, 2), (90, 2), (120, 3)] {
        controllers.tick(minutes(at)).unwrap();
        controllers.settle().await;
        let made = backups();
        assert_eq!(made.len(), expected, "at +{at} min: {made:?}");
        assert!(made.iter().all(|(_, phase)| *phase == Some(Phase::Completed)), "{made:?}");
    }
    let schedule = schedules::get_schedules(&coffer, "ns", &["hourly".into()]).unwrap().remove(0);
    assert_eq!(schedule.status.last_backup, Some(minutes(120)), "{:?}", schedule.status);

    // Paused: no run at its due time.
    schedules::pause_schedule(&coffer, "ns", "hourly", true, None).unwrap();
    controllers.tick(minutes(180)).unwrap();
    controllers.settle().await;
    assert_eq!(backups().len(), 3);

    // The backups expire 5 h after they were made (now, by the wall clock): garbage
    // collection, once an hour, deletes them once that has passed, objects and all.
    controllers.tick(minutes(181)).unwrap();
    controllers.settle().await;
    assert_eq!(backups().len(), 3, "garbage collection runs once an hour");
    controllers.tick(t0 + time::Duration::hours(6)).unwrap();
    controllers.settle().await;
    assert_eq!(backups(), vec![], "expired backups collected");
    assert!(std::fs::read_dir(store.join("b/backups")).map_or(true, |mut d| d.next().is_none()), "their objects are gone");
}

/// A schedule whose template copies the backup (`copyTo`) and its snapshots
/// (`copySnapshotsTo`): every run is copied, and garbage collection deletes an expired run
/// everywhere, its copies and its snapshots' copies included.
#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_backup_is_copied_on_every_run_and_collected_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let coffer = Arc::new(Coffer::open(&tmp.path().join("data"), Limits::default()).await.unwrap());
    let (store, dr) = (dir(tmp.path(), "store"), dir(tmp.path(), "dr"));
    locations::create_backup_storage_location(&coffer, "ns", filesystem_bsl("default", &store)).await.unwrap();
    let dr_location = locations::NewBackupStorageLocation { default: false, ..filesystem_bsl("dr", &dr) };
    locations::create_backup_storage_location(&coffer, "ns", dr_location).await.unwrap();
    let volumes = dir(tmp.path(), "volumes");
    std::fs::write(dir(&volumes, "data-1").join("a.txt"), b"hello").unwrap();
    let (near, far) = (dir(tmp.path(), "snapshots-near"), dir(tmp.path(), "snapshots-far"));
    for (name, snapshots) in [("near", &near), ("far", &far)] {
        let config = BTreeMap::from([
            ("volumeRoot".to_owned(), volumes.display().to_string()),
            ("snapshotDir".to_owned(), snapshots.display().to_string()),
        ]);
        let vsl = locations::NewVolumeSnapshotLocation { name: name.into(), provider: "local".into(), config, ..Default::default() };
        locations::create_volume_snapshot_location(&coffer, "ns", vsl).await.unwrap();
    }
    let src = dir(tmp.path(), "src");
    let pv = serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-1"},
        "spec": {"hostPath": {"path": volumes.join("data-1").display().to_string()}}});
    std::fs::write(src.join("pv.json"), pv.to_string()).unwrap();
    let template = BackupSpec {
        ttl: Some(Duration::from_secs(90 * 60)),
        volume_snapshot_locations: vec!["near".into()],
        copy_to: vec!["dr".into()],
        copy_snapshots_to: vec!["far".into()],
        ..BackupSpec::default()
    };
    let new = NewSchedule {
        name: "hourly".into(),
        schedule: "@every 1h".into(),
        template,
        source: src,
        labels: BTreeMap::new(),
        paused: false,
        skip_immediately: false,
    };
    schedules::create_schedule(&coffer, "ns", new).unwrap();
    let jobs = Arc::new(Jobs::new(JobLimits::default(), 1).unwrap());
    let mut controllers = Controllers::new(coffer.clone(), Settings::default(), jobs);
    let t0 = now();
    for at in [0, 60] {
        controllers.tick(t0 + time::Duration::minutes(at)).unwrap();
        controllers.settle().await;
    }
    let made = backup::list_backups(&coffer, "ns").unwrap();
    assert_eq!(made.len(), 2, "{made:#?}");
    for b in &made {
        assert_eq!(b.status.phase, Some(Phase::Completed), "{:?}", b.status);
        assert_eq!(b.status.copies.iter().map(|c| (c.storage_location.as_str(), c.phase)).collect::<Vec<_>>(), [("dr", Some(Phase::Completed))]);
        assert!(dr.join("b/backups").join(&b.metadata.meta.name).join("velero-backup.json").exists());
    }
    let count = |d: &std::path::Path| std::fs::read_dir(d).unwrap().count();
    assert_eq!((count(&near), count(&far)), (2, 2), "a snapshot and its copy per run");

    // Both runs expire 90 min after they were made (by the wall clock): collected, with every
    // copy. Paused first, so that no new run is made at the same tick.
    schedules::pause_schedule(&coffer, "ns", "hourly", true, None).unwrap();
    controllers.tick(t0 + time::Duration::hours(3)).unwrap();
    controllers.settle().await;
    assert!(backup::list_backups(&coffer, "ns").unwrap().is_empty(), "collected");
    assert_eq!((count(&near), count(&far)), (0, 0), "the snapshots and their copies are gone");
    for root in [&store, &dr] {
        assert!(std::fs::read_dir(root.join("b/backups")).map_or(true, |mut d| d.next().is_none()), "{} is empty", root.display());
    }
}
