//! The service over HTTP: a client of a `coffer server`, JSON over HTTP/1.1, to the tenants'
//! API with a tenant's token as a bearer token (the server decides the namespace from it), or
//! to the operator's API on the data directory's Unix socket. Every answer is read bounded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use rustls::pki_types::ServerName;
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;
use tokio::net::TcpStream;

use super::error::{ApiError, Reason};
use super::routes::{self, of};
use super::service::{Download, Sink, TenantApi, Watch};
use super::wire::{BackupStorageLocationPatch, PasswordBody, SchedulePatch, SecretBody, VolumeSnapshotLocationPatch};
use crate::backup::{BackupDetails, MAX_DOCUMENT, RestoreDetails};
use crate::fsb::BackupRepository;
use crate::model::{Backup, BackupStorageLocation, Phase, Progress, Restore, VolumeSnapshotLocation};
use crate::schedules::Schedule;
use crate::secret::SecretBytes;
use crate::secrets::SecretSummary;

/// The most a JSON answer or a log may take.
const MAX_ANSWER: usize = MAX_DOCUMENT as usize;
/// How often a client waiting for a run's end asks how it goes.
const POLL: Duration = Duration::from_millis(250);

/// A client could not be set up.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server's URL is not usable.
    #[error("server URL {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The CA bundle cannot be used.
    #[error("CA bundle {path}: {reason}")]
    CaBundle {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The token is not text.
    #[error("the token is not text")]
    Token,
}

/// A server, and the token to act with.
pub struct Client {
    authority: String,
    socket: Option<PathBuf>,
    token: Option<SecretBytes>,
    /// For an `https://` server: how its certificate is verified, and the name it must bear.
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

impl Client {
    /// A client of the server at `url` (`https://host:port`, or `http://` for one on the same
    /// host) acting with `token`; an `https` server's certificate is verified against the
    /// public roots and the PEM certificates in `cacert`.
    pub fn new(url: &str, token: &SecretBytes, cacert: Option<&Path>) -> Result<Client, ClientError> {
        let bad = |reason: String| ClientError::Url { url: url.into(), reason };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let host = parsed.host_str().ok_or_else(|| bad("it has no host".into()))?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let tls = match parsed.scheme() {
            "http" => None,
            "https" => Some(tls_connector(host, cacert)?),
            other => return Err(bad(format!("the scheme must be https (or http), not {other}"))),
        };
        std::str::from_utf8(token.expose()).map_err(|_| ClientError::Token)?;
        Ok(Client { authority: format!("{host}:{port}"), socket: None, token: Some(token.clone()), tls })
    }

    /// A client of the operator's API on the Unix socket `path`, if a server answers there.
    pub async fn operator(path: &Path) -> Option<Client> {
        tokio::net::UnixStream::connect(path).await.ok()?;
        Some(Client { authority: "localhost".into(), socket: Some(path.to_path_buf()), token: None, tls: None })
    }

