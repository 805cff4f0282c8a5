//! One backup in several storage locations (`--copy-to`): written to each through its own
//! provider and credential, its pod volume data copied into each location's own restic
//! repositories, restorable from any of them, found once by a sync elsewhere, and deleted
//! everywhere.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::azure::{ACCOUNT, KEY, credential as azure_credential, sdk as azure_sdk};
use crate::common::{Cli, dir, example_source, files, s};
use crate::s3::awscli_get;
use std::time::Duration;

use crate::server_api::token;
use crate::gcs::gcs_client;
use crate::servers::{Server, azurite, coffer_server, eventually, fake_gcs, gcs_token_server, moto, raw_http, venv_bin};

/// moto's test credentials, as an AWS credentials file.
pub(crate) const AWS_CREDENTIALS: &str = "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n";

/// A data directory with a filesystem location `primary` (the default), the example
/// manifests as the source, and the secrets for S3 and Azure.
struct Host {
    tmp: tempfile::TempDir,
    cli: Cli,
}

impl Host {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let cli = Cli::new(&tmp.path().join("data"));
        let files = dir(tmp.path(), "files");
        std::fs::write(files.join("aws"), AWS_CREDENTIALS).unwrap();
        std::fs::write(files.join("azure"), azure_credential(KEY)).unwrap();
        cli.ok(&["secret", "create", "aws-creds", "--from-file", &format!("cloud={}", s(&files.join("aws")))]);
        cli.ok(&["secret", "create", "azure-creds", "--from-file", &format!("cloud={}", s(&files.join("azure")))]);
        example_source(tmp.path());
        Host { tmp, cli }
    }

    fn path(&self, name: &str) -> String {
        s(&self.tmp.path().join(name))
    }

    fn filesystem(&self, name: &str) {
        let config = format!("root={}", s(&dir(self.tmp.path(), &format!("store-{name}"))));
        self.cli.ok(&["bsl", "create", name, "--provider", "filesystem", "--bucket", "b", "--config", &config, "--default"]);
    }

    fn s3(&self, name: &str, server: &Server) {
        let config = format!("region=us-east-1,s3Url={}", server.url);
        self.cli.ok(&["bsl", "create", name, "--provider", "aws", "--bucket", "velero", "--config", &config, "--credential", "aws-creds=cloud"]);
    }

    fn gcs(&self, name: &str, server: &Server, tokens: &Server, key: &Path) {
        self.cli.ok(&["secret", "create", "gcs-creds", "--from-file", &format!("cloud={}", s(key))]);
        let config = format!("storeEndpoint={}/storage/v1/,tokenEndpoint={}/token", server.url, tokens.url);
        self.cli.ok(&["bsl", "create", name, "--provider", "gcp", "--bucket", "velero", "--config", &config, "--credential", "gcs-creds=cloud"]);
    }

    fn azure(&self, name: &str, server: &Server) {
        let config = format!("storageAccount={ACCOUNT},storageAccountURI={}", server.url);
        self.cli.ok(&["bsl", "create", name, "--provider", "azure", "--bucket", "velero", "--config", &config, "--credential", "azure-creds=cloud"]);
    }

    fn backup(&self, name: &str, copy_to: &str) -> Value {
        let _ = self.cli.run(&["backup", "create", name, "--source", &self.path("source"), "--copy-to", copy_to, "--wait"]);
        self.cli.json(&["backup", "get", name])
    }

    /// Restores `backup` from `location` into a fresh directory; its files.
    fn restore(&self, backup: &str, location: &str) -> BTreeMap<String, Vec<u8>> {
        let target = self.path(&format!("restored-{backup}-{location}"));
        let name = format!("{backup}-from-{location}");
        self.cli.ok(&["restore", "create", &name, "--from-backup", backup, "--target", &target, "--storage-location", location, "--wait"]);
        assert_eq!(self.cli.json(&["restore", "get", &name])["spec"]["storageLocation"], location);
        files(Path::new(&target))
    }
}

/// moto, with an empty bucket `velero`.
pub(crate) fn moto_bucket() -> Server {
    let server = moto();
    assert!(raw_http(server.port, "PUT", "/velero").contains("200"), "bucket created");
    server
}

