//! The API over TLS: a listener that accepts TCP connections, completes each TLS handshake in
//! a task of its own (under a deadline, so a client that never finishes one holds nothing),
//! and hands finished connections to the HTTP server. The certificate and key are read from
//! their files again whenever either file changes, so a renewed certificate applies to the
//! next connection without a restart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use thiserror::Error;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

use crate::sandbox::TlsOptions;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// The certificate or key could not be used.
#[derive(Debug, Error)]
#[error("{path}: {reason}")]
pub struct TlsError {
    /// The file at fault.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// The server's certificate chain and private key, from PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// `--tls-cert-file`.
    pub cert: PathBuf,
    /// `--tls-private-key-file`.
    pub key: PathBuf,
}

impl TlsFiles {
    fn load(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let err = |path: &Path, reason: String| TlsError { path: path.display().to_string(), reason };
        let pem = std::fs::read_to_string(&self.cert).map_err(|e| err(&self.cert, e.to_string()))?;
        let certs = TlsOptions::parse_roots(&pem).map_err(|e| err(&self.cert, e))?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| err(&self.key, e.to_string()))?;
        let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| err(&self.cert, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| err(&self.key, format!("does not go with the certificate: {e}")))?;
        Ok(Arc::new(config))
    }

    fn modified(&self) -> Modified {
        let time = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        (time(&self.cert), time(&self.key))
    }
}

/// When the certificate and key files were last modified.
type Modified = (Option<SystemTime>, Option<SystemTime>);

/// The configuration in use, reloaded when the files change.
struct Reloading {
    files: TlsFiles,
    seen: Mutex<(Modified, Arc<ServerConfig>)>,
}

impl Reloading {
    fn current(&self) -> Arc<ServerConfig> {
        let modified = self.files.modified();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.0 != modified {
            match self.files.load() {
                Ok(config) => {
                    tracing::info!(cert = %self.files.cert.display(), "reloaded the TLS certificate");
                    *seen = (modified, config);
                }
                // A half-written renewal: keep serving the old one and try again next time.
                Err(e) => tracing::warn!("keeping the previous TLS certificate: {e}"),
            }
        }
        seen.1.clone()
    }
}

/// A TCP listener whose connections are TLS, for `axum::serve`.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    /// Serves TLS with `files` on `listener`; fails at once if the files are not usable.
    pub fn new(listener: TcpListener, files: TlsFiles) -> Result<TlsListener, TlsError> {
        let config = files.load()?;
        let local = listener.local_addr().map_err(|e| TlsError { path: "--listen".into(), reason: e.to_string() })?;
        let reloading = Arc::new(Reloading { seen: Mutex::new((files.modified(), config)), files });
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, say: wait a little rather than spin.
                        tracing::warn!("accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let acceptor = tokio_rustls::TlsAcceptor::from(reloading.current());
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => drop(tx.send((tls, peer)).await),
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake not finished within {HANDSHAKE_DEADLINE:?}"),
                    }
                });
            }
        });
        Ok(TlsListener { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task ends only when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
