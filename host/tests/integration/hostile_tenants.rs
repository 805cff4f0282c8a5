//! Tenants (namespaces) whose providers are hostile, backing up at the same time as a tenant
//! whose provider is not: each hostile call is contained with a clear error, the good tenant's
//! backup completes, and what was stored before is untouched.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use coffer::backup::{self, BackupRequest};
use coffer::coffer::Coffer;
use coffer::locations::{self, NewBackupStorageLocation};
use coffer::model::{BackupSpec, Phase};
use coffer::sandbox::{ErrorKind, Limits, ObjectStoreHandle};

use crate::common::{dir, grants, load, s, sandbox, test_component};

fn request(name: &str, source: &Path) -> BackupRequest {
    BackupRequest {
        name: name.into(),
        source: source.to_path_buf(),
        spec: BackupSpec::default(),
        labels: BTreeMap::new(),
        default_snapshot_locations: BTreeMap::new(),
    }
}

async fn default_bsl(coffer: &Coffer, tenant: &str, provider: &str, config: &[(&str, &str)]) {
    let new = NewBackupStorageLocation {
        name: "default".into(),
        provider: provider.into(),
        bucket: "bucket".into(),
        prefix: tenant.into(),
        config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        default: true,
        ..Default::default()
    };
    locations::create_backup_storage_location(coffer, tenant, new).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_providers_are_contained_while_another_tenant_backs_up() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let store = dir(root, "store");
    let source = dir(root, "source");
    let manifests: String = (0..200)
        .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}, namespace: shop}}\ndata: {{k: v{i}}}\n---\n"))
        .collect();
    std::fs::write(source.join("shop.yaml"), manifests).unwrap();
    let probe = root.join("probe.wasm");
    std::fs::write(&probe, test_component("probe")).unwrap();

    let limits = Limits { cpu_per_call: Duration::from_secs(2), memory_bytes: 64 << 20, ..Limits::default() };
    let coffer = Coffer::open(&root.join("data"), limits).await.unwrap();
    coffer.registry.add(&coffer.sandbox, &probe, &coffer.state).await.unwrap();
    default_bsl(&coffer, "good", "filesystem", &[("root", &s(&store))]).await;
    let hostile = ["trap", "recurse", "spin", "lie"];
    for behaviour in hostile {
        default_bsl(&coffer, behaviour, "coffer.test/probe", &[("onPut", behaviour)]).await;
    }

    // Something the good tenant stored before.
    let before = backup::create_backup(&coffer, "good", request("before", &source), &mut |_| {}).await.unwrap();
    assert_eq!(before.status.phase, Some(Phase::Completed), "{:?}", before.status);
    let stored = store.join("bucket/good/backups/before");
    let snapshot: Vec<(String, Vec<u8>)> = std::fs::read_dir(&stored)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap())
        })
        .collect();
    assert!(!snapshot.is_empty());

    // Everyone backs up at once.
    let run = |tenant: &'static str, name: &'static str| {
        let (coffer, source) = (&coffer, &source);
        async move { backup::create_backup(coffer, tenant, request(name, source), &mut |_| {}).await }
    };
    let (good, bad) = tokio::join!(run("good", "during"), futures::future::join_all(hostile.map(|tenant| run(tenant, "attack"))));

    let good = good.unwrap();
    assert_eq!(good.status.phase, Some(Phase::Completed), "{:?}", good.status);
    assert!(store.join("bucket/good/backups/during/during.tar.gz").is_file());
    for (tenant, result) in hostile.iter().zip(bad) {
        let backup = result.unwrap();
        assert_eq!(backup.status.phase, Some(Phase::Failed), "{tenant}: {:?}", backup.status);
        let reason = &backup.status.failure_reason;
        let expected = match *tenant {
            "trap" => "trapped: wasm trap: wasm `unreachable` instruction executed; the instance was discarded",
            "recurse" => "trapped: wasm trap: call stack exhausted; the instance was discarded",
            "spin" => "CPU-time limit",
            "lie" => "crossed the stream",
            _ => unreachable!(),
        };
        assert!(reason.contains(expected), "{tenant}: {reason}");
        assert!(reason.contains("backup-location \"default\""), "{tenant}: {reason}");
    }

    // The earlier backup is byte for byte what it was, and each tenant sees only its own.
    for (name, bytes) in &snapshot {
        assert!(std::fs::read(stored.join(name)).unwrap() == *bytes, "{name} unchanged");
    }
    let names = |tenant: &str| -> Vec<String> {
        backup::list_backups(&coffer, tenant).unwrap().into_iter().map(|b| b.metadata.meta.name).collect()
    };
    assert_eq!(names("good"), ["before", "during"]);
    assert_eq!(names("trap"), ["attack"]);
}

#[tokio::test]
async fn listings_outside_the_asked_prefix_are_refused() {
    let sb = sandbox(Limits::default());
    let probe = load(&sb, &test_component("probe")).await;
    let config = [("onList", "garbage")];
    let mut p = ObjectStoreHandle::new(&sb, &probe, grants("bsl garbage", &probe, &config, None)).await.unwrap();
    let err = p.list_objects("b", "backups/x/").await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::InvalidAnswer(_)), "{err}");
    assert!(err.to_string().contains("\"/etc/passwd\" is outside the prefix \"backups/x/\""), "{err}");
    let err = p.list_common_prefixes("b", "backups/", "/").await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::InvalidAnswer(_)), "{err}");
    assert!(err.to_string().contains("bsl garbage"), "{err}");
}

#[tokio::test]
async fn ranged_reads_longer_than_asked_or_lying_about_length_are_refused() {
    let sb = sandbox(Limits::default());
    let probe = load(&sb, &test_component("probe")).await;
    let mut p = ObjectStoreHandle::new(&sb, &probe, grants("bsl ranges", &probe, &[], None)).await.unwrap();
    // Sends 11 bytes for a read of 10, and says so.
    let err = p.get_object_range("b", "overlong", 0, 10, std::io::sink()).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::InvalidAnswer(_)), "{err}");
    assert!(err.to_string().contains("a read of 10 bytes of \"overlong\" returned 11"), "{err}");
    // Says 10 bytes and sends none.
    let err = p.get_object_range("b", "lying", 0, 10, std::io::sink()).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::LengthMismatch { reported: 10, moved: 0 }), "{err}");
    // The sandbox still serves the location.
    assert!(p.list_objects("b", "").await.unwrap().is_empty());
}
