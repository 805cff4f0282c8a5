//! Client-side encryption (`--encryption-key` on a backup storage location): every object but
//! `velero-backup.json` is an age file the stock `age` tool opens; Coffer decrypts them
//! transparently for downloads, logs, details and restores; keys rotate; a missing or wrong
//! key is an error naming the location and the recipient, never garbage; copies carry the
//! same ciphertext to locations holding the key.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{Cli, dir, example_source, files, s};

const AGE_HEADER: &[u8] = b"age-encryption.org/v1\n";

/// A data directory with the example manifests as the source.
struct Host {
    tmp: tempfile::TempDir,
    cli: Cli,
}

impl Host {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let cli = Cli::new(&tmp.path().join("data"));
        example_source(tmp.path());
        Host { tmp, cli }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// A new age identity file (`age-keygen`), and its recipient.
    fn keygen(&self, name: &str) -> (PathBuf, String) {
        let file = self.path(name);
        let out = Command::new("age-keygen").arg("-o").arg(&file).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = Command::new("age-keygen").arg("-y").arg(&file).output().unwrap();
        (file, String::from_utf8(out.stdout).unwrap().trim().to_owned())
    }

    /// Secret `name` with key `age` holding the identity files, concatenated.
    fn key_secret(&self, name: &str, identities: &[&Path]) {
        let text: String = identities.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
        let file = self.path(&format!("{name}.keys"));
        std::fs::write(&file, text).unwrap();
        self.cli.ok(&["secret", "create", name, "--from-file", &format!("age={}", s(&file))]);
    }

    /// A filesystem location `name` storing under `store-<name>`, with `extra` flags.
    fn location(&self, name: &str, extra: &[&str]) -> PathBuf {
        let store = dir(self.tmp.path(), &format!("store-{name}"));
        let config = format!("root={}", s(&store));
        let mut args = vec!["bsl", "create", name, "--provider", "filesystem", "--bucket", "b", "--config", &config];
        args.extend_from_slice(extra);
        self.cli.ok(&args);
        store
    }

    fn backup(&self, name: &str, flags: &[&str]) -> Value {
        let source = s(&self.path("source"));
        let mut args = vec!["backup", "create", name, "--source", &source, "--wait"];
        args.extend_from_slice(flags);
        let _ = self.cli.run(&args);
        self.cli.json(&["backup", "get", name])
    }

    fn restore(&self, name: &str, backup: &str, flags: &[&str]) -> std::collections::BTreeMap<String, Vec<u8>> {
        let target = s(&self.path(&format!("restored-{name}")));
        let mut args = vec!["restore", "create", name, "--from-backup", backup, "--target", &target, "--wait"];
        args.extend_from_slice(flags);
        self.cli.ok(&args);
        files(Path::new(&target))
    }
}

