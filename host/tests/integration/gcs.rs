//! The `gcp` provider against a real GCS JSON API server (fake-gcs-server), through the
//! sandbox, authenticating with a service-account key at an OAuth token endpoint that verifies
//! its assertions (tests/tools/gcs_token_server.py).

use std::process::Command;
use std::time::Duration;

use coffer::embedded;
use coffer::sandbox::{ErrorKind, Limits, ObjectStoreHandle, ProviderComponent, ProviderError, Sandbox};
use tempfile::TempDir;

use crate::common::{grants, load, sandbox};
use crate::conformance::object_store_conformance;
use crate::servers::{Server, fake_gcs, gcs_token_server, venv_bin};

/// Runs Python `code` with `client`, a google-cloud-storage client of `server`; returns stdout.
pub fn gcs_client(server: &Server, code: &str) -> String {
    let script = format!(
        "from google.auth.credentials import AnonymousCredentials\nfrom google.cloud import storage\nclient = storage.Client(project='test', credentials=AnonymousCredentials(), client_options={{'api_endpoint': '{}'}})\n{code}",
        server.url
    );
    let out = Command::new(venv_bin().join("python3")).args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// fake-gcs-server and the token endpoint with its keys, and the gcp component in a sandbox.
struct Peers {
    _data: TempDir,
    keys: TempDir,
    server: Server,
    tokens: Server,
    sb: Sandbox,
    gcp: ProviderComponent,
}

impl Peers {
    async fn start() -> Peers {
        let data = tempfile::tempdir().unwrap();
        let keys = tempfile::tempdir().unwrap();
        let server = fake_gcs(data.path());
        let tokens = gcs_token_server(keys.path());
        let sb = sandbox(Limits::default());
        let gcp = load(&sb, embedded::GCP).await;
        Peers { _data: data, keys, server, tokens, sb, gcp }
    }

    /// The token server's `key.json` (trusted) or `wrong-key.json` (not).
    fn key(&self, file: &str) -> String {
        std::fs::read_to_string(self.keys.path().join(file)).unwrap()
    }

    fn token_endpoint(&self) -> String {
        format!("{}/token", self.tokens.url)
    }

    /// How many tokens the token server issued.
    fn issued(&self) -> u32 {
        std::fs::read_to_string(self.keys.path().join("issued")).unwrap().parse().unwrap()
    }

    async fn store(&self, config: &[(&str, &str)], credential: Option<&str>) -> Result<ObjectStoreHandle, ProviderError> {
        ObjectStoreHandle::new(&self.sb, &self.gcp, grants("bsl gcp", &self.gcp, config, credential)).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gcp_provider_passes_the_conformance_suite_on_fake_gcs_server() {
    let peers = Peers::start().await;
    let server = &peers.server;
    gcs_client(server, "client.create_bucket('velero')");
    assert_eq!(peers.gcp.manifest().name, "velero.io/gcp");
    let endpoint = format!("{}/storage/v1/", server.url);
    let token_endpoint = peers.token_endpoint();
    let config = [("storeEndpoint", endpoint.as_str()), ("tokenEndpoint", token_endpoint.as_str())];
    // fake-gcs-server checks no signature of a signed URL, so it cannot show expiry.
    let key = peers.key("key.json");
    object_store_conformance(&peers.sb, &peers.gcp, &config, Some(&key), "velero", crate::conformance::large(), &["signed-url-expires"]).await;
    let config = [("storeEndpoint", endpoint.as_str()), ("tokenEndpoint", token_endpoint.as_str()), ("bucket", "velero")];
    // One token served every call of an instance: it is cached until it nears its expiry. (The
    // suite's atomic-replace check reads through a second instance, which has its own.)
    assert_eq!(peers.issued(), 2);
    let mut store = peers.store(&config, Some(&peers.key("key.json"))).await.unwrap();

    // The GCS client reads what Coffer wrote, and a V4 signed URL downloads it.
    store.put_bytes("velero", "interop/hello world.txt", b"written by coffer".to_vec()).await.unwrap();
    let read_back = gcs_client(server, "print(client.bucket('velero').blob('interop/hello world.txt').download_as_bytes().decode())");
    assert_eq!(read_back, "written by coffer");
    let url = store.create_signed_url("velero", "interop/hello world.txt", Duration::from_secs(600)).await.unwrap();
    assert!(url.contains("X-Goog-Algorithm=GOOG4-RSA-SHA256") && url.contains("X-Goog-Signature="), "{url}");
    let fetched = gcs_client(server, &format!("import urllib.request; print(urllib.request.urlopen('{url}').read().decode())"));
    assert_eq!(fetched, "written by coffer", "{url}");
}

#[tokio::test]
async fn an_untrusted_key_is_an_authentication_error() {
    let peers = Peers::start().await;
    let token_endpoint = peers.token_endpoint();
    let config = [("storeEndpoint", peers.server.url.as_str()), ("tokenEndpoint", token_endpoint.as_str())];
    let mut store = peers.store(&config, Some(&peers.key("wrong-key.json"))).await.unwrap();
    let err = store.object_exists("velero", "x").await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Unauthenticated(_)), "{err}");
    assert!(err.to_string().contains("Invalid JWT Signature"), "{err}");
    assert_eq!(peers.issued(), 0);

    // Not a service-account key at all: refused at init, naming what is wrong.
    let user = r#"{"type": "authorized_user", "client_id": "x", "refresh_token": "y"}"#;
    let err = match peers.store(&config, Some(user)).await {
        Err(e) => e,
        Ok(_) => panic!("an authorized_user credential is refused"),
    };
    assert!(err.to_string().contains("\"authorized_user\" is not supported"), "{err}");
}

#[tokio::test]
async fn the_token_endpoint_must_be_named_by_the_config() {
    // The key's token_uri points at a host the location's config does not name: the host
    // refuses the connection, so a credential cannot steer the provider anywhere.
    let peers = Peers::start().await;
    let config = [("storeEndpoint", peers.server.url.as_str())];
    let mut store = peers.store(&config, Some(&peers.key("key.json"))).await.unwrap();
    let err = store.object_exists("velero", "x").await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::PermissionDenied(_)), "{err}");
    assert!(err.to_string().contains("not one the location's config names"), "{err}");
    assert_eq!(peers.issued(), 0);
}

