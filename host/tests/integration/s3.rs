//! The `aws` provider against a real S3 server (moto), through the sandbox.

use std::collections::BTreeMap;

use coffer::coffer::Coffer;
use coffer::embedded;
use coffer::locations::{self, NewBackupStorageLocation};
use coffer::model::{LocationPhase, SecretKeySelector};
use coffer::sandbox::{ErrorKind, Limits, ObjectStoreHandle};
use coffer::secrets;

use crate::common::{grants, load, sandbox};
use crate::conformance::{large, object_store_conformance};
use crate::servers::{moto, moto_tls, raw_http, s3s_fs, venv_bin};

const CREDENTIALS: &str = "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n";

#[tokio::test(flavor = "multi_thread")]
async fn aws_provider_passes_the_conformance_suite_on_moto() {
    let server = moto();
    assert!(raw_http(server.port, "PUT", "/velero").contains("200"), "bucket created");
    let sb = sandbox(Limits::default());
    let aws = load(&sb, embedded::AWS).await;
    assert_eq!(aws.manifest().name, "velero.io/aws");
    let config = [("s3Url", server.url.as_str()), ("region", "us-east-1")];
    // moto checks no signature of a signed URL, so expiry is shown on s3s-fs (below).
    object_store_conformance(&sb, &aws, &config, Some(CREDENTIALS), "velero", large(), &["signed-url-expires"]).await;
    let g = grants("bsl s3", &aws, &[("s3Url", &server.url), ("region", "us-east-1"), ("bucket", "velero")], Some(CREDENTIALS));
    let mut store = ObjectStoreHandle::new(&sb, &aws, g).await.unwrap();

    // What Coffer wrote, awscli reads back.
    store.put_bytes("velero", "interop/hello.txt", b"written by coffer".to_vec()).await.unwrap();
    let out = tempfile::tempdir().unwrap();
    assert_eq!(awscli_get(&server.url, "velero/interop/hello.txt", out.path()), b"written by coffer");
}

/// Downloads `bucket/key` from the S3 endpoint `url` with awscli (access key and secret
/// `testing`); returns the bytes.
pub fn awscli_get(url: &str, bucket_key: &str, dir: &std::path::Path) -> Vec<u8> {
    let file = dir.join("downloaded");
    let out = std::process::Command::new(venv_bin().join("aws"))
        .args(["--endpoint-url", url, "--region", "us-east-1", "s3", "cp", &format!("s3://{bucket_key}")])
        .arg(&file)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_CONFIG_FILE", dir.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-credentials"))
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(out.status.success(), "aws s3 cp: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(file).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn signatures_are_right_where_the_server_checks_them() {
    let tmp = tempfile::tempdir().unwrap();
    let server = s3s_fs(tmp.path(), &["velero"]);
    let sb = sandbox(Limits::default());
    let aws = load(&sb, embedded::AWS).await;
    let config = [("s3Url", server.url.as_str()), ("region", "us-east-1")];
    // Every operation, multipart uploads included (8 MiB + 1 is two parts), signed and checked.
    object_store_conformance(&sb, &aws, &config, Some(CREDENTIALS), "velero", false, &[]).await;
    let mut store = ObjectStoreHandle::new(&sb, &aws, grants("bsl s3s", &aws, &config, Some(CREDENTIALS))).await.unwrap();
    store.put_bytes("velero", "a/one.json", b"second".to_vec()).await.unwrap();
    assert_eq!(std::fs::read(tmp.path().join("velero/a/one.json")).unwrap(), b"second", "stored where S3 says");
    // A multipart object Coffer wrote, awscli reads back, its own signatures checked too.
    let big: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    store.put_bytes("velero", "interop/big", big.clone()).await.unwrap();
    let out = tempfile::tempdir().unwrap();
    assert!(awscli_get(&server.url, "velero/interop/big", out.path()) == big, "awscli read back the multipart object");

    // A presigned URL downloads the object.
    let url = store.create_signed_url("velero", "a/one.json", std::time::Duration::from_secs(600)).await.unwrap();
    let script = format!("import urllib.request; print(urllib.request.urlopen('{url}').read().decode())");
    let out = std::process::Command::new(venv_bin().join("python3")).args(["-c", &script]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "second", "{url}: {}", String::from_utf8_lossy(&out.stderr));

    // A wrong secret is an authentication error naming the server's complaint.
    let wrong = "[default]\naws_access_key_id = testing\naws_secret_access_key = wrong\n";
    let mut bad = ObjectStoreHandle::new(&sb, &aws, grants("bsl s3s", &aws, &config, Some(wrong))).await.unwrap();
    let err = bad.object_exists("velero", "a/one.json").await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Unauthenticated(_) | ErrorKind::PermissionDenied(_)), "{err}");
    let err = bad.put_bytes("velero", "x", b"y".to_vec()).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Unauthenticated(_)), "{err}");
    assert!(err.to_string().contains("SignatureDoesNotMatch"), "{err}");
}