/// How many keys are under `prefix` in moto's bucket `velero` (listed with boto3).
fn moto_keys(server: &Server, prefix: &str) -> usize {
    let script = format!(
        "import boto3\ns3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\nprint(s3.list_objects_v2(Bucket='velero', Prefix='{prefix}')['KeyCount'])",
        server.url
    );
    let out = std::process::Command::new(venv_bin().join("python3")).args(["-c", &script]).env_remove("AWS_CA_BUNDLE").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn a_backup_copied_to_s3_azure_and_gcs_restores_identically_from_each_and_is_deleted_everywhere() {
    let host = Host::new();
    let (s3, blob) = (moto_bucket(), azurite());
    azure_sdk(&blob, "service.create_container('velero')");
    let (gcs, tokens) = (fake_gcs(&dir(host.tmp.path(), "gcs")), gcs_token_server(&dir(host.tmp.path(), "keys")));
    gcs_client(&gcs, "client.create_bucket('velero')");
    host.filesystem("primary");
    host.s3("dr-west", &s3);
    host.azure("offsite", &blob);
    host.gcs("gcs", &gcs, &tokens, &host.tmp.path().join("keys/key.json"));

    let backup = host.backup("b1", "dr-west,offsite,gcs");
    assert_eq!(backup["status"]["phase"], "Completed", "{backup:#}");
    let copies: Vec<(String, String)> = backup["status"]["copies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["storageLocation"].as_str().unwrap().to_owned(), c["phase"].as_str().unwrap().to_owned()))
        .collect();
    let completed = |name: &str| (name.to_owned(), "Completed".to_owned());
    assert_eq!(copies, [completed("dr-west"), completed("gcs"), completed("offsite")]);
    let described = host.cli.ok(&["backup", "describe", "b1"]);
    assert!(described.contains("Copies:\n  dr-west:  Completed\n  offsite:  Completed\n  gcs:  Completed\n"), "{described}");

    // Each copy is Velero's layout, readable by the cloud's own tools, and says where it is.
    let out = dir(host.tmp.path(), "awscli");
    let metadata: Value = serde_json::from_slice(&awscli_get(&s3.url, "velero/backups/b1/velero-backup.json", &out)).unwrap();
    assert_eq!((metadata["metadata"]["name"].as_str(), metadata["spec"]["storageLocation"].as_str()), (Some("b1"), Some("dr-west")));
    assert_eq!(metadata["status"]["phase"], "Completed");
    let listed = azure_sdk(&blob, "print(sorted(b.name for b in service.get_container_client('velero').list_blobs()))");
    for object in ["b1-logs.gz", "b1-resource-list.json.gz", "b1.tar.gz", "velero-backup.json"] {
        assert!(listed.contains(&format!("backups/b1/{object}")), "{listed}");
    }

    // Restored from any location, the same files.
    let from_primary = host.restore("b1", "primary");
    assert!(!from_primary.is_empty());
    assert_eq!(host.restore("b1", "dr-west"), from_primary);
    assert_eq!(host.restore("b1", "offsite"), from_primary);
    assert_eq!(host.restore("b1", "gcs"), from_primary);
    assert_eq!(moto_keys(&s3, "backups/b1/"), 7, "the copy: the tarball, five records and velero-backup.json");
    assert!(moto_keys(&s3, "restores/b1-from-dr-west/") > 0, "the restore's files go where it read from");

    // A location that cannot take a copy is refused at creation, naming it.
    let refused = |copy_to: &str, says: &str| {
        let backup = host.backup(&format!("bad-{}", copy_to.replace(',', "-")), copy_to);
        assert_eq!(backup["status"]["phase"], "FailedValidation", "{backup:#}");
        let errors = backup["status"]["validationErrors"].to_string();
        assert!(errors.contains(says), "{copy_to}: {errors}");
    };
    refused("nowhere", "backup storage location nowhere to copy to was not found");
    refused("primary", "backup storage location primary is the backup's own");
    refused("dr-west,dr-west", "dr-west is named more than once");
    let closed = format!("region=us-east-1,s3Url=http://127.0.0.1:{}", crate::servers::free_port());
    host.cli.ok(&["bsl", "create", "down", "--provider", "aws", "--bucket", "velero", "--config", &closed, "--credential", "aws-creds=cloud"]);
    assert_eq!(host.cli.json(&["bsl", "get", "down"])["status"]["phase"], "Unavailable");
    refused("down", "copied to backup storage location down because it is in Unavailable status");
    let archive = format!("root={}", s(&dir(host.tmp.path(), "archive")));
    host.cli.ok(&["bsl", "create", "archive", "--provider", "filesystem", "--bucket", "b", "--config", &archive, "--access-mode", "ReadOnly"]);
    refused("archive", "copied to backup storage location archive because it is currently in read-only mode");
    let err = host.cli.fails(&["restore", "create", "r-x", "--from-backup", "b1", "--target", &host.path("x"), "--storage-location", "nowhere", "--wait"]);
    assert!(err.contains("backup b1 is not in backup storage location nowhere: it is in primary, dr-west, gcs, offsite"), "{err}");

    // A schedule's backups are copied as its template says.
    host.cli.ok(&["schedule", "create", "hourly", "--schedule", "@every 1h", "--source", &host.path("source"), "--copy-to", "gcs", "--skip-immediately"]);
    assert_eq!(host.cli.json(&["schedule", "get", "hourly"])["spec"]["template"]["copyTo"], serde_json::json!(["gcs"]));

    // Deleting the backup deletes every copy, and the restores' files with them.
    host.cli.ok(&["backup", "delete", "b1", "--confirm"]);
    assert!(host.cli.fails(&["backup", "get", "b1"]).contains("not found"));
    assert_eq!(moto_keys(&s3, "backups/b1/") + moto_keys(&s3, "restores/"), 0);
    let listed = azure_sdk(&blob, "print(sorted(b.name for b in service.get_container_client('velero').list_blobs()))");
    assert_eq!(listed, "[]");
    assert_eq!(gcs_client(&gcs, "print(len(list(client.list_blobs('velero'))))"), "0");
    assert!(files(&host.tmp.path().join("store-primary")).is_empty());
}

#[test]
fn a_copy_that_cannot_be_written_fails_alone_and_another_host_syncs_the_copy_once() {
    let host = Host::new();
    let s3 = moto_bucket();
    let mut gone = moto_bucket();
    host.filesystem("primary");
    host.s3("dr-west", &s3);
    host.s3("gone", &gone);
    assert!(gone.terminate(std::time::Duration::from_secs(10)));

    // The copy to the location that went away fails, naming it; the backup and its other
    // copy are whole.
    let backup = host.backup("b1", "dr-west,gone");
    assert_eq!(backup["status"]["phase"], "PartiallyFailed", "{backup:#}");
    let copies = &backup["status"]["copies"];
    assert_eq!(copies[0]["phase"], "Completed");
    assert_eq!((copies[1]["storageLocation"].as_str(), copies[1]["phase"].as_str()), (Some("gone"), Some("Failed")));
    assert!(copies[1]["message"].as_str().unwrap().contains("error copying the backup to backup storage location gone"), "{copies}");
    let described = host.cli.ok(&["backup", "describe", "b1"]);
    assert!(described.contains("  gone:  Failed: error copying the backup to backup storage location gone"), "{described}");
    let log = String::from_utf8_lossy(&host.cli.command(&["backup", "logs", "b1"]).output().unwrap().stdout).into_owned();
    assert!(log.contains("error copying the backup to backup storage location gone"), "{log}");
    let from_primary = host.restore("b1", "primary");
    assert_eq!(host.restore("b1", "dr-west"), from_primary);

    // A server that sees only the copy, under another name, finds the backup once and restores it.
    let (two, tenants) = (host.tmp.path().join("two"), dir(host.tmp.path(), "tenants"));
    let args = ["--tenant-root", &s(&tenants), "--backup-sync-period", "1s", "--allow-endpoint", "127.0.0.1"];
    let second = coffer_server(&two, &args);
    let other = Cli::remote(&second.server.url, &token(&two, "acme", "t"));
    other.ok(&["secret", "create", "aws-creds", "--from-file", &format!("cloud={}", host.path("files/aws"))]);
    let config = format!("region=us-east-1,s3Url={}", s3.url);
    other.ok(&["bsl", "create", "west", "--provider", "aws", "--bucket", "velero", "--config", &config, "--credential", "aws-creds=cloud"]);
    let synced = eventually(Duration::from_secs(30), "sync", || {
        let listed = other.json(&["backup", "get"]);
        let items = listed["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    });
    assert_eq!(synced.len(), 1, "{synced:#?}");
    assert_eq!((synced[0]["metadata"]["name"].as_str(), synced[0]["spec"]["storageLocation"].as_str()), (Some("b1"), Some("west")));
    assert!(synced[0]["status"].get("copies").is_none(), "the copies it records are the other host's locations");
    other.ok(&["restore", "create", "r1", "--from-backup", "b1", "--target", "restored", "--wait"]);
    assert_eq!(files(&tenants.join("acme/restored")), from_primary);
    // The first host's own sync of the copy location does not show the backup twice.
    let mine = host.cli.json(&["backup", "get"]);
    assert_eq!(mine["items"].as_array().unwrap().iter().filter(|b| b["metadata"]["name"] == "b1").count(), 1);

    assert_eq!(moto_keys(&s3, "backups/b1/"), 7, "the copy: the tarball, five records and velero-backup.json");
    // Deleting it reaches every location it can; what it cannot is reported, and the backup
    // stays Deleting to be retried.
    let err = host.cli.fails(&["backup", "delete", "b1", "--confirm"]);
    assert!(err.contains("backup storage location gone"), "{err}");
    assert_eq!(moto_keys(&s3, "backups/b1/"), 0, "the reachable copy is deleted");
    assert_eq!(host.cli.json(&["backup", "get", "b1"])["status"]["phase"], "Deleting");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let coffer = rt.block_on(coffer::coffer::Coffer::open(&host.cli.data_dir, coffer::sandbox::Limits::default())).unwrap();
    let due = coffer::controllers::due_for_deletion(&coffer, time::OffsetDateTime::now_utc()).unwrap();
    assert_eq!(due.iter().map(|b| b.metadata.meta.name.as_str()).collect::<Vec<_>>(), ["b1"], "the garbage collector retries it");
    drop(coffer);

    // Once the unreachable location itself is deleted, the backup's deletion completes (its
    // copy there is left, as Velero leaves a deleted location's backups).
    host.cli.ok(&["bsl", "delete", "gone", "--confirm"]);
    host.cli.ok(&["backup", "delete", "b1", "--confirm"]);
    assert!(host.cli.fails(&["backup", "get", "b1"]).contains("not found"));
}

/// The pod volume backup records of backup `name` in moto's bucket `velero`.
fn moto_pod_volume_backups(server: &Server, name: &str, out: &Path) -> Vec<Value> {
    let gz = awscli_get(&server.url, &format!("velero/backups/{name}/{name}-podvolumebackups.json.gz"), out);
    serde_json::from_reader(flate2::read::GzDecoder::new(&gz[..])).unwrap()
}

#[test]
fn pod_volume_data_is_copied_into_the_copy_locations_own_repository_and_restores_from_there() {
    let host = Host::new();
    let s3 = moto_bucket();
    host.filesystem("primary");
    host.s3("dr-west", &s3);
    let root = host.tmp.path();
    let volumes = dir(root, "volumes");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir(&volumes, "data").join("db"), &data).unwrap();
    std::fs::write(dir(&volumes, "logs").join("today.log"), b"log lines").unwrap();
    let source = s(&crate::fsb::manifests(root, &volumes, serde_json::json!({"backup.velero.io/backup-volumes": "data"})));
    host.cli.ok(&["backup", "create", "v1", "--source", &source, "--copy-to", "dr-west", "--wait"]);
    let backup = host.cli.json(&["backup", "get", "v1"]);
    assert_eq!(backup["status"]["phase"], "Completed", "{backup:#}");
    assert_eq!(backup["status"]["copies"][0]["phase"], "Completed", "{backup:#}");

    // The copy's record names its own location, repository and snapshot.
    let gz = std::fs::read(root.join("store-primary/b/backups/v1/v1-podvolumebackups.json.gz")).unwrap();
    let own: Vec<Value> = serde_json::from_reader(flate2::read::GzDecoder::new(&gz[..])).unwrap();
    let out = dir(root, "awscli");
    let copied = moto_pod_volume_backups(&s3, "v1", &out);
    let repository = format!("s3:{}/velero/restic/app", s3.url);
    assert_eq!(copied.len(), 1, "{copied:?}");
    assert_eq!(copied[0]["spec"]["backupStorageLocation"], "dr-west");
    assert_eq!(copied[0]["spec"]["repoIdentifier"].as_str(), Some(repository.as_str()));
    let (original, copy) = (own[0]["status"]["snapshotID"].as_str().unwrap(), copied[0]["status"]["snapshotID"].as_str().unwrap());
    assert_ne!(original, copy, "a snapshot of the copy's own repository");
    assert_eq!(host.cli.json(&["repo", "get", "app-dr-west-restic"])["status"]["phase"], "Ready");

    // restic reads the copy in the copy's repository, whole, and knows what it is a copy of.
    let password = host.cli.ok(&["repo", "password", "app-dr-west-restic"]).trim_end().to_owned();
    let env = [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")];
    let restic = |args: &[&str]| crate::fsb::restic(&repository, password.as_bytes(), &env, args);
    let listed: Vec<Value> = serde_json::from_str(&restic(&["snapshots", "--json"])).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!((listed[0]["id"].as_str(), listed[0]["original"].as_str()), (Some(copy), Some(original)));
    assert!(listed[0]["tags"].as_array().unwrap().iter().any(|t| t == "backup=v1"), "{listed:?}");
    assert!(restic(&["check", "--read-data"]).contains("no errors were found"));

    // With the backup's own repository gone, the copy still restores the volume.
    std::fs::remove_dir_all(root.join("store-primary/b/restic")).unwrap();
    let target = root.join("restored");
    host.cli.ok(&["restore", "create", "r1", "--from-backup", "v1", "--target", &s(&target), "--storage-location", "dr-west", "--wait"]);
    let restored = host.cli.json(&["restore", "get", "r1"]);
    assert_eq!(restored["status"]["phase"], "Completed", "{restored:#}");
    assert_eq!(std::fs::read(target.join("volumes/app/data/db")).unwrap(), data);

    // A copy whose volume data cannot be copied fails alone, naming namespace and location,
    // and leaves nothing there: here another repository with another password holds the place.
    let other = format!("s3:{}/velero/other/restic/app", s3.url);
    crate::fsb::restic(&other, b"not the tenant's", &env, &["init"]);
    let config = format!("region=us-east-1,s3Url={}", s3.url);
    host.cli.ok(&["bsl", "create", "other", "--provider", "aws", "--bucket", "velero", "--prefix", "other", "--config", &config, "--credential", "aws-creds=cloud"]);
    host.cli.ok(&["backup", "create", "v2", "--source", &source, "--copy-to", "other", "--wait"]);
    let backup = host.cli.json(&["backup", "get", "v2"]);
    assert_eq!(backup["status"]["phase"], "PartiallyFailed", "{backup:#}");
    let message = backup["status"]["copies"][0]["message"].as_str().unwrap();
    assert!(message.contains("error copying the pod volume data of namespace app to backup storage location other") && message.contains("password"), "{message}");
    assert_eq!(moto_keys(&s3, "other/backups/"), 0, "nothing of the failed copy");

    // Deleting the backup forgets its snapshot in the copy's repository too.
    host.cli.ok(&["backup", "delete", "v1", "--confirm"]);
    let listed: Vec<Value> = serde_json::from_str(&restic(&["snapshots", "--json"])).unwrap();
    assert!(listed.is_empty(), "{listed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_location_deleted_while_the_backup_runs_gets_nothing_and_the_backup_stays_whole() {
    use coffer::backup::{self, BackupRequest};
    use coffer::locations::{self, NewBackupStorageLocation};
    use coffer::model::{BackupSpec, Phase};

    let tmp = tempfile::tempdir().unwrap();
    let coffer = coffer::coffer::Coffer::open(&tmp.path().join("data"), coffer::sandbox::Limits::default()).await.unwrap();
    let (store, copy) = (dir(tmp.path(), "store"), dir(tmp.path(), "copy"));
    locations::create_backup_storage_location(&coffer, "ns", crate::common::filesystem_bsl("primary", &store)).await.unwrap();
    let new = NewBackupStorageLocation { default: false, ..crate::common::filesystem_bsl("gone", &copy) };
    locations::create_backup_storage_location(&coffer, "ns", new).await.unwrap();
    let source = example_source(tmp.path());
    let request = BackupRequest {
        name: "b1".into(),
        source,
        spec: BackupSpec { copy_to: vec!["gone".into()], ..Default::default() },
        labels: BTreeMap::new(),
        default_snapshot_locations: BTreeMap::new(),
    };
    // The location is deleted at the run's first progress report, after it was accepted.
    let mut deleted = false;
    let done = backup::create_backup(&coffer, "ns", request, &mut |_| {
        if !std::mem::replace(&mut deleted, true) {
            locations::delete_backup_storage_location(&coffer, "ns", "gone").unwrap();
        }
    })
    .await
    .unwrap();
    assert!(deleted);
    assert_eq!(done.status.phase, Some(Phase::PartiallyFailed), "{:?}", done.status);
    let failed = &done.status.copies[0];
    assert_eq!((failed.storage_location.as_str(), failed.phase), ("gone", Some(Phase::Failed)));
    assert!(failed.message.contains("backup storage location gone: it was deleted while the backup ran"), "{}", failed.message);
    assert!(files(&copy).is_empty(), "nothing written to the deleted location: {:?}", files(&copy).keys());
    assert!(store.join("b/backups/b1/velero-backup.json").exists(), "the backup itself is whole");
    // It deletes, passing over the location that is gone.
    backup::delete_backup(&coffer, "ns", "b1").await.unwrap();
    assert!(files(&store).is_empty());
}
