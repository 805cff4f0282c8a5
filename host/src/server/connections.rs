//! The API's connections, served with limits: at most so many at once (more are closed on
//! arrival), a deadline for each request's headers that also bounds the idle wait between
//! requests on a kept-alive connection (a silent or slow client holds nothing for long), and
//! a shutdown that lets running requests finish for a bounded time, then goes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;


/// Limits on the API's connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections open at once; more are closed as they arrive.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, or sit idle between requests.
    pub header_timeout: Duration,
    /// How long running requests are given at shutdown.
    pub drain: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits { max_connections: 1024, header_timeout: Duration::from_secs(10), drain: Duration::from_secs(10) }
    }
}

/// Serves `router` on the connections `listener` accepts until `shutdown`, within `limits`.
pub async fn serve<L>(mut listener: L, router: Router, limits: ConnectionLimits, shutdown: impl std::future::Future<Output = ()>)
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let Ok(slot) = open.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = limits.max_connections, "closed a connection: the server holds as many as it takes");
            continue;
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            // Each request knows its client's address (bad tokens are counted per address).
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            async move { tower_service::Service::call(&mut router, request).await }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(io), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection.await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown()).await.is_err() {
        tracing::warn!("stopped waiting for open connections after {:?}", limits.drain);
    }
}
