//! What a provider instance can and cannot reach.

use std::time::{Duration, Instant};

use coffer::embedded;
use coffer::sandbox::{ErrorKind, Limits, ObjectStoreHandle};

use crate::common::{dir, grants, load, s, sandbox, test_component};

#[tokio::test]
async fn filesystem_provider_round_trips_and_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let root = dir(tmp.path(), "root");
    let sb = sandbox(Limits::default());
    let fs = load(&sb, embedded::FILESYSTEM).await;
    assert_eq!(fs.manifest().name, "velero.io/filesystem");
    let mut store = ObjectStoreHandle::new(&sb, &fs, grants("bsl a", &fs, &[("root", &s(&root)), ("bucket", "b")], None))
        .await
        .unwrap();
    store.put_bytes("b", "backups/one/velero-backup.json", b"{}".to_vec()).await.unwrap();
    store.put_bytes("b", "backups/two/two.tar.gz", vec![7; 3 << 20]).await.unwrap();
    store.put_bytes("b", "restores/r/log", b"x".to_vec()).await.unwrap();
    assert_eq!(store.get_bytes("b", "backups/two/two.tar.gz", 16 << 20).await.unwrap(), vec![7; 3 << 20]);
    assert!(store.object_exists("b", "backups/one/velero-backup.json").await.unwrap());
    assert!(!store.object_exists("b", "backups/one").await.unwrap(), "a prefix is not an object");
    assert!(!store.object_exists("b", "missing").await.unwrap());
    assert_eq!(store.list_common_prefixes("b", "", "/").await.unwrap(), ["backups/", "restores/"]);
    assert_eq!(store.list_common_prefixes("b", "backups/", "/").await.unwrap(), ["backups/one/", "backups/two/"]);
    assert_eq!(
        store.list_objects("b", "backups/").await.unwrap(),
        ["backups/one/velero-backup.json", "backups/two/two.tar.gz"]
    );
    let err = store.get_bytes("b", "missing", 16 << 20).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::NotFound(_)), "{err}");
    store.delete_object("b", "restores/r/log").await.unwrap();
    store.delete_object("b", "restores/r/log").await.unwrap();
    assert_eq!(store.list_common_prefixes("b", "", "/").await.unwrap(), ["backups/"]);
    assert!(!root.join("b/restores").exists(), "empty directories are pruned");
}

#[tokio::test]
async fn filesystem_provider_cannot_leave_its_root() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (dir(tmp.path(), "a"), dir(tmp.path(), "b"));
    std::fs::create_dir_all(b.join("bucket")).unwrap();
    std::fs::write(b.join("bucket/secret"), b"other tenant").unwrap();
    let sb = sandbox(Limits::default());
    let fs = load(&sb, embedded::FILESYSTEM).await;
    let mut store = ObjectStoreHandle::new(&sb, &fs, grants("bsl a", &fs, &[("root", &s(&a))], None)).await.unwrap();
    for key in ["../b/bucket/secret", "x/../../b/bucket/secret", "/etc/passwd", ""] {
        let err = store.get_bytes("bucket", key, 16 << 20).await.unwrap_err();
        assert!(matches!(err.kind, ErrorKind::InvalidArgument(_)), "{key}: {err}");
    }
    for bucket in ["..", "../b", "/"] {
        let err = store.put_bytes(bucket, "k", b"x".to_vec()).await.unwrap_err();
        assert!(matches!(err.kind, ErrorKind::InvalidArgument(_)), "{bucket}: {err}");
    }
    assert_eq!(std::fs::read(b.join("bucket/secret")).unwrap(), b"other tenant");
}

#[tokio::test]
async fn hostile_component_sees_only_its_own_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (mine, other) = (dir(tmp.path(), "mine"), dir(tmp.path(), "other"));
    std::fs::write(other.join("secret"), b"other tenant").unwrap();
    std::fs::write(mine.join("own"), b"mine").unwrap();
    let sb = sandbox(Limits::default());
    let probe = load(&sb, &test_component("probe")).await;
    let mut p = ObjectStoreHandle::new(&sb, &probe, grants("bsl probe", &probe, &[("root", &s(&mine))], None)).await.unwrap();
    assert!(p.object_exists("b", "read:/data/own").await.unwrap(), "its own root is readable");
    let outside = [
        format!("read:{}", s(&other.join("secret"))),
        "read:/data/../other/secret".into(),
        "list:/data/..".into(),
        "list:/".into(),
        "read:/etc/passwd".into(),
        format!("write:{}", s(&other.join("planted"))),
        "write:/data/../planted".into(),
    ];
    for probe_cmd in &outside {
        let result = p.object_exists("b", probe_cmd).await;
        assert!(result.is_err(), "{probe_cmd} must fail, got {result:?}");
    }
    assert!(!other.join("planted").exists() && !tmp.path().join("planted").exists());
    assert!(!p.object_exists("b", "env").await.unwrap(), "no environment variables or arguments");
}

