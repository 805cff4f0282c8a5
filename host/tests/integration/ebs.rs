//! The `aws` volume snapshotter against a real EC2 API (moto), through the sandbox, and in a
//! backup and restore.

use std::collections::BTreeMap;
use std::process::Command;

use coffer::backup::{self, BackupRequest, RestoreRequest};
use coffer::coffer::Coffer;
use coffer::embedded;
use coffer::locations::{self, NewBackupStorageLocation, NewVolumeSnapshotLocation};
use coffer::model::{BackupSpec, Phase, SecretKeySelector};
use coffer::sandbox::{ErrorKind, Limits, VolumeSnapshotterHandle};
use coffer::secrets;
use serde_json::json;

use crate::common::{grants, load, sandbox};
use crate::servers::{Server, moto, venv_bin};

const CREDENTIALS: &str = "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n";

/// Runs boto3 `code` against the moto server with `ec2` bound to us-east-1; returns stdout.
pub fn boto3(server: &Server, code: &str) -> String {
    let script = format!(
        "import boto3, json\nec2 = boto3.client('ec2', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\n{code}",
        server.url
    );
    let out = Command::new(venv_bin().join("python3")).args(["-c", &script]).env_remove("AWS_CA_BUNDLE").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn create_volume(server: &Server) -> String {
    boto3(server, "print(ec2.create_volume(AvailabilityZone='us-east-1a', Size=10, VolumeType='gp3', TagSpecifications=[{'ResourceType': 'volume', 'Tags': [{'Key': 'team', 'Value': 'shop'}]}])['VolumeId'])")
}

pub fn pv(volume_id: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": "pv-ebs", "labels": {"topology.kubernetes.io/zone": "us-east-1a"}},
        "spec": {"capacity": {"storage": "10Gi"}, "awsElasticBlockStore": {"volumeID": format!("aws://us-east-1a/{volume_id}"), "fsType": "ext4"}},
    })
}

#[tokio::test]
async fn ebs_snapshots_volumes_restores_and_deletes() {
    let server = moto();
    let volume = create_volume(&server);
    let sb = sandbox(Limits::default());
    let ebs = load(&sb, embedded::AWS_EBS).await;
    assert_eq!(ebs.manifest().name, "velero.io/aws");
    let mut vs = VolumeSnapshotterHandle::new(&sb, &ebs, grants("vsl ebs", &ebs, &[("region", "us-east-1"), ("ec2Url", &server.url)], Some(CREDENTIALS)))
        .await
        .unwrap();
    assert_eq!(vs.get_volume_id(&pv(&volume).to_string()).await.unwrap().as_deref(), Some(volume.as_str()));
    let csi = json!({"spec": {"csi": {"driver": "ebs.csi.aws.com", "volumeHandle": volume}}});
    assert_eq!(vs.get_volume_id(&csi.to_string()).await.unwrap().as_deref(), Some(volume.as_str()));
    let other = json!({"spec": {"csi": {"driver": "disk.csi.azure.com", "volumeHandle": "x"}}});
    assert_eq!(vs.get_volume_id(&other.to_string()).await.unwrap(), None);
    assert_eq!(vs.get_volume_info(&volume, "us-east-1a").await.unwrap().volume_type, "gp3");

    let tags = vec![("velero.io/backup".to_owned(), "b1".to_owned())];
    let snapshot = vs.create_snapshot(&volume, "us-east-1a", &tags).await.unwrap();
    let seen = boto3(&server, &format!("s = ec2.describe_snapshots(SnapshotIds=['{snapshot}'])['Snapshots'][0]; print(s['VolumeId'], sorted((t['Key'], t['Value']) for t in s['Tags']))"));
    assert_eq!(seen, format!("{volume} [('team', 'shop'), ('velero.io/backup', 'b1')]"), "volume tags merged with Velero's");

    let restored = vs.create_volume_from_snapshot(&snapshot, "gp3", "us-east-1b", None).await.unwrap();
    let seen = boto3(&server, &format!("v = ec2.describe_volumes(VolumeIds=['{restored}'])['Volumes'][0]; print(v['SnapshotId'], v['AvailabilityZone'])"));
    assert_eq!(seen, format!("{snapshot} us-east-1b"));
    let rewritten: serde_json::Value = serde_json::from_str(&vs.set_volume_id(&pv(&volume).to_string(), &restored).await.unwrap()).unwrap();
    assert_eq!(rewritten["spec"]["awsElasticBlockStore"]["volumeID"], format!("aws://us-east-1a/{restored}"));

    vs.delete_snapshot(&snapshot).await.unwrap();
    vs.delete_snapshot(&snapshot).await.unwrap();
    assert_eq!(boto3(&server, &format!("print(len(ec2.describe_snapshots(Filters=[{{'Name': 'snapshot-id', 'Values': ['{snapshot}']}}])['Snapshots']))")), "0");
}

