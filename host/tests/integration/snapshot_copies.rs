//! Volume snapshots copied to other snapshot locations (`--copy-snapshots-to`): EBS snapshots
//! copied across regions on moto with `CopySnapshot`, directory snapshots copied between
//! `local` locations; volumes restored from a copy, by name or when the original's location
//! is Unavailable; and every copy deleted with the backup.

use std::path::Path;

use serde_json::Value;

use crate::common::{Cli, dir, s};
use crate::ebs::{boto3, create_volume, pv};
use crate::servers::moto;

const AWS_CREDENTIALS: &str = "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n";

/// The backup's snapshot records, as its filesystem location holds them.
fn snapshot_records(store: &Path, backup: &str) -> Vec<Value> {
    let gz = std::fs::read(store.join(format!("b/backups/{backup}/{backup}-volumesnapshots.json.gz"))).unwrap();
    let records: Value = serde_json::from_reader(flate2::read::GzDecoder::new(&gz[..])).unwrap();
    records.as_array().unwrap().clone()
}

/// A PersistentVolume document restored into `target`.
fn restored_pv(target: &str, name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(Path::new(target).join(format!("resources/persistentvolumes/cluster/{name}.json"))).unwrap()).unwrap()
}

/// Runs boto3 `code` with `ec2` bound to us-west-1.
fn boto3_west(server: &crate::servers::Server, code: &str) -> String {
    boto3(server, &format!("ec2 = boto3.client('ec2', endpoint_url='{}', region_name='us-west-1', aws_access_key_id='testing', aws_secret_access_key='testing')\n{code}", server.url))
}