#[tokio::test]
async fn a_location_gets_only_its_own_credential() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = sandbox(Limits::default());
    let probe = load(&sb, &test_component("probe")).await;
    let mut a = ObjectStoreHandle::new(&sb, &probe, grants("bsl a", &probe, &[], Some("secret-A"))).await.unwrap();
    let mut b = ObjectStoreHandle::new(&sb, &probe, grants("bsl b", &probe, &[], Some("secret-B"))).await.unwrap();
    let mut none = ObjectStoreHandle::new(&sb, &probe, grants("bsl c", &probe, &[], None)).await.unwrap();
    assert_eq!(a.get_bytes("x", "credential", 16 << 20).await.unwrap(), b"secret-A");
    assert_eq!(b.get_bytes("x", "credential", 16 << 20).await.unwrap(), b"secret-B");
    assert_eq!(none.get_bytes("x", "credential", 16 << 20).await.unwrap(), b"<none>");
    // Nothing else reaches it: no environment, no files, no network.
    assert!(!a.object_exists("x", "env").await.unwrap());
    assert!(a.object_exists("x", &format!("list:{}", s(tmp.path()))).await.is_err());
}

#[tokio::test]
async fn network_is_limited_to_the_locations_endpoints() {
    use std::net::TcpListener;
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let denied = TcpListener::bind("127.0.0.1:0").unwrap();
    denied.set_nonblocking(true).unwrap();
    let allowed_url = format!("http://{}", allowed.local_addr().unwrap());
    let denied_addr = denied.local_addr().unwrap().to_string();
    // Answer one request on the allowed listener.
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = allowed.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf);
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").unwrap();
    });
    let sb = sandbox(Limits::default());
    let probe = load(&sb, &test_component("probe")).await;
    let mut p = ObjectStoreHandle::new(&sb, &probe, grants("bsl net", &probe, &[("url", &allowed_url)], None)).await.unwrap();
    assert!(p.object_exists("b", &format!("http:{allowed_url}/ping")).await.unwrap());
    let err = p.object_exists("b", &format!("http:http://{denied_addr}/")).await.unwrap_err();
    assert!(err.to_string().contains("HttpRequestDenied"), "{err}");
    let err = p.object_exists("b", &format!("tcp:{denied_addr}")).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::PermissionDenied(_) | ErrorKind::Other(_) | ErrorKind::Unsupported(_)), "{err}");
    assert!(denied.accept().is_err(), "nothing connected to the unlisted address");
}

#[tokio::test]
async fn runaway_call_is_stopped_and_the_next_call_gets_a_fresh_instance() {
    let limits = Limits { cpu_per_call: Duration::from_millis(200), ..Limits::default() };
    let sb = sandbox(limits);
    let probe = load(&sb, &test_component("probe")).await;
    let mut p = ObjectStoreHandle::new(&sb, &probe, grants("bsl spin", &probe, &[], Some("cred"))).await.unwrap();
    let started = Instant::now();
    let err = p.object_exists("b", "spin").await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err.kind, ErrorKind::CpuLimit(d) if d == Duration::from_millis(200)), "{err}");
    assert!(err.to_string().contains("bsl spin"), "{err}");
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    // The next call runs on a new instance, initialised again with the same credential.
    assert_eq!(p.get_bytes("b", "credential", 16 << 20).await.unwrap(), b"cred");
    let err = p.object_exists("b", "trap").await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Trap(_)), "{err}");
    assert!(!p.object_exists("b", "env").await.unwrap());
}

#[tokio::test]
async fn memory_is_limited_per_instance() {
    let limits = Limits { memory_bytes: 64 << 20, ..Limits::default() };
    let sb = sandbox(limits);
    let probe = load(&sb, &test_component("probe")).await;
    let mut p = ObjectStoreHandle::new(&sb, &probe, grants("bsl mem", &probe, &[], None)).await.unwrap();
    assert!(p.object_exists("b", "alloc:16").await.unwrap());
    let err = p.object_exists("b", "alloc:512").await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Unavailable(_) | ErrorKind::MemoryLimit { .. }), "{err}");
    assert!(p.object_exists("b", "alloc:16").await.unwrap(), "still usable afterwards");
}

#[tokio::test]
async fn a_provider_keeping_a_stream_cannot_stall_the_host() {
    let sb = sandbox(Limits::default());
    let probe = load(&sb, &test_component("probe")).await;
    let mut p = ObjectStoreHandle::new(&sb, &probe, grants("bsl stash", &probe, &[], None)).await.unwrap();
    let guard = Duration::from_secs(20);
    // 64 MiB is more than the stream buffers: the producer would block forever.
    let put = tokio::time::timeout(guard, p.put_bytes("b", "stash", vec![1; 64 << 20])).await.expect("put returns");
    let err = put.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::LengthMismatch { reported: 0, .. }), "{err}");
    let get = tokio::time::timeout(guard, p.get_bytes("b", "stash", 16 << 20)).await.expect("get returns");
    assert_eq!(get.unwrap(), Vec::<u8>::new());
    assert!(p.object_exists("b", "noop").await.unwrap(), "the instance still serves calls");
}
