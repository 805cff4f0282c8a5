//! Per-tenant quotas on the sandbox: memory per instance, call deadline, and provider calls
//! in flight at once. Another tenant on the same host keeps the host's own limits.

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coffer::coffer::Coffer;
use coffer::locations::{self, NewBackupStorageLocation, object_store_for};
use coffer::model::BackupStorageLocation;
use coffer::sandbox::{ErrorKind, Limits};
use coffer::quotas::set_quota;

use crate::common::{dir, s, test_component};

async fn bsl(coffer: &Coffer, tenant: &str, provider: &str, config: &[(&str, &str)]) -> BackupStorageLocation {
    let new = NewBackupStorageLocation {
        name: "default".into(),
        provider: provider.into(),
        bucket: "bucket".into(),
        config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        default: true,
        ..Default::default()
    };
    locations::create_backup_storage_location(coffer, tenant, new).await.unwrap()
}

async fn coffer_with_probe(root: &std::path::Path) -> Coffer {
    let probe = root.join("probe.wasm");
    std::fs::write(&probe, test_component("probe")).unwrap();
    let limits = Limits { memory_bytes: 128 << 20, ..Limits::default() };
    let coffer = Coffer::open(&root.join("data"), limits).await.unwrap();
    coffer.registry.add(&coffer.sandbox, &probe, &coffer.state).await.unwrap();
    coffer
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenants_memory_and_deadline_quota_binds_only_that_tenant() {
    let tmp = tempfile::tempdir().unwrap();
    let coffer = coffer_with_probe(tmp.path()).await;
    // A server that accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    let config = [("url", url.as_str())];
    let small = bsl(&coffer, "small", "coffer.test/probe", &config).await;
    let roomy = bsl(&coffer, "roomy", "coffer.test/probe", &config).await;
    set_quota(&coffer, "small", None, Some(16 << 20), Some(Duration::from_secs(1))).unwrap();

    let mut store = object_store_for(&coffer, &small).await.unwrap();
    // The allocator sees the refused growth as out of memory (or the host stops the instance).
    let err = store.object_exists("b", "alloc:32").await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Unavailable(_) | ErrorKind::MemoryLimit { limit: 16_777_216 }), "{err}");
    assert!(store.object_exists("b", "alloc:8").await.unwrap(), "within the quota");
    let started = std::time::Instant::now();
    let err = store.object_exists("b", &format!("http:{url}")).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Deadline(d) if d == Duration::from_secs(1)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "the 1s deadline stopped the call: {:?}", started.elapsed());

    // The other tenant has the host's limits: 32 MiB is fine.
    let mut other = object_store_for(&coffer, &roomy).await.unwrap();
    assert!(other.object_exists("b", "alloc:32").await.unwrap());

    let err = set_quota(&coffer, "small", None, Some(1 << 30), None).unwrap_err();
    assert!(err.to_string().contains("the host's limit per instance"), "{err}");
    let err = set_quota(&coffer, "small", Some(0), None, None).unwrap_err();
    assert!(err.to_string().contains("concurrentCalls"), "{err}");
}

/// A source that records how many sources are being read at the same time.
struct Slow {
    left: usize,
    started: bool,
    active: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Read for Slow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.started {
            self.started = true;
            let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
        }
        if self.left == 0 {
            self.active.fetch_sub(1, Ordering::SeqCst);
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(20));
        let n = buf.len().min(self.left).min(4096);
        buf[..n].fill(7);
        self.left -= n;
        Ok(n)
    }
}

/// Most uploads of one tenant in flight at once when two run together.
async fn most_in_flight(coffer: &Coffer, bsl: &BackupStorageLocation) -> usize {
    let (active, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let upload = |key: &'static str| {
        let (active, most) = (active.clone(), most.clone());
        async move {
            let mut store = object_store_for(coffer, bsl).await.unwrap();
            store.put_object("bucket", key, Slow { left: 10 * 4096, started: false, active, most }).await.unwrap()
        }
    };
    let (a, b) = tokio::join!(upload("a"), upload("b"));
    assert_eq!((a, b), (40960, 40960));
    most.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_cap_serialises_one_tenants_provider_calls() {
    let tmp = tempfile::tempdir().unwrap();
    let coffer = Coffer::open(&tmp.path().join("data"), Limits::default()).await.unwrap();
    let capped = bsl(&coffer, "capped", "filesystem", &[("root", &s(&dir(tmp.path(), "capped")))]).await;
    let free = bsl(&coffer, "free", "filesystem", &[("root", &s(&dir(tmp.path(), "free")))]).await;
    set_quota(&coffer, "capped", Some(1), None, None).unwrap();
    assert_eq!(most_in_flight(&coffer, &capped).await, 1, "one call at a time");
    assert_eq!(most_in_flight(&coffer, &free).await, 2, "without a cap both uploads run together");
}