#[test]
fn an_ebs_snapshot_copied_to_another_region_restores_there_and_is_deleted_with_the_backup() {
    let server = moto();
    let volume = create_volume(&server);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cli = Cli::new(&root.join("data"));
    let files = dir(root, "files");
    std::fs::write(files.join("aws"), AWS_CREDENTIALS).unwrap();
    std::fs::write(files.join("broken"), "not a credentials file").unwrap();
    cli.ok(&["secret", "create", "aws-creds", "--from-file", &format!("cloud={}", s(&files.join("aws")))]);
    cli.ok(&["secret", "create", "broken", "--from-file", &format!("cloud={}", s(&files.join("broken")))]);
    let store = dir(root, "store");
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--default"]);
    for (name, region) in [("ebs-east", "us-east-1"), ("ebs-west", "us-west-1")] {
        let config = format!("region={region},ec2Url={}", server.url);
        cli.ok(&["vsl", "create", name, "--provider", "aws", "--config", &config, "--credential", "aws-creds=cloud"]);
    }
    let source = dir(root, "source");
    std::fs::write(source.join("pv.json"), pv(&volume).to_string()).unwrap();
    let src = s(&source);

    // Refused at creation, each naming the location at fault.
    let refused = |name: &str, flags: &[&str]| {
        let mut args = vec!["backup", "create", name, "--source", &src];
        args.extend_from_slice(flags);
        let _ = cli.run(&args);
        let b = cli.json(&["backup", "get", name]);
        assert_eq!(b["status"]["phase"], "FailedValidation", "{b}");
        b["status"]["validationErrors"].to_string()
    };
    let errors = refused("own", &["--volume-snapshot-locations", "ebs-east", "--copy-snapshots-to", "ebs-east"]);
    assert!(errors.contains("volume snapshot location ebs-east takes the backup's snapshots"), "{errors}");
    let errors = refused("unknown", &["--volume-snapshot-locations", "ebs-east", "--copy-snapshots-to", "ebs-nowhere"]);
    assert!(errors.contains("volume snapshot location ebs-nowhere to copy snapshots to was not found"), "{errors}");
    let errors = refused("twice", &["--volume-snapshot-locations", "ebs-east", "--copy-snapshots-to", "ebs-west,ebs-west"]);
    assert!(errors.contains("ebs-west is named more than once"), "{errors}");
    // Velero's rule for taking snapshots holds: with two aws locations, one must be named.
    let errors = refused("ambiguous", &["--copy-snapshots-to", "ebs-west"]);
    assert!(errors.contains("provider aws has more than one possible volume snapshot location"), "{errors}");

    // The backup: snapshot in us-east-1, copied to us-west-1.
    cli.ok(&["backup", "create", "b1", "--source", &src, "--volume-snapshot-locations", "ebs-east", "--copy-snapshots-to", "ebs-west", "--wait"]);
    let b = cli.json(&["backup", "get", "b1"]);
    assert_eq!(b["status"]["phase"], "Completed", "{b}");
    assert_eq!((b["status"]["volumeSnapshotsAttempted"].as_u64(), b["status"]["volumeSnapshotsCompleted"].as_u64()), (Some(1), Some(1)), "copies are extra");
    let records = snapshot_records(&store, "b1");
    assert_eq!(records.len(), 2, "{records:?}");
    let (original, copy) = (&records[0], &records[1]);
    assert_eq!((original["spec"]["location"].as_str(), original["spec"].get("copiedFrom")), (Some("ebs-east"), None), "the original first: {original}");
    assert_eq!(copy["spec"]["location"], "ebs-west");
    assert_eq!(copy["spec"]["copiedFrom"], "ebs-east");
    assert_eq!(copy["spec"]["providerVolumeID"], volume.as_str());
    assert_eq!(copy["spec"]["volumeAZ"], "us-west-1a", "the same zone letter, in the copy's region");
    assert_eq!(copy["status"]["phase"], "Completed");
    let (original_id, copy_id) = (original["status"]["providerSnapshotID"].as_str().unwrap(), copy["status"]["providerSnapshotID"].as_str().unwrap());
    assert_ne!(original_id, copy_id);
    // EC2 holds the copy in us-west-1, with Velero's tags.
    let seen = boto3_west(&server, &format!("s = ec2.describe_snapshots(SnapshotIds=['{copy_id}'])['Snapshots'][0]; print(sorted((t['Key'], t['Value']) for t in s['Tags'] if t['Key'].startswith('velero.io/')))"));
    assert_eq!(seen, "[('velero.io/backup', 'b1'), ('velero.io/pv', 'pv-ebs'), ('velero.io/storage-location', 'default')]");
    let described = cli.ok(&["backup", "describe", "b1", "--details"]);
    assert!(described.contains("Snapshot Copies To:          ebs-west"), "{described}");
    assert!(described.contains(&format!("Snapshot ID:        {copy_id}")) && described.contains("Copy Of:            the snapshot in ebs-east (Completed)"), "{described}");

    // Restored from the copy, by name: the volume is made in us-west-1 and the PV names it.
    let west = s(&root.join("restored-west"));
    cli.ok(&["restore", "create", "r-west", "--from-backup", "b1", "--target", &west, "--volume-snapshot-locations", "ebs-west", "--wait"]);
    assert_eq!(cli.json(&["restore", "get", "r-west"])["status"]["phase"], "Completed");
    let restored = restored_pv(&west, "pv-ebs");
    let volume_id = restored["spec"]["awsElasticBlockStore"]["volumeID"].as_str().unwrap().to_owned();
    let new_volume = volume_id.strip_prefix("aws://us-west-1a/").unwrap_or_else(|| panic!("{volume_id}"));
    assert_eq!(restored["metadata"]["labels"]["topology.kubernetes.io/zone"], "us-west-1a");
    let seen = boto3_west(&server, &format!("v = ec2.describe_volumes(VolumeIds=['{new_volume}'])['Volumes'][0]; print(v['SnapshotId'], v['AvailabilityZone'])"));
    assert_eq!(seen, format!("{copy_id} us-west-1a"));
    assert!(cli.ok(&["restore", "logs", "r-west"]).contains(&format!("from snapshot {copy_id} (a copy, in volume snapshot location ebs-west, of the snapshot in ebs-east)")));
    // Restored by default from the original, in us-east-1.
    let east = s(&root.join("restored-east"));
    cli.ok(&["restore", "create", "r-east", "--from-backup", "b1", "--target", &east, "--wait"]);
    let volume_id = restored_pv(&east, "pv-ebs")["spec"]["awsElasticBlockStore"]["volumeID"].as_str().unwrap().to_owned();
    assert!(volume_id.starts_with("aws://us-east-1a/vol-"), "{volume_id}");

    // The original's location Unavailable: a restore falls back to the copy by itself.
    cli.ok(&["vsl", "set", "ebs-east", "--credential", "broken=cloud"]);
    assert_eq!(cli.json(&["vsl", "get", "ebs-east"])["status"]["phase"], "Unavailable");
    let auto = s(&root.join("restored-auto"));
    cli.ok(&["restore", "create", "r-auto", "--from-backup", "b1", "--target", &auto, "--wait"]);
    assert_eq!(cli.json(&["restore", "get", "r-auto"])["status"]["phase"], "Completed");
    let volume_id = restored_pv(&auto, "pv-ebs")["spec"]["awsElasticBlockStore"]["volumeID"].as_str().unwrap().to_owned();
    assert!(volume_id.starts_with("aws://us-west-1a/vol-"), "{volume_id}");
    // A location named that holds no snapshot of the volume is an error naming where they are.
    cli.ok(&["vsl", "create", "ebs-central", "--provider", "aws", "--config", &format!("region=eu-central-1,ec2Url={}", server.url), "--credential", "aws-creds=cloud"]);
    let none = s(&root.join("restored-none"));
    let _ = cli.run(&["restore", "create", "r-none", "--from-backup", "b1", "--target", &none, "--volume-snapshot-locations", "ebs-central", "--wait"]);
    assert_eq!(cli.json(&["restore", "get", "r-none"])["status"]["phase"], "PartiallyFailed");
    let log = cli.ok(&["restore", "logs", "r-none"]);
    assert!(log.contains("persistent volume pv-ebs has no completed snapshot in volume snapshot locations ebs-central; its snapshots are in ebs-east, ebs-west"), "{log}");
    let _ = cli.run(&["restore", "create", "r-unknown", "--from-backup", "b1", "--target", &none, "--volume-snapshot-locations", "ebs-mars"]);
    let r = cli.json(&["restore", "get", "r-unknown"]);
    assert_eq!(r["status"]["phase"], "FailedValidation");
    assert!(r["status"]["validationErrors"].to_string().contains("volume snapshot location ebs-mars to restore volumes from was not found"), "{r}");

    // Deleting the backup deletes the snapshot and its copy, each in its region.
    cli.ok(&["vsl", "set", "ebs-east", "--credential", "aws-creds=cloud"]);
    cli.ok(&["backup", "delete", "b1", "--confirm"]);
    let count = |code: &str| boto3(&server, code);
    assert_eq!(count(&format!("print(len(ec2.describe_snapshots(Filters=[{{'Name': 'snapshot-id', 'Values': ['{original_id}']}}])['Snapshots']))")), "0");
    assert_eq!(boto3_west(&server, &format!("print(len(ec2.describe_snapshots(Filters=[{{'Name': 'snapshot-id', 'Values': ['{copy_id}']}}])['Snapshots']))")), "0");
}