    fn unreachable(&self, what: &str, error: impl std::fmt::Display) -> ApiError {
        let server = match &self.socket {
            Some(path) => path.display().to_string(),
            None => self.authority.clone(),
        };
        ApiError::new(Reason::ServiceUnavailable, format!("{what} the server at {server}: {error}"))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ApiError> {
        let connecting = |e: std::io::Error| self.unreachable("connecting to", e);
        let handshaken = match &self.socket {
            Some(path) => handshake(tokio::net::UnixStream::connect(path).await.map_err(connecting)?).await,
            None => {
                let tcp = TcpStream::connect(&self.authority).await.map_err(connecting)?;
                match &self.tls {
                    None => handshake(tcp).await,
                    Some((connector, name)) => {
                        handshake(connector.connect(name.clone(), tcp).await.map_err(|e| self.unreachable("TLS with", e))?).await
                    }
                }
            }
        };
        handshaken.map_err(|e| self.unreachable("HTTP with", e))
    }

    /// Sends a request; a refusal comes back as the server's typed error.
    async fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<hyper::Response<hyper::body::Incoming>, ApiError> {
        let mut sender = self.connect().await?;
        let mut request = hyper::Request::builder().method(method).uri(path).header("host", &self.authority);
        if let Some(token) = &self.token {
            // Checked to be text when the client was made.
            request = request.header("authorization", format!("Bearer {}", String::from_utf8_lossy(token.expose())));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ApiError::bad_request(format!("{method} {path}: {e}")))?;
        let response = sender.send_request(request).await.map_err(|e| self.unreachable(&format!("{method} {path} to"), e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let bytes = read_all(response.into_body(), MAX_ANSWER).await.unwrap_or_default();
        Err(serde_json::from_slice::<ApiError>(&bytes).unwrap_or_else(|_| ApiError::new(Reason::of_status(status), String::from_utf8_lossy(&bytes))))
    }

    /// Sends `body` (if any) as JSON and decodes the JSON answer.
    pub async fn json<T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<&(impl Serialize + ?Sized + Sync)>) -> Result<T, ApiError> {
        let body = body.map(serde_json::to_vec).transpose().map_err(|e| ApiError::bad_request(e.to_string()))?;
        let bytes = self.bytes(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::new(Reason::BadGateway, format!("{method} {path}: unexpected answer: {e}")))
    }

    /// Sends a request and reads its whole (bounded) answer.
    pub async fn bytes(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<Vec<u8>, ApiError> {
        let response = self.send(method, path, body).await?;
        read_all(response.into_body(), MAX_ANSWER).await.map_err(|e| self.unreachable(&format!("reading {method} {path} from"), e))
    }

    /// `GET route`, then every [`POLL`] until the run is no longer running, telling `watch`.
    async fn watched<T: DeserializeOwned>(&self, route: &str, mut now: T, watch: Watch<'_>, state: impl Fn(&T) -> (Option<Phase>, Option<Progress>)) -> Result<T, ApiError> {
        while state(&now).0.is_none_or(Phase::is_running) {
            tokio::time::sleep(POLL).await;
            now = self.json("GET", route, None::<&()>).await?;
            if let Some(p) = state(&now).1 {
                watch(&p);
            }
        }
        Ok(now)
    }
}

/// The whole body, refused beyond `limit` bytes.
async fn read_all(body: hyper::body::Incoming, limit: usize) -> Result<Vec<u8>, String> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(format!("the answer is larger than {} MiB", limit >> 20)),
        Err(e) => Err(e.to_string()),
    }
}

/// TLS for `host`: the public web roots, plus the certificates in `cacert`.
fn tls_connector(host: &str, cacert: Option<&Path>) -> Result<(tokio_rustls::TlsConnector, ServerName<'static>), ClientError> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(file) = cacert {
        let bad = |reason: String| ClientError::CaBundle { path: file.to_path_buf(), reason };
        let pem = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
        for cert in crate::sandbox::TlsOptions::parse_roots(&pem).map_err(|e| bad(e.to_string()))? {
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Url { url: host.into(), reason: e.to_string() })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_owned())
        .map_err(|e| ClientError::Url { url: host.into(), reason: e.to_string() })?;
    Ok((tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)), name))
}

