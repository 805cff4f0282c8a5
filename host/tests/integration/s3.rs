//! The `aws` provider against a real S3 server (moto), through the sandbox.

use std::collections::BTreeMap;

use coffer::coffer::Coffer;
use coffer::embedded;
use coffer::locations::{self, NewBackupStorageLocation};
use coffer::model::{LocationPhase, SecretKeySelector};
use coffer::sandbox::{ErrorKind, Limits, ObjectStoreHandle};
use coffer::secrets;

use crate::common::{grants, load, sandbox};
use crate::conformance::object_store_conformance;
use crate::servers::{moto, raw_http, s3s_fs, venv_bin};

const CREDENTIALS: &str = "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n";

/// Size of the large-object round trip (1 GiB unless COFFER_CONFORMANCE_BIG_MIB says).
pub fn big_mib() -> usize {
    std::env::var("COFFER_CONFORMANCE_BIG_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024)
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_provider_passes_the_conformance_suite_on_moto() {
    let server = moto();
    assert!(raw_http(server.port, "PUT", "/velero").contains("200"), "bucket created");
    let sb = sandbox(Limits::default());
    let aws = load(&sb, embedded::AWS).await;
    assert_eq!(aws.manifest().name, "velero.io/aws");
    let g = grants("bsl s3", &aws, &[("s3Url", &server.url), ("region", "us-east-1"), ("bucket", "velero")], Some(CREDENTIALS));
    let mut store = ObjectStoreHandle::new(&sb, &aws, g).await.unwrap();
    object_store_conformance(&mut store, "velero", big_mib()).await;

    // What Coffer wrote, a real S3 client reads back.
    store.put_bytes("velero", "interop/hello.txt", b"written by coffer".to_vec()).await.unwrap();
    let script = format!(
        "import boto3; s3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing'); print(s3.get_object(Bucket='velero', Key='interop/hello.txt')['Body'].read().decode())",
        server.url
    );
    let out = std::process::Command::new(venv_bin().join("python3")).args(["-c", &script]).env_remove("AWS_CA_BUNDLE").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "written by coffer", "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn signatures_are_right_where_the_server_checks_them() {
    let tmp = tempfile::tempdir().unwrap();
    let server = s3s_fs(tmp.path(), &["velero"]);
    let sb = sandbox(Limits::default());
    let aws = load(&sb, embedded::AWS).await;
    let config = [("s3Url", server.url.as_str()), ("region", "us-east-1")];
    let mut store = ObjectStoreHandle::new(&sb, &aws, grants("bsl s3s", &aws, &config, Some(CREDENTIALS))).await.unwrap();
    // Every operation, multipart upload included (24 MiB is three parts), signed and checked.
    object_store_conformance(&mut store, "velero", 24).await;
    assert_eq!(std::fs::read(tmp.path().join("velero/a/one.json")).unwrap(), b"second", "stored where S3 says");

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
    let g = grants("bsl fs", &fs, &[("root", tmp.path().to_str().unwrap())], None);
    let mut store = ObjectStoreHandle::new(&sb, &fs, g).await.unwrap();
    object_store_conformance(&mut store, "bucket", big_mib()).await;
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