/// `age -d -i identity file`: the plaintext, or the tool's error.
fn age_decrypt(identity: &Path, file: &Path) -> Result<Vec<u8>, String> {
    let out = Command::new("age").arg("-d").arg("-i").arg(identity).arg(file).output().unwrap();
    if out.status.success() { Ok(out.stdout) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

#[test]
fn an_encrypted_location_holds_age_files_that_coffer_and_the_age_tool_open() {
    let host = Host::new();
    let (old, old_recipient) = host.keygen("old.key");
    host.key_secret("keys", &[&old]);
    let vault = host.location("vault", &["--encryption-key", "keys=age"]);
    let open = host.location("open", &[]);

    let b = host.backup("b1", &["--storage-location", "vault"]);
    assert_eq!(b["status"]["phase"], "Completed", "{b:#}");
    assert_eq!(b["status"]["encryption"]["recipient"], old_recipient.as_str());
    assert_eq!(host.backup("plain", &["--storage-location", "open"])["status"]["phase"], "Completed");

    // velero-backup.json stays readable, and says to whom the backup is encrypted; every
    // other object is an age file.
    let objects = vault.join("b/backups/b1");
    let metadata: Value = serde_json::from_slice(&std::fs::read(objects.join("velero-backup.json")).unwrap()).unwrap();
    assert_eq!((metadata["metadata"]["name"].as_str(), metadata["status"]["encryption"]["recipient"].as_str()), (Some("b1"), Some(old_recipient.as_str())));
    let names: Vec<String> = std::fs::read_dir(&objects).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), 7, "{names:?}");
    for name in names.iter().filter(|n| *n != "velero-backup.json") {
        assert!(std::fs::read(objects.join(name)).unwrap().starts_with(AGE_HEADER), "{name} is encrypted");
    }

    // The stock age tool opens the tarball with the identity file, and tar lists it.
    let tarball = age_decrypt(&old, &objects.join("b1.tar.gz")).unwrap();
    std::fs::write(host.path("b1.tar.gz"), &tarball).unwrap();
    let listed = Command::new("tar").arg("tzf").arg(host.path("b1.tar.gz")).output().unwrap();
    assert!(listed.status.success());
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.contains("metadata/version") && listed.contains("resources/"), "{listed}");
    let log = age_decrypt(&old, &objects.join("b1-logs.gz")).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&log[..]), &mut text).unwrap();
    assert!(text.contains("Backed up a total of"), "{text}");

    // Coffer decrypts for every reader: download, logs, details, restore.
    let download = host.path("download.tar.gz");
    host.cli.ok(&["backup", "download", "b1", "-o", &s(&download)]);
    assert_eq!(std::fs::read(&download).unwrap(), tarball, "the download is the plaintext");
    assert!(host.cli.ok(&["backup", "logs", "b1"]).contains("Backed up a total of"));
    let details = host.cli.ok(&["backup", "describe", "b1", "--details"]);
    assert!(details.contains("Resource List:"), "{details}");
    let from_vault = host.restore("r1", "b1", &[]);
    assert!(!from_vault.is_empty());
    assert_eq!(from_vault, host.restore("r-plain", "plain", &[]), "the same files as a backup never encrypted");
    // The restore's own files in the location are encrypted too.
    assert!(std::fs::read(vault.join("b/restores/r1/restore-r1-logs.gz")).unwrap().starts_with(AGE_HEADER));
    host.cli.ok(&["restore", "logs", "r1"]);
    let results = age_decrypt(&old, &vault.join("b/restores/r1/restore-r1-results.gz")).unwrap();
    assert!(results.starts_with(&[0x1f, 0x8b]), "gzip inside");
    assert!(!std::fs::read(open.join("b/backups/plain/plain.tar.gz")).unwrap().starts_with(AGE_HEADER));

    // Rotation: the new identity first, the old kept; new backups go to the new recipient.
    let (new, new_recipient) = host.keygen("new.key");
    host.key_secret("rotated", &[&new, &old]);
    host.cli.ok(&["bsl", "set", "vault", "--encryption-key", "rotated=age"]);
    let b2 = host.backup("b2", &["--storage-location", "vault"]);
    assert_eq!(b2["status"]["encryption"]["recipient"], new_recipient.as_str());
    assert!(age_decrypt(&new, &vault.join("b/backups/b2/b2.tar.gz")).is_ok());
    assert!(age_decrypt(&old, &vault.join("b/backups/b2/b2.tar.gz")).is_err(), "the old identity no longer opens new backups");
    assert_eq!(host.restore("r-old-after-rotation", "b1", &[]), from_vault, "older backups still restore");

    // A key without the old identity: every reader of b1 fails naming location and recipient.
    host.key_secret("only-new", &[&new]);
    host.cli.ok(&["bsl", "set", "vault", "--encryption-key", "only-new=age"]);
    let expected = format!("the encryption key of backup storage location vault does not decrypt backup b1: it is encrypted to recipient {old_recipient}");
    let refused = host.path("refused.tar.gz");
    for args in [vec!["backup", "logs", "b1"], vec!["backup", "download", "b1", "-o", &s(&refused)], vec!["backup", "describe", "b1", "--details"]] {
        let err = host.cli.fails(&args);
        assert!(err.contains(&expected), "{args:?}: {err}");
    }
    assert!(!refused.exists() || std::fs::read(&refused).unwrap().is_empty(), "no garbage output");
    let target = s(&host.path("restored-wrong"));
    let _ = host.cli.run(&["restore", "create", "r-wrong", "--from-backup", "b1", "--target", &target, "--wait"]);
    let r = host.cli.json(&["restore", "get", "r-wrong"]);
    assert_eq!(r["status"]["phase"], "FailedValidation", "{r:#}");
    assert!(r["status"]["validationErrors"].to_string().contains(&expected), "{r:#}");
    assert!(!Path::new(&target).exists() || files(Path::new(&target)).is_empty(), "nothing restored");
    assert!(host.restore("r-new", "b2", &[]).len() == from_vault.len(), "what the key opens still restores");

    // A value that is not a list of identities is refused, by line, without echoing it.
    std::fs::write(host.path("bad.keys"), "AGE-SECRET-KEY-1NOTAKEY\n").unwrap();
    host.cli.ok(&["secret", "create", "bad", "--from-file", &format!("age={}", s(&host.path("bad.keys")))]);
    let err = host.cli.fails(&["bsl", "create", "broken", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&dir(host.tmp.path(), "store-broken"))), "--encryption-key", "bad=age"]);
    assert!(err.contains("encryption key bad=age: line 1 is not an age X25519 identity") && !err.contains("NOTAKEY"), "{err}");
}

