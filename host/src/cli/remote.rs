//! The CLI's client of a `coffer server`: JSON over HTTP/1.1, to the tenants' API with the
//! tenant's token as a bearer token (the server decides the namespace from it), or to the
//! operator's API on the data directory's Unix socket.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper::client::conn::http1::SendRequest;
use serde::Serialize;
use serde::de::DeserializeOwned;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use coffer::secret::SecretBytes;

/// A server and the token to act with.
pub struct Client {
    authority: String,
    socket: Option<std::path::PathBuf>,
    token: Option<SecretBytes>,
    /// For an `https://` server: how its certificate is verified, and the name it must bear.
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

/// The token: `COFFER_TOKEN`, else the file `--token-file` (or `COFFER_TOKEN_FILE`) names.
pub fn token(token_file: Option<&Path>) -> Result<SecretBytes> {
    if let Some(t) = std::env::var_os("COFFER_TOKEN").filter(|t| !t.is_empty()) {
        return Ok(SecretBytes::new(t.into_encoded_bytes()));
    }
    let Some(file) = token_file else {
        bail!("--server needs a token: set COFFER_TOKEN or pass --token-file (create one with `coffer tenant token create` on the server host)")
    };
    let text = std::fs::read_to_string(file).with_context(|| format!("--token-file {}", file.display()))?;
    Ok(SecretBytes::new(text.trim().as_bytes().to_vec()))
}

impl Client {
    /// A client of the server at `url` (`https://host:port`, or `http://` for one on the
    /// same host); an `https` server's certificate is verified against the public roots and
    /// the PEM certificates in `cacert`.
    pub fn new(url: &str, token: SecretBytes, cacert: Option<&Path>) -> Result<Client> {
        let parsed = url::Url::parse(url).with_context(|| format!("--server {url:?}"))?;
        let host = parsed.host_str().ok_or_else(|| anyhow!("--server {url:?} has no host"))?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let tls = match parsed.scheme() {
            "http" => None,
            "https" => Some(tls_connector(host, cacert)?),
            other => bail!("--server {url:?}: the scheme must be https (or http), not {other}"),
        };
        Ok(Client { authority: format!("{host}:{port}"), socket: None, token: Some(token), tls })
    }

    /// A client of the operator's API on the Unix socket `path`, if a server answers there.
    pub async fn operator(path: &Path) -> Option<Client> {
        tokio::net::UnixStream::connect(path).await.ok()?;
        Some(Client { authority: "localhost".into(), socket: Some(path.to_path_buf()), token: None, tls: None })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>> {
        match &self.socket {
            Some(path) => handshake(tokio::net::UnixStream::connect(path).await.with_context(|| format!("connecting to {}", path.display()))?).await,
            None => {
                let tcp = TcpStream::connect(&self.authority).await.with_context(|| format!("connecting to the server at {}", self.authority))?;
                match &self.tls {
                    None => handshake(tcp).await,
                    Some((connector, name)) => handshake(
                        connector.connect(name.clone(), tcp).await.with_context(|| format!("TLS with the server at {}", self.authority))?,
                    )
                    .await,
                }
            }
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<hyper::Response<hyper::body::Incoming>> {
        let mut sender = self.connect().await?;
        let mut request = hyper::Request::builder().method(method).uri(path).header("host", &self.authority);
        if let Some(token) = &self.token {
            let token = std::str::from_utf8(token.expose()).context("the token is not text")?;
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        sender.send_request(request).await.with_context(|| format!("{method} {path}"))
    }

    async fn checked(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<hyper::Response<hyper::body::Incoming>> {
        let response = self.send(method, path, body).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        if status == StatusCode::UNAUTHORIZED {
            bail!("the server refused the token: {message}");
        }
        bail!("{message}")
    }

    /// Sends `body` (if any) as JSON and decodes the JSON answer.
    pub async fn json<T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<&(impl Serialize + ?Sized)>) -> Result<T> {
        let body = body.map(serde_json::to_vec).transpose()?;
        let bytes = self.checked(method, path, body).await?.into_body().collect().await?.to_bytes();
        serde_json::from_slice(&bytes).with_context(|| format!("{method} {path}: unexpected answer"))
    }

    /// Sends a request whose answer has no body worth reading.
    pub async fn call(&self, method: &str, path: &str) -> Result<()> {
        self.checked(method, path, None).await?.into_body().collect().await?;
        Ok(())
    }

    /// The answer's body, whole.
    pub async fn bytes(&self, path: &str) -> Result<Vec<u8>> {
        Ok(self.checked("GET", path, None).await?.into_body().collect().await?.to_bytes().to_vec())
    }

    /// Streams the answer's body into `out`; fails if the server broke off.
    pub async fn download(&self, path: &str, out: &mut impl Write) -> Result<u64> {
        let mut body = self.checked("GET", path, None).await?.into_body();
        let mut total = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.context("the server broke off the download")?;
            if let Some(data) = frame.data_ref() {
                out.write_all(data)?;
                total += data.len() as u64;
            }
        }
        Ok(total)
    }
}

/// TLS for `host`: the public web roots, plus the certificates in `cacert`.
fn tls_connector(host: &str, cacert: Option<&Path>) -> Result<(tokio_rustls::TlsConnector, ServerName<'static>)> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(file) = cacert {
        let pem = std::fs::read_to_string(file).with_context(|| format!("--server-cacert {}", file.display()))?;
        let certs = coffer::sandbox::TlsOptions::parse_roots(&pem).map_err(|e| anyhow!("--server-cacert {}: {e}", file.display()))?;
        for cert in certs {
            roots.add(cert).with_context(|| format!("--server-cacert {}", file.display()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_owned())
        .map_err(|e| anyhow!("--server host {host:?}: {e}"))?;
    Ok((tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)), name))
}

async fn handshake<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static>(stream: S) -> Result<SendRequest<Full<Bytes>>> {
    let (sender, connection) = hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// `name` made safe as a path segment.
pub fn segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes()).collect()
}
