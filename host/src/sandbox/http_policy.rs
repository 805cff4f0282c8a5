//! The outbound-HTTP allow-list of one instance, enforced on the effective request URI.

use std::future::Future;
use std::sync::Arc;

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::grants::Endpoint;
use super::network::Reach;
use super::tls;

/// Lets a request through only when its scheme, host and port are among the grants.
/// Matching is on the URI the host will actually connect to, never on headers; the address
/// connected to must also be one the instance's reach permits. HTTPS is verified as the
/// location's TLS settings say.
pub(crate) struct HttpPolicy {
    location: String,
    allowed: Vec<Endpoint>,
    tls: Arc<rustls::ClientConfig>,
    reach: Reach,
}

impl HttpPolicy {
    pub(crate) fn new(location: String, allowed: Vec<Endpoint>, tls: Arc<rustls::ClientConfig>, reach: Reach) -> Self {
        HttpPolicy { location, allowed, tls, reach }
    }

    fn permits(&self, uri: &http::Uri) -> bool {
        let Ok(url) = url::Url::parse(&uri.to_string()) else { return false };
        Endpoint::of(&url).is_some_and(|e| self.allowed.contains(&e))
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        if !self.permits(request.uri()) {
            tracing::warn!(location = %self.location, uri = %request.uri(), "denied an outbound request to an endpoint the location does not name");
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        Box::new(tls::send_request(request, options, self.tls.clone(), self.reach.clone(), self.location.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_granted_origins_pass() {
        let p = HttpPolicy::new(
            "l".into(),
            vec![Endpoint { scheme: "http".into(), host: "127.0.0.1".into(), port: 9000 }],
            super::tls::TlsOptions::default().client_config(),
            Reach::Any,
        );
        assert!(p.permits(&"http://127.0.0.1:9000/bucket/key".parse().unwrap()));
        assert!(!p.permits(&"http://127.0.0.1:9001/".parse().unwrap()));
        assert!(!p.permits(&"https://127.0.0.1:9000/".parse().unwrap()));
        assert!(!p.permits(&"http://localhost:9000/".parse().unwrap()));
        assert!(!p.permits(&"/relative".parse().unwrap()));
    }
}
