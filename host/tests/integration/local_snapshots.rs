//! The embedded `velero.io/local` snapshotter on directory volumes.

use coffer::embedded;
use coffer::sandbox::{ErrorKind, Limits, VolumeSnapshotterHandle};

use crate::common::{dir, grants, load, s, sandbox};

fn pv(path: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": "pv-1"},
        "spec": {"capacity": {"storage": "1Gi"}, "hostPath": {"path": path}},
    })
    .to_string()
}

#[tokio::test]
async fn snapshots_and_restores_directory_volumes() {
    let tmp = tempfile::tempdir().unwrap();
    let (volumes, snapshots) = (dir(tmp.path(), "volumes"), dir(tmp.path(), "snapshots"));
    let data = dir(&volumes, "data-1");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("a.txt"), b"hello").unwrap();
    std::fs::write(data.join("sub/b.bin"), vec![9u8; 2 << 20]).unwrap();
    std::os::unix::fs::symlink("a.txt", data.join("link")).unwrap();

    let sb = sandbox(Limits::default());
    let local = load(&sb, embedded::LOCAL).await;
    let config = [("volumeRoot", s(&volumes)), ("snapshotDir", s(&snapshots))];
    let config: Vec<(&str, &str)> = config.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut vs = VolumeSnapshotterHandle::new(&sb, &local, grants("vsl local", &local, &config, None)).await.unwrap();

    let volume_id = vs.get_volume_id(&pv(&s(&data))).await.unwrap();
    assert_eq!(volume_id.as_deref(), Some("data-1"));
    assert_eq!(vs.get_volume_id(&pv("/elsewhere/data-1")).await.unwrap(), None, "volumes outside volumeRoot are not claimed");
    let no_path = serde_json::json!({"spec": {"awsElasticBlockStore": {"volumeID": "vol-1"}}}).to_string();
    assert_eq!(vs.get_volume_id(&no_path).await.unwrap(), None);
    assert_eq!(vs.get_volume_info("data-1", "").await.unwrap().volume_type, "directory");

    let tags = vec![("velero.io/backup".to_owned(), "b1".to_owned())];
    let snap = vs.create_snapshot("data-1", "", &tags).await.unwrap();
    std::fs::write(data.join("a.txt"), b"changed after the snapshot").unwrap();
    let restored = vs.create_volume_from_snapshot(&snap, "directory", "", None).await.unwrap();
    let new_pv = vs.set_volume_id(&pv(&s(&data)), &restored).await.unwrap();
    let new_path = serde_json::from_str::<serde_json::Value>(&new_pv).unwrap()["spec"]["hostPath"]["path"].as_str().unwrap().to_owned();
    assert_eq!(new_path, s(&volumes.join(&restored)));
    assert_eq!(std::fs::read(volumes.join(&restored).join("a.txt")).unwrap(), b"hello");
    assert_eq!(std::fs::read(volumes.join(&restored).join("sub/b.bin")).unwrap(), vec![9u8; 2 << 20]);
    assert_eq!(std::fs::read_link(volumes.join(&restored).join("link")).unwrap().to_str(), Some("a.txt"));

    vs.delete_snapshot(&snap).await.unwrap();
    vs.delete_snapshot(&snap).await.unwrap();
    let err = vs.create_volume_from_snapshot(&snap, "directory", "", None).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::NotFound(_)), "{err}");
    let err = vs.create_snapshot("../snapshots", "", &[]).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::InvalidArgument(_)), "{err}");
    let err = vs.get_volume_info("missing", "").await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::NotFound(_)), "{err}");
}