#[tokio::test]
async fn without_a_credential_only_an_emulator_is_reachable_and_nothing_is_signed() {
    let data = tempfile::tempdir().unwrap();
    let server = fake_gcs(data.path());
    gcs_client(&server, "client.create_bucket('velero')");
    let sb = sandbox(Limits::default());
    let gcp = load(&sb, embedded::GCP).await;
    let config = [("storeEndpoint", server.url.as_str())];
    let mut store = ObjectStoreHandle::new(&sb, &gcp, grants("bsl gcp", &gcp, &config, None)).await.unwrap();
    store.put_bytes("velero", "a", b"anonymous".to_vec()).await.unwrap();
    assert!(store.object_exists("velero", "a").await.unwrap());
    let err = store.create_signed_url("velero", "a", Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Unsupported(_)), "{err}");

    // Against Google itself a credential is required, and a host file is not one.
    let err = match ObjectStoreHandle::new(&sb, &gcp, grants("bsl gcp", &gcp, &[], None)).await {
        Err(e) => e,
        Ok(_) => panic!("no credential and no storeEndpoint is refused"),
    };
    assert!(err.to_string().contains("no credential"), "{err}");
    let config = [("storeEndpoint", server.url.as_str()), ("credentialsFile", "/credentials/cloud")];
    let err = match ObjectStoreHandle::new(&sb, &gcp, grants("bsl gcp", &gcp, &config, None)).await {
        Err(e) => e,
        Ok(_) => panic!("credentialsFile is refused"),
    };
    assert!(err.to_string().contains("credentialsFile"), "{err}");
}