#[test]
fn copies_of_an_encrypted_backup_go_only_where_its_key_is() {
    let host = Host::new();
    let (key, recipient) = host.keygen("k.key");
    let (other, _) = host.keygen("other.key");
    host.key_secret("keys", &[&key]);
    host.key_secret("others", &[&other]);
    host.location("vault", &["--encryption-key", "keys=age"]);
    let offsite = host.location("offsite", &["--encryption-key", "keys=age"]);
    host.location("open", &[]);
    host.location("stranger", &["--encryption-key", "others=age"]);

    for (name, flags, expected) in [
        ("to-open", ["--storage-location", "vault", "--copy-to", "open"], format!("backup storage location open has no encryption key, and the backup is encrypted to recipient {recipient}")),
        ("to-stranger", ["--storage-location", "vault", "--copy-to", "stranger"], format!("the encryption key of backup storage location stranger does not hold the identity of recipient {recipient}")),
        ("from-open", ["--storage-location", "open", "--copy-to", "vault"], "backup storage location vault encrypts what it holds, and the backup's own location open does not".to_owned()),
    ] {
        let b = host.backup(name, &flags);
        assert_eq!(b["status"]["phase"], "FailedValidation", "{b:#}");
        assert!(b["status"]["validationErrors"].to_string().contains(&expected), "{b:#}");
    }

    let b = host.backup("b1", &["--storage-location", "vault", "--copy-to", "offsite"]);
    assert_eq!(b["status"]["phase"], "Completed", "{b:#}");
    let copied = offsite.join("b/backups/b1/b1.tar.gz");
    assert!(std::fs::read(&copied).unwrap().starts_with(AGE_HEADER), "the copy is encrypted with the same key");
    assert!(age_decrypt(&key, &copied).is_ok());
    let from_vault = host.restore("r-vault", "b1", &[]);
    assert_eq!(host.restore("r-offsite", "b1", &["--storage-location", "offsite"]), from_vault);
}

/// A key rotated (its secret changed) between a backup's acceptance and its upload is checked
/// again: a copy location that does not hold the new recipient's identity gets no copy, and
/// the backup says why.
#[tokio::test]
async fn a_copy_is_checked_against_the_key_the_backup_is_finally_encrypted_with() {
    use age::secrecy::ExposeSecret;
    use coffer::backup::{self, Accepted, BackupRequest};
    use coffer::locations;
    use coffer::model::{BackupSpec, Phase, SecretKeySelector};

    let tmp = tempfile::tempdir().unwrap();
    let coffer = coffer::coffer::Coffer::open(&tmp.path().join("data"), coffer::sandbox::Limits::default()).await.unwrap();
    let identity = |i: &age::x25519::Identity| i.to_string().expose_secret().as_bytes().to_vec();
    let (old, new) = (age::x25519::Identity::generate(), age::x25519::Identity::generate());
    for name in ["vault", "offsite"] {
        coffer::secrets::create_secret(&coffer, "ns", name, vec![("age".into(), identity(&old))]).unwrap();
        let key = Some(SecretKeySelector { name: name.into(), key: "age".into() });
        let bsl = locations::NewBackupStorageLocation { encryption_key: key, default: false, ..crate::common::filesystem_bsl(name, &dir(tmp.path(), name)) };
        locations::create_backup_storage_location(&coffer, "ns", bsl).await.unwrap();
    }
    let request = BackupRequest {
        name: "b1".into(),
        source: example_source(tmp.path()),
        spec: BackupSpec { storage_location: "vault".into(), copy_to: vec!["offsite".into()], ..BackupSpec::default() },
        labels: Default::default(),
        default_snapshot_locations: Default::default(),
    };
    let Accepted::Started(started) = backup::accept_backup(&coffer, "ns", request).unwrap() else { panic!("accepted") };
    // The vault's key now holds only the new identity; the offsite's still only the old.
    coffer::secrets::set_secret(&coffer, "ns", "vault", None, vec![("age".into(), identity(&new))]).unwrap();
    let b = started.run(&coffer, &mut |_| {}).await.unwrap();
    let recipient = new.to_public().to_string();
    assert_eq!(b.status.encryption.as_ref().map(|e| e.recipient.as_str()), Some(recipient.as_str()));
    assert_eq!(b.status.phase, Some(Phase::PartiallyFailed), "{:?}", b.status);
    let copy = &b.status.copies[0];
    assert_eq!((copy.storage_location.as_str(), copy.phase), ("offsite", Some(Phase::Failed)));
    assert!(copy.message.contains(&format!("does not hold the identity of recipient {recipient}")), "{}", copy.message);
    let copied = tmp.path().join("offsite/b/backups/b1");
    assert!(!copied.exists() || files(&copied).is_empty(), "no copy");
}
