//! The service over the engine as a server serves it: a backup accepted with nobody watching
//! answers at once and runs on the server's jobs, recording its progress in its record; one
//! with a watcher runs to its end within the call and tells the watcher as it goes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use coffer::api::{Host, LocalTenant, TenantApi};
use coffer::backup::SOURCE_ANNOTATION;
use coffer::coffer::Coffer;
use coffer::jobs::{JobLimits, Jobs};
use coffer::model::{API_VERSION, Backup, BackupMeta, ObjectMeta, Phase, Progress};
use coffer::sandbox::Limits;

use crate::common::{dir, filesystem_bsl, s};

fn backup(name: &str, source: &str) -> Backup {
    let metadata = BackupMeta { meta: ObjectMeta::new("acme", name), annotations: BTreeMap::from([(SOURCE_ANNOTATION.to_owned(), source.to_owned())]) };
    Backup { api_version: API_VERSION.into(), kind: "Backup".into(), metadata, spec: Default::default(), status: Default::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_server_runs_take_their_turn_on_the_jobs_and_record_their_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let coffer = Arc::new(Coffer::open(&tmp.path().join("data"), Limits::default()).await.unwrap());
    let jobs = Arc::new(Jobs::new(JobLimits::default(), 1).unwrap());
    let tenant = coffer.tenant("acme").unwrap();
    let api = LocalTenant::new(coffer.clone(), tenant, BTreeMap::new(), Host::Server(jobs));
    api.create_backup_storage_location(filesystem_bsl("default", &dir(tmp.path(), "store")).build("acme").unwrap()).await.unwrap();
    let src = dir(tmp.path(), "src");
    for i in 0..200 {
        std::fs::write(src.join(format!("cm-{i}.yaml")), format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}, namespace: shop}}\n")).unwrap();
    }

    // Nobody watching: the answer is the accepted record; the run goes on and ends recorded.
    let accepted = api.create_backup(backup("queued", &s(&src)), None).await.unwrap();
    assert_eq!(accepted.status.phase, Some(Phase::InProgress), "{:?}", accepted.status);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let ended = loop {
        let now = api.get_backup("queued").await.unwrap();
        if !now.status.phase.is_some_and(Phase::is_running) {
            break now;
        }
        assert!(std::time::Instant::now() < deadline, "still running: {:?}", now.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ended.status.phase, Some(Phase::Completed), "{:?}", ended.status);
    let recorded = ended.status.progress.expect("progress recorded");
    assert_eq!((recorded.items_backed_up, recorded.total_items), (200, 200));

    // Watching: the call returns at the end, and the watcher saw it get there.
    let mut seen: Vec<Progress> = Vec::new();
    let mut watch = |p: &Progress| seen.push(p.clone());
    let watched = api.create_backup(backup("watched", &s(&src)), Some(&mut watch)).await.unwrap();
    assert_eq!(watched.status.phase, Some(Phase::Completed), "{:?}", watched.status);
    assert_eq!(seen.last().map(|p| (p.items_backed_up, p.total_items)), Some((200, 200)), "{seen:?}");
    assert_eq!(watched.status.progress.map(|p| p.items_backed_up), Some(200), "recorded too");
}
