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

    let t0 = now();
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
    schedules::pause_schedule(&coffer, "ns", "hourly", true).unwrap();
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
