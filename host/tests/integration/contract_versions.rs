//! Components built against an earlier release of the contract keep working: the host loads
//! them with that release's bindings, and the calls added since fail naming the version.

use std::path::Path;

use coffer::sandbox::{ErrorKind, Limits, ObjectStoreHandle, ProviderKind, VolumeSnapshotterHandle};

use crate::common::{Cli, grants, load, s, sandbox};

/// A component from `tests/fixtures/`: first-party providers as built at earlier contracts.
fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name)).unwrap()
}

#[tokio::test]
async fn an_object_store_built_against_contract_0_1_still_serves_its_location() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = sandbox(Limits::default());
    let old = load(&sb, &fixture("filesystem-contract-0.1.0.wasm")).await;
    assert_eq!((old.kind(), old.contract()), (ProviderKind::ObjectStore, "0.1.0"));
    let g = grants("bsl old", &old, &[("root", tmp.path().to_str().unwrap())], None);
    let mut store = ObjectStoreHandle::new(&sb, &old, g).await.unwrap();

    // Everything 0.1.0 had works as it did.
    store.put_bytes("b", "backups/one/one.tar.gz", b"tarball".to_vec()).await.unwrap();
    assert!(store.object_exists("b", "backups/one/one.tar.gz").await.unwrap());
    assert_eq!(store.get_bytes("b", "backups/one/one.tar.gz", 1 << 20).await.unwrap(), b"tarball");
    assert_eq!(store.list_objects("b", "backups/").await.unwrap(), ["backups/one/one.tar.gz"]);
    assert_eq!(store.list_common_prefixes("b", "backups/", "/").await.unwrap(), ["backups/one/"]);

    // The calls of 0.2.0 fail, saying why and what to do.
    let err = store.get_object_range("b", "backups/one/one.tar.gz", 0, 3, std::io::sink()).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::OlderContract { contract: "0.1.0", call: "get-object-range", added: "0.2.0" }), "{err}");
    assert!(err.to_string().contains("bsl old") && err.to_string().contains("rebuild it against the current coffer-guest-sdk"), "{err}");
    let err = store.list_objects_with_sizes("b", "backups/").await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::OlderContract { .. }), "{err}");
    // And the instance still answers afterwards.
    store.delete_object("b", "backups/one/one.tar.gz").await.unwrap();
    assert!(store.list_objects("b", "").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_volume_snapshotter_built_against_contract_0_1_still_snapshots() {
    let volumes = tempfile::tempdir().unwrap();
    let snapshots = tempfile::tempdir().unwrap();
    std::fs::create_dir(volumes.path().join("vol-1")).unwrap();
    std::fs::write(volumes.path().join("vol-1/data"), b"volume data").unwrap();
    let sb = sandbox(Limits::default());
    let old = load(&sb, &fixture("local-contract-0.1.0.wasm")).await;
    assert_eq!((old.kind(), old.contract()), (ProviderKind::VolumeSnapshotter, "0.1.0"));
    let config = [("volumeRoot", volumes.path().to_str().unwrap()), ("snapshotDir", snapshots.path().to_str().unwrap())];
    let mut snapshotter = VolumeSnapshotterHandle::new(&sb, &old, grants("vsl old", &old, &config, None)).await.unwrap();
    let snapshot = snapshotter.create_snapshot("vol-1", "", &[]).await.unwrap();
    let info = snapshotter.get_volume_info("vol-1", "").await.unwrap();
    assert!(!info.volume_type.is_empty(), "{info:?}");
    let restored = snapshotter.create_volume_from_snapshot(&snapshot, &info.volume_type, "", info.iops).await.unwrap();
    assert_eq!(std::fs::read(volumes.path().join(&restored).join("data")).unwrap(), b"volume data");
    snapshotter.delete_snapshot(&snapshot).await.unwrap();
}

#[tokio::test]
async fn components_built_against_contract_0_2_serve_everything_but_snapshot_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = sandbox(Limits::default());
    let store = load(&sb, &fixture("filesystem-contract-0.2.0.wasm")).await;
    assert_eq!((store.kind(), store.contract()), (ProviderKind::ObjectStore, "0.2.0"));
    let g = grants("bsl old", &store, &[("root", tmp.path().to_str().unwrap())], None);
    let mut store = ObjectStoreHandle::new(&sb, &store, g).await.unwrap();
    // The calls 0.2.0 added work.
    store.put_bytes("b", "backups/one/one.tar.gz", b"tarball".to_vec()).await.unwrap();
    assert_eq!(store.get_range_bytes("b", "backups/one/one.tar.gz", 3, 10).await.unwrap(), b"ball");
    let sized = store.list_objects_with_sizes("b", "backups/").await.unwrap();
    assert_eq!((sized[0].key.as_str(), sized[0].size), ("backups/one/one.tar.gz", 7));

    let volumes = tempfile::tempdir().unwrap();
    std::fs::create_dir(volumes.path().join("vol-1")).unwrap();
    let snapshots = tempfile::tempdir().unwrap();
    let local = load(&sb, &fixture("local-contract-0.2.0.wasm")).await;
    assert_eq!((local.kind(), local.contract()), (ProviderKind::VolumeSnapshotter, "0.2.0"));
    let config = [("volumeRoot", volumes.path().to_str().unwrap()), ("snapshotDir", snapshots.path().to_str().unwrap())];
    let mut snapshotter = VolumeSnapshotterHandle::new(&sb, &local, grants("vsl old", &local, &config, None)).await.unwrap();
    let snapshot = snapshotter.create_snapshot("vol-1", "", &[]).await.unwrap();
    // The call 0.3.0 added fails, naming the version, and the instance still answers.
    let source = config.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let err = snapshotter.copy_snapshot(&snapshot, &source, "", &[]).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::OlderContract { contract: "0.2.0", call: "copy-snapshot", added: "0.3.0" }), "{err}");
    assert!(err.to_string().contains("vsl old"), "{err}");
    snapshotter.delete_snapshot(&snapshot).await.unwrap();
}

#[test]
fn the_cli_adds_an_older_component_and_says_which_contract_it_implements() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(&tmp.path().join("data"));
    let wasm = tmp.path().join("probe.wasm");
    std::fs::write(&wasm, fixture("probe-contract-0.1.0.wasm")).unwrap();
    cli.ok(&["plugin", "add", &s(&wasm)]);
    let plugins = cli.json(&["plugin", "get"]);
    let contract = |name: &str| {
        let items = plugins["items"].as_array().unwrap();
        items.iter().find(|p| p["name"] == name).map(|p| p["contract"].clone()).unwrap()
    };
    assert_eq!(contract("coffer.test/probe"), "0.1.0");
    assert_eq!(contract("velero.io/filesystem"), coffer::sandbox::CONTRACT);
    assert!(cli.ok(&["plugin", "get"]).contains("CONTRACT"));
    // A location on it is validated through the 0.1.0 calls.
    cli.ok(&["bsl", "create", "old", "--provider", "coffer.test/probe", "--bucket", "b"]);
    assert_eq!(cli.json(&["bsl", "get", "old"])["status"]["phase"], "Available");
}