#[tokio::test]
async fn the_filesystem_provider_passes_the_conformance_suite() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = sandbox(Limits::default());
    let fs = load(&sb, embedded::FILESYSTEM).await;
    let config = [("root", tmp.path().to_str().unwrap())];
    // A file URL does not expire: whoever may open the file may read it.
    object_store_conformance(&sb, &fs, &config, None, "bucket", large(), &["signed-url-expires"]).await;
}

#[tokio::test]
async fn aws_config_and_credential_errors_name_the_culprit() {
    let sb = sandbox(Limits::default());
    let aws = load(&sb, embedded::AWS).await;
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, &'a str);
    let cases: [Case<'_>; 5] = [
        (&[("bucket", "b")], Some(CREDENTIALS), "\"region\""),
        (&[("region", "us-east-1"), ("regoin", "x")], Some(CREDENTIALS), "\"regoin\""),
        (&[("region", "us-east-1"), ("checksumAlgorithm", "MD4")], Some(CREDENTIALS), "invalid checksum algorithm: MD4"),
        (&[("region", "us-east-1")], None, "no credential"),
        (&[("region", "us-east-1"), ("profile", "prod")], Some(CREDENTIALS), "profile [prod]"),
    ];
    for (config, credential, expected) in cases {
        let err = match ObjectStoreHandle::new(&sb, &aws, grants("bsl s3", &aws, config, credential)).await {
            Err(e) => e,
            Ok(_) => panic!("{config:?} should be refused"),
        };
        assert!(err.to_string().contains(expected), "{config:?}: {err}");
        assert!(matches!(err.kind, ErrorKind::InvalidConfig { .. } | ErrorKind::Unauthenticated(_)), "{err}");
    }
}

#[tokio::test]
async fn a_down_server_makes_the_location_unavailable() {
    let tmp = tempfile::tempdir().unwrap();
    let coffer = Coffer::open(tmp.path(), Limits::default()).await.unwrap();
    secrets::create_secret(&coffer, "velero", "aws", vec![("cloud".into(), CREDENTIALS.as_bytes().to_vec())]).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let new = NewBackupStorageLocation {
        name: "s3".into(),
        provider: "aws".into(),
        bucket: "velero".into(),
        config: BTreeMap::from([("s3Url".into(), format!("http://127.0.0.1:{closed}")), ("region".into(), "us-east-1".into())]),
        credential: Some(SecretKeySelector { name: "aws".into(), key: "cloud".into() }),
        ..Default::default()
    };
    let bsl = locations::create_backup_storage_location(&coffer, "velero", new).await.unwrap();
    assert_eq!(bsl.status.phase, Some(LocationPhase::Unavailable));
    assert!(bsl.status.message.starts_with("BackupStorageLocation \"s3\" is unavailable: unavailable:"), "{}", bsl.status.message);
    assert!(bsl.status.message.contains(&format!("127.0.0.1:{closed}")), "{}", bsl.status.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn https_is_verified_with_the_public_roots_plus_the_locations_ca_cert() {
    let certs = tempfile::tempdir().unwrap();
    let server = moto_tls(certs.path());
    let ca = std::fs::read_to_string(certs.path().join("ca.pem")).unwrap();
    let script = format!(
        "import boto3; boto3.client('s3', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing', verify='{}').create_bucket(Bucket='velero')",
        server.url,
        certs.path().join("ca.pem").display()
    );
    let made = std::process::Command::new(venv_bin().join("python3")).args(["-c", &script]).env_remove("AWS_CA_BUNDLE").output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let sb = sandbox(Limits::default());
    let aws = load(&sb, embedded::AWS).await;
    let base = [("s3Url", server.url.as_str()), ("region", "us-east-1")];

    // The test CA is not a public one: without caCert the handshake fails, and says what to do.
    let mut untrusting = ObjectStoreHandle::new(&sb, &aws, grants("bsl tls", &aws, &base, Some(CREDENTIALS))).await.unwrap();
    let err = untrusting.object_exists("velero", "x").await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("caCert"), "{err}");

    // With the CA as the location's caCert, everything works over TLS.
    let with_ca = [base[0], base[1], ("caCert", ca.as_str())];
    let mut trusting = ObjectStoreHandle::new(&sb, &aws, grants("bsl tls", &aws, &with_ca, Some(CREDENTIALS))).await.unwrap();
    trusting.put_bytes("velero", "over/tls", b"encrypted in transit".to_vec()).await.unwrap();
    assert!(trusting.object_exists("velero", "over/tls").await.unwrap());

    // insecureSkipTLSVerify=true accepts the certificate unverified.
    let skip = [base[0], base[1], ("insecureSkipTLSVerify", "true")];
    let mut skipping = ObjectStoreHandle::new(&sb, &aws, grants("bsl tls", &aws, &skip, Some(CREDENTIALS))).await.unwrap();
    assert!(skipping.object_exists("velero", "over/tls").await.unwrap());

    // A caCert without a certificate is refused when the location's grants are made.
    let config: BTreeMap<String, String> = [("s3Url", server.url.as_str()), ("caCert", "not a certificate")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let err = coffer::sandbox::grants_for("bsl tls", aws.manifest(), config, None, &coffer::confine::PathRoot::Anywhere).unwrap_err().to_string();
    assert!(err.contains("bsl tls: caCert holds no PEM certificate"), "{err}");
}