async fn handshake<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static>(stream: S) -> hyper::Result<SendRequest<Full<Bytes>>> {
    let (sender, connection) = hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// A tenant's calls on a server, through its API.
pub struct RemoteTenant(pub Client);

/// A download the server accepted: its answer's body, streamed.
struct RemoteDownload {
    body: hyper::body::Incoming,
    name: String,
}

#[async_trait]
impl Download for RemoteDownload {
    async fn write_to(mut self: Box<Self>, mut sink: Sink) -> Result<u64, ApiError> {
        let broke = |e: &dyn std::fmt::Display| ApiError::new(Reason::BadGateway, format!("the download of backup {:?} broke off: {e}", self.name));
        let mut total = 0;
        while let Some(frame) = self.body.frame().await {
            let frame = frame.map_err(|e| broke(&e))?;
            if let Some(data) = frame.data_ref() {
                sink.write_all(data).map_err(|e| broke(&e))?;
                total += data.len() as u64;
            }
        }
        sink.flush().map_err(|e| broke(&e))?;
        Ok(total)
    }
}

impl RemoteTenant {
    async fn delete(&self, route: &str, name: &str) -> Result<(), ApiError> {
        self.0.bytes("DELETE", &of(route, name), None).await.map(drop)
    }

    async fn get<T: DeserializeOwned>(&self, route: &str, name: &str) -> Result<T, ApiError> {
        self.0.json("GET", &of(route, name), None::<&()>).await
    }

    async fn list<T: DeserializeOwned>(&self, route: &str) -> Result<Vec<T>, ApiError> {
        self.0.json("GET", route, None::<&()>).await
    }
}

#[async_trait]
impl TenantApi for RemoteTenant {
    async fn create_backup_storage_location(&self, object: BackupStorageLocation) -> Result<BackupStorageLocation, ApiError> {
        self.0.json("POST", routes::BACKUP_STORAGE_LOCATIONS, Some(&object)).await
    }

    async fn list_backup_storage_locations(&self, default_only: bool) -> Result<Vec<BackupStorageLocation>, ApiError> {
        self.list(&format!("{}?default={default_only}", routes::BACKUP_STORAGE_LOCATIONS)).await
    }

    async fn get_backup_storage_location(&self, name: &str) -> Result<BackupStorageLocation, ApiError> {
        self.get(routes::BACKUP_STORAGE_LOCATION, name).await
    }

    async fn change_backup_storage_location(&self, name: &str, patch: BackupStorageLocationPatch) -> Result<BackupStorageLocation, ApiError> {
        self.0.json("PATCH", &of(routes::BACKUP_STORAGE_LOCATION, name), Some(&patch)).await
    }

    async fn delete_backup_storage_location(&self, name: &str) -> Result<(), ApiError> {
        self.delete(routes::BACKUP_STORAGE_LOCATION, name).await
    }

    async fn create_volume_snapshot_location(&self, object: VolumeSnapshotLocation) -> Result<VolumeSnapshotLocation, ApiError> {
        self.0.json("POST", routes::VOLUME_SNAPSHOT_LOCATIONS, Some(&object)).await
    }

    async fn list_volume_snapshot_locations(&self) -> Result<Vec<VolumeSnapshotLocation>, ApiError> {
        self.list(routes::VOLUME_SNAPSHOT_LOCATIONS).await
    }

    async fn get_volume_snapshot_location(&self, name: &str) -> Result<VolumeSnapshotLocation, ApiError> {
        self.get(routes::VOLUME_SNAPSHOT_LOCATION, name).await
    }

    async fn change_volume_snapshot_location(&self, name: &str, patch: VolumeSnapshotLocationPatch) -> Result<VolumeSnapshotLocation, ApiError> {
        self.0.json("PATCH", &of(routes::VOLUME_SNAPSHOT_LOCATION, name), Some(&patch)).await
    }

    async fn delete_volume_snapshot_location(&self, name: &str) -> Result<(), ApiError> {
        self.delete(routes::VOLUME_SNAPSHOT_LOCATION, name).await
    }

    async fn create_secret(&self, body: SecretBody) -> Result<SecretSummary, ApiError> {
        self.0.json("POST", routes::SECRETS, Some(&body)).await
    }

    async fn replace_secret(&self, name: &str, body: SecretBody) -> Result<SecretSummary, ApiError> {
        self.0.json("PUT", &of(routes::SECRET, name), Some(&body)).await
    }

    async fn list_secrets(&self) -> Result<Vec<SecretSummary>, ApiError> {
        self.list(routes::SECRETS).await
    }

    async fn get_secret(&self, name: &str) -> Result<SecretSummary, ApiError> {
        self.get(routes::SECRET, name).await
    }

    async fn delete_secret(&self, name: &str) -> Result<(), ApiError> {
        self.delete(routes::SECRET, name).await
    }

    async fn create_backup(&self, object: Backup, watch: Option<Watch<'_>>) -> Result<Backup, ApiError> {
        let route = of(routes::BACKUP, &object.metadata.meta.name);
        let accepted: Backup = self.0.json("POST", routes::BACKUPS, Some(&object)).await?;
        match watch {
            None => Ok(accepted),
            Some(watch) => self.0.watched(&route, accepted, watch, |b: &Backup| (b.status.phase, b.status.progress.clone())).await,
        }
    }

    async fn list_backups(&self) -> Result<Vec<Backup>, ApiError> {
        self.list(routes::BACKUPS).await
    }

    async fn get_backup(&self, name: &str) -> Result<Backup, ApiError> {
        self.get(routes::BACKUP, name).await
    }

    async fn delete_backup(&self, name: &str) -> Result<(), ApiError> {
        self.delete(routes::BACKUP, name).await
    }

    async fn backup_log(&self, name: &str) -> Result<Vec<u8>, ApiError> {
        self.0.bytes("GET", &of(routes::BACKUP_LOGS, name), None).await
    }

    async fn backup_details(&self, name: &str) -> Result<BackupDetails, ApiError> {
        self.get(routes::BACKUP_DETAILS, name).await
    }

    async fn download_backup(&self, name: &str) -> Result<Box<dyn Download>, ApiError> {
        let response = self.0.send("GET", &of(routes::BACKUP_DOWNLOAD, name), None).await?;
        Ok(Box::new(RemoteDownload { body: response.into_body(), name: name.into() }))
    }

    async fn create_restore(&self, object: Restore, watch: Option<Watch<'_>>) -> Result<Restore, ApiError> {
        let route = of(routes::RESTORE, &object.metadata.meta.name);
        let accepted: Restore = self.0.json("POST", routes::RESTORES, Some(&object)).await?;
        match watch {
            None => Ok(accepted),
            Some(watch) => self.0.watched(&route, accepted, watch, |r: &Restore| (r.status.phase, r.status.progress.as_ref().map(Progress::from))).await,
        }
    }

    async fn list_restores(&self) -> Result<Vec<Restore>, ApiError> {
        self.list(routes::RESTORES).await
    }

    async fn get_restore(&self, name: &str) -> Result<Restore, ApiError> {
        self.get(routes::RESTORE, name).await
    }

    async fn restore_log(&self, name: &str) -> Result<Vec<u8>, ApiError> {
        self.0.bytes("GET", &of(routes::RESTORE_LOGS, name), None).await
    }

    async fn restore_details(&self, name: &str) -> Result<RestoreDetails, ApiError> {
        self.get(routes::RESTORE_DETAILS, name).await
    }

    async fn create_schedule(&self, object: Schedule) -> Result<Schedule, ApiError> {
        self.0.json("POST", routes::SCHEDULES, Some(&object)).await
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>, ApiError> {
        self.list(routes::SCHEDULES).await
    }

    async fn get_schedule(&self, name: &str) -> Result<Schedule, ApiError> {
        self.get(routes::SCHEDULE, name).await
    }

    async fn change_schedule(&self, name: &str, patch: SchedulePatch) -> Result<Schedule, ApiError> {
        self.0.json("PATCH", &of(routes::SCHEDULE, name), Some(&patch)).await
    }

    async fn delete_schedule(&self, name: &str) -> Result<(), ApiError> {
        self.delete(routes::SCHEDULE, name).await
    }

    async fn list_backup_repositories(&self) -> Result<Vec<BackupRepository>, ApiError> {
        self.list(routes::BACKUP_REPOSITORIES).await
    }

    async fn get_backup_repository(&self, name: &str) -> Result<BackupRepository, ApiError> {
        self.get(routes::BACKUP_REPOSITORY, name).await
    }

    async fn backup_repository_password(&self, name: &str) -> Result<SecretBytes, ApiError> {
        let body: PasswordBody = self.get(routes::BACKUP_REPOSITORY_PASSWORD, name).await?;
        Ok(SecretBytes::new(body.password.into_bytes()))
    }

    async fn maintain_backup_repository(&self, name: &str) -> Result<BackupRepository, ApiError> {
        self.0.json("POST", &of(routes::BACKUP_REPOSITORY_MAINTENANCE, name), None::<&()>).await
    }
}