#[tokio::test]
async fn a_volume_in_another_region_fails_naming_volume_and_region() {
    let server = moto();
    let volume = create_volume(&server);
    let sb = sandbox(Limits::default());
    let ebs = load(&sb, embedded::AWS_EBS).await;
    let mut west = VolumeSnapshotterHandle::new(&sb, &ebs, grants("vsl west", &ebs, &[("region", "us-west-1"), ("ec2Url", &server.url)], Some(CREDENTIALS)))
        .await
        .unwrap();
    let err = west.create_snapshot(&volume, "us-east-1a", &[]).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::NotFound(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains(&volume) && text.contains("us-west-1"), "{text}");
    let err = match VolumeSnapshotterHandle::new(&sb, &ebs, grants("vsl none", &ebs, &[("ec2Url", &server.url)], Some(CREDENTIALS))).await {
        Err(e) => e,
        Ok(_) => panic!("a location without region is refused"),
    };
    assert!(err.to_string().contains("missing region in aws configuration"), "{err}");
}

#[tokio::test]
async fn backup_and_restore_with_ebs_snapshots() {
    let server = moto();
    let volume = create_volume(&server);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for d in ["store", "source"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("source/pv.json"), pv(&volume).to_string()).unwrap();
    let coffer = Coffer::open(&root.join("data"), Limits::default()).await.unwrap();
    secrets::create_secret(&coffer, "velero", "cloud-credentials", vec![("cloud".into(), CREDENTIALS.as_bytes().to_vec())]).unwrap();
    let bsl = NewBackupStorageLocation {
        name: "default".into(),
        provider: "aws".into(),
        bucket: "velero".into(),
        config: BTreeMap::from([("s3Url".into(), server.url.clone()), ("region".into(), "us-east-1".into())]),
        default: true,
        ..Default::default()
    };
    assert!(crate::servers::raw_http(server.port, "PUT", "/velero").contains("200"));
    locations::create_backup_storage_location(&coffer, "velero", bsl).await.unwrap();
    let vsl = NewVolumeSnapshotLocation {
        name: "ebs-us-east-1".into(),
        provider: "aws".into(),
        config: BTreeMap::from([("region".into(), "us-east-1".into()), ("ec2Url".into(), server.url.clone())]),
        credential: Some(SecretKeySelector { name: "cloud-credentials".into(), key: "cloud".into() }),
        ..Default::default()
    };
    locations::create_volume_snapshot_location(&coffer, "velero", vsl).await.unwrap();
    let request = BackupRequest {
        name: "b1".into(),
        source: root.join("source"),
        spec: BackupSpec::default(),
        labels: BTreeMap::new(),
        default_snapshot_locations: BTreeMap::new(),
    };
    let b = backup::create_backup(&coffer, "velero", request, &mut |_| {}).await.unwrap();
    assert_eq!(b.status.phase, Some(Phase::Completed), "{b:?}");
    assert_eq!((b.status.volume_snapshots_attempted, b.status.volume_snapshots_completed), (1, 1));
    let request = RestoreRequest::new("r1", "b1", root.join("out"));
    let r = backup::create_restore(&coffer, "velero", request, &mut |_| {}).await.unwrap();
    assert_eq!(r.status.phase, Some(Phase::Completed), "{r:?}");
    let restored: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("out/resources/persistentvolumes/cluster/pv-ebs.json")).unwrap()).unwrap();
    let new_id = restored["spec"]["awsElasticBlockStore"]["volumeID"].as_str().unwrap().to_owned();
    assert!(new_id.starts_with("aws://us-east-1a/vol-") && !new_id.ends_with(&volume), "{new_id}");
    backup::delete_backup(&coffer, "velero", "b1").await.unwrap();
    assert_eq!(boto3(&server, "print(len(ec2.describe_snapshots(OwnerIds=['self'])['Snapshots']))"), "0", "the snapshot went with the backup");
}
