//! The `azure` provider against a real Azure Blob server (Azurite), through the sandbox.

use std::process::Command;

use coffer::embedded;
use coffer::sandbox::{ErrorKind, Limits, ObjectStoreHandle};

use crate::common::{grants, load, sandbox};
use crate::conformance::object_store_conformance;
use crate::servers::{Server, azurite, venv_bin};

/// Azurite's well-known development account and key.
pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Runs Python `code` with `service` a BlobServiceClient on Azurite; returns stdout.
pub fn sdk(server: &Server, code: &str) -> String {
    let script = format!(
        "from azure.storage.blob import BlobServiceClient\nservice = BlobServiceClient.from_connection_string('DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={}/;')\n{code}",
        server.url
    );
    let out = Command::new(venv_bin().join("python3")).args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn credential(key: &str) -> String {
    format!("AZURE_SUBSCRIPTION_ID=00000000-0000-0000-0000-000000000000\nAZURE_RESOURCE_GROUP=rg\nAZURE_STORAGE_KEY={key}\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_provider_passes_the_conformance_suite_on_azurite() {
    let server = azurite();
    sdk(&server, "service.create_container('velero')");
    let sb = sandbox(Limits::default());
    let azure = load(&sb, embedded::AZURE).await;
    assert_eq!(azure.manifest().name, "velero.io/azure");
    let config = [("storageAccount", ACCOUNT), ("storageAccountURI", server.url.as_str())];
    object_store_conformance(&sb, &azure, &config, Some(&credential(KEY)), "velero", crate::conformance::large(), &[]).await;
    let config = [("storageAccount", ACCOUNT), ("storageAccountURI", server.url.as_str()), ("bucket", "velero")];
    let mut store = ObjectStoreHandle::new(&sb, &azure, grants("bsl azure", &azure, &config, Some(&credential(KEY)))).await.unwrap();

    // The Azure SDK reads what Coffer wrote, and a signed URL downloads it.
    store.put_bytes("velero", "interop/hello.txt", b"written by coffer".to_vec()).await.unwrap();
    let read = sdk(&server, "print(service.get_blob_client('velero', 'interop/hello.txt').download_blob().readall().decode())");
    assert_eq!(read, "written by coffer");
    let url = store.create_signed_url("velero", "interop/hello.txt", std::time::Duration::from_secs(600)).await.unwrap();
    let fetched = sdk(&server, &format!("import urllib.request; print(urllib.request.urlopen('{url}').read().decode())"));
    assert_eq!(fetched, "written by coffer", "{url}");
}

#[tokio::test]
async fn a_wrong_account_key_is_an_authentication_error() {
    let server = azurite();
    sdk(&server, "service.create_container('velero')");
    let sb = sandbox(Limits::default());
    let azure = load(&sb, embedded::AZURE).await;
    let wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";
    let config = [("storageAccount", ACCOUNT), ("storageAccountURI", server.url.as_str())];
    let mut store = ObjectStoreHandle::new(&sb, &azure, grants("bsl azure", &azure, &config, Some(&credential(wrong)))).await.unwrap();
    let err = store.object_exists("velero", "x").await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Unauthenticated(_) | ErrorKind::PermissionDenied(_)), "{err}");
    let err = store.put_bytes("velero", "x", b"y".to_vec()).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Unauthenticated(_) | ErrorKind::PermissionDenied(_)), "{err}");
    let no_key = "AZURE_SUBSCRIPTION_ID=x\n";
    let err = match ObjectStoreHandle::new(&sb, &azure, grants("bsl azure", &azure, &config, Some(no_key))).await {
        Err(e) => e,
        Ok(_) => panic!("a credential without the key is refused"),
    };
    assert!(err.to_string().contains("AZURE_STORAGE_KEY"), "{err}");
}