#[test]
fn a_directory_snapshot_is_copied_to_another_local_location_and_restored_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cli = Cli::new(&root.join("data"));
    let store = dir(root, "store");
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--default"]);
    let volumes = dir(root, "volumes");
    let data = dir(&volumes, "data-1");
    std::fs::write(data.join("a.txt"), b"hello").unwrap();
    std::fs::create_dir(data.join("sub")).unwrap();
    std::fs::write(data.join("sub/b.bin"), vec![7u8; 1 << 20]).unwrap();
    let (near, far) = (dir(root, "snapshots-near"), dir(root, "snapshots-far"));
    for (name, snapshots) in [("near", &near), ("far", &far)] {
        let config = format!("volumeRoot={},snapshotDir={}", s(&volumes), s(snapshots));
        cli.ok(&["vsl", "create", name, "--provider", "local", "--config", &config]);
    }
    let source = dir(root, "source");
    let pv = serde_json::json!({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-local"},
        "spec": {"capacity": {"storage": "1Gi"}, "hostPath": {"path": s(&data)}},
    });
    std::fs::write(source.join("pv.json"), pv.to_string()).unwrap();

    cli.ok(&["backup", "create", "b1", "--source", &s(&source), "--volume-snapshot-locations", "near", "--copy-snapshots-to", "far", "--wait"]);
    assert_eq!(cli.json(&["backup", "get", "b1"])["status"]["phase"], "Completed");
    let records = snapshot_records(&store, "b1");
    let copy_id = records[1]["status"]["providerSnapshotID"].as_str().unwrap().to_owned();
    assert_eq!((records[1]["spec"]["location"].as_str(), records[1]["spec"]["copiedFrom"].as_str()), (Some("far"), Some("near")));
    assert_eq!(std::fs::read(far.join(&copy_id).join("data/sub/b.bin")).unwrap(), vec![7u8; 1 << 20], "the copy is whole in the far directory");
    // The copying instance only read the source: the near directory holds its one snapshot.
    assert_eq!(std::fs::read_dir(&near).unwrap().count(), 1);

    std::fs::write(data.join("a.txt"), b"changed after the backup").unwrap();
    let target = s(&root.join("restored"));
    cli.ok(&["restore", "create", "r1", "--from-backup", "b1", "--target", &target, "--volume-snapshot-locations", "far", "--wait"]);
    let restored = restored_pv(&target, "pv-local");
    let path = restored["spec"]["hostPath"]["path"].as_str().unwrap().to_owned();
    assert!(path.starts_with(&s(&volumes)) && path.contains(&copy_id), "made from the copy: {path}");
    assert_eq!(std::fs::read(Path::new(&path).join("a.txt")).unwrap(), b"hello");

    cli.ok(&["backup", "delete", "b1", "--confirm"]);
    assert_eq!(std::fs::read_dir(&near).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&far).unwrap().count(), 0);

    // A copy that fails leaves the backup PartiallyFailed, naming the location; the snapshot
    // itself stands and restores.
    std::fs::remove_dir(&far).unwrap();
    std::fs::write(&far, b"no longer a directory").unwrap();
    let _ = cli.run(&["backup", "create", "b2", "--source", &s(&source), "--volume-snapshot-locations", "near", "--copy-snapshots-to", "far", "--wait"]);
    let b = cli.json(&["backup", "get", "b2"]);
    assert_eq!((b["status"]["phase"].as_str(), b["status"]["errors"].as_u64()), (Some("PartiallyFailed"), Some(1)), "{b}");
    let records = snapshot_records(&store, "b2");
    assert_eq!((records[0]["status"]["phase"].as_str(), records[1]["status"]["phase"].as_str()), (Some("Completed"), Some("Failed")));
    let log = cli.ok(&["backup", "logs", "b2"]);
    assert!(log.contains("to volume snapshot location far: error initializing volume snapshotter"), "{log}");
    let target = s(&root.join("restored-2"));
    cli.ok(&["restore", "create", "r2", "--from-backup", "b2", "--target", &target, "--wait"]);
    let path = restored_pv(&target, "pv-local")["spec"]["hostPath"]["path"].as_str().unwrap().to_owned();
    assert_eq!(std::fs::read(Path::new(&path).join("a.txt")).unwrap(), b"changed after the backup");
}
