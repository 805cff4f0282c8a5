//! One instance's outbound HTTP, sent by the host: connections only to addresses the
//! instance's [`Reach`] permits, and TLS verified with the public web roots plus the
//! location's `caCert`, or not at all when the config sets `insecureSkipTLSVerify=true`
//! (Velero's aws key, for self-signed test servers). The host does the TLS, so providers need
//! no certificate code.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::network::{self, Reach};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// How an instance's HTTPS is verified, decided from its location's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM certificates trusted besides the public roots (the location's `caCert`).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Accept any certificate (`insecureSkipTLSVerify=true`).
    pub skip_verify: bool,
}

impl TlsOptions {
    /// The certificates in `pem`; an error says why there are none.
    pub fn parse_roots(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
        let roots = CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
        if roots.is_empty() {
            return Err("holds no PEM certificate".into());
        }
        Ok(roots)
    }

    /// The client config. Every location without TLS settings shares one.
    pub(crate) fn client_config(&self) -> Arc<ClientConfig> {
        static PUBLIC_ROOTS: OnceLock<Arc<ClientConfig>> = OnceLock::new();
        if *self == TlsOptions::default() {
            return PUBLIC_ROOTS.get_or_init(|| self.build()).clone();
        }
        self.build()
    }

    fn build(&self) -> Arc<ClientConfig> {
        // The provider is named rather than taken from the process default, which is ambiguous
        // when more than one is compiled in.
        let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions");
        let config = if self.skip_verify {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate)).with_no_client_auth()
        } else {
            let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
            // Certificates were parsed when the grants were made; one rustls will not use as a
            // trust anchor simply adds nothing.
            roots.add_parsable_certificates(self.extra_roots.iter().cloned());
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Arc::new(config)
    }
}

/// Verifies handshake signatures but trusts any certificate: `insecureSkipTLSVerify=true`.
#[derive(Debug)]
struct AcceptAnyCertificate;

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider().signature_verification_algorithms.supported_schemes()
    }
}

/// Data frames are joined up to this size before the guest takes them: a response arrives in
/// frames of a few KiB, and every frame the guest takes costs it a wake-up and calls.
const JOINED: usize = 256 << 10;

/// How long joined data waits for more before the guest gets it: short enough that a slow
/// response still flows, long enough that a fast one arrives in large pieces.
const LINGER: Duration = Duration::from_millis(1);

type BodyFrame = Result<http_body::Frame<Bytes>, HttpError>;

/// A response body that fails when no frame arrives for the between-bytes timeout, and that
/// hands its data on in pieces of up to [`JOINED`] bytes: frames are joined until that size,
/// the body's end, or a pause of [`LINGER`].
struct TimedBody {
    incoming: hyper::body::Incoming,
    timeout: tokio::time::Interval,
    /// Data received and not yet handed on.
    joined: bytes::BytesMut,
    /// When the joined data is handed on even if no more arrives.
    linger: Option<Pin<Box<tokio::time::Sleep>>>,
    /// What followed the joined data (trailers, an error, or the end: `None`), handed on after it.
    after: Option<Option<BodyFrame>>,
}

/// A connection's or body's failure as wasi:http names it; hyper's own timeouts are the
/// response timing out.
fn hyper_error(e: hyper::Error) -> HttpError {
    if e.is_timeout() { HttpError::HttpResponseTimeout } else { e.into() }
}

impl TimedBody {
    fn new(incoming: hyper::body::Incoming, timeout: tokio::time::Interval) -> Self {
        TimedBody { incoming, timeout, joined: bytes::BytesMut::new(), linger: None, after: None }
    }

    /// The joined data, as one frame.
    fn hand_on(&mut self) -> Poll<Option<BodyFrame>> {
        self.linger = None;
        Poll::Ready(Some(Ok(http_body::Frame::data(self.joined.split().freeze()))))
    }
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BodyFrame>> {
        let this = &mut *self;
        if this.joined.is_empty()
            && let Some(after) = this.after.take()
        {
            return Poll::Ready(after);
        }
        while this.after.is_none() && this.joined.len() < JOINED {
            match Pin::new(&mut this.incoming).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    this.timeout.reset();
                    match frame.into_data() {
                        // A frame as large as a joined one goes on as it is.
                        Ok(data) if this.joined.is_empty() && data.len() >= JOINED => return Poll::Ready(Some(Ok(http_body::Frame::data(data)))),
                        Ok(data) => this.joined.extend_from_slice(&data),
                        Err(trailers) => this.after = Some(Some(Ok(trailers))),
                    }
                }
                Poll::Ready(Some(Err(e))) => this.after = Some(Some(Err(hyper_error(e)))),
                Poll::Ready(None) => this.after = Some(None),
                Poll::Pending if this.joined.is_empty() => {
                    ready!(this.timeout.poll_tick(cx));
                    return Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)));
                }
                Poll::Pending => {
                    let linger = this.linger.get_or_insert_with(|| Box::pin(tokio::time::sleep(LINGER)));
                    ready!(linger.as_mut().poll(cx));
                    return this.hand_on();
                }
            }
        }
        if this.joined.is_empty() {
            return Poll::Ready(this.after.take().flatten());
        }
        this.hand_on()
    }

    fn is_end_stream(&self) -> bool {
        self.joined.is_empty() && (matches!(self.after, Some(None)) || (self.after.is_none() && self.incoming.is_end_stream()))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}

/// A response body read by a task of its own through a [`TimedBody`]: the store's task, which
/// runs the guest, then wakes once per joined piece rather than once per frame. The task ends
/// when the body does, or as soon as the guest drops it (closing the connection even while a
/// hung server sends nothing).
struct PumpedBody {
    pieces: tokio::sync::mpsc::Receiver<BodyFrame>,
}

impl PumpedBody {
    fn new(body: TimedBody) -> Self {
        let (sender, pieces) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            let mut body = pin!(body);
            loop {
                let piece = tokio::select! {
                    piece = body.frame() => piece,
                    () = sender.closed() => return,
                };
                let Some(piece) = piece else { return };
                let failed = piece.is_err();
                if sender.send(piece).await.is_err() || failed {
                    return;
                }
            }
        });
        PumpedBody { pieces }
    }
}

impl http_body::Body for PumpedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BodyFrame>> {
        self.pieces.poll_recv(cx)
    }
}

/// The connection's remaining work, run by wasmtime after the response head is handed over.
pub(crate) type ConnectionFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

/// A connection to a server, over TLS or not.
trait Connection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Connection for T {}

/// Sends a request as wasmtime's default sender does (HTTP/1.1; the request options'
/// timeouts, 600 s by default), but connecting only to addresses `reach` permits, and for
/// `https` over TLS configured by `tls`.
pub(crate) async fn send_request(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    tls: Arc<ClientConfig>,
    reach: Reach,
    location: String,
) -> Result<(http::Response<WasiBody>, ConnectionFuture), HttpError> {
    let default = Duration::from_secs(600);
    let connect_timeout = options.and_then(|o| o.connect_timeout).unwrap_or(default);
    let first_byte_timeout = options.and_then(|o| o.first_byte_timeout).unwrap_or(default);
    let between_bytes_timeout = options.and_then(|o| o.between_bytes_timeout).unwrap_or(default).max(Duration::from_nanos(1));

    let uri = request.uri();
    let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let host = uri.host().ok_or(HttpError::HttpRequestUriInvalid)?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = network::connect(&reach, &location, &host, port, connect_timeout).await?;
    let stream: Box<dyn Connection> = if https {
        let server_name = ServerName::try_from(host.clone()).map_err(HttpError::InvalidDnsNameError)?;
        Box::new(tokio_rustls::TlsConnector::from(tls).connect(server_name, tcp).await.map_err(HttpError::Tls)?)
    } else {
        Box::new(tcp)
    };
    let (mut sender, connection) = tokio::time::timeout(connect_timeout, hyper::client::conn::http1::handshake(TokioIo::new(stream)))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;

    // Only a proxy gets the scheme and authority in the request line.
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    *request.uri_mut() = http::Uri::builder().path_and_query(path).build().map_err(|_| HttpError::HttpRequestUriInvalid)?;

    let send = async {
        let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| HttpError::ConnectionReadTimeout)??;
        let mut timeout = tokio::time::interval(between_bytes_timeout);
        timeout.reset();
        Ok::<_, HttpError>(response.map(|incoming| PumpedBody::new(TimedBody::new(incoming, timeout)).boxed_unsync()))
    };
    // Drive the connection while waiting for the response head.
    let mut send = pin!(send);
    let mut connection = Some(connection);
    let response = std::future::poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(result),
        Poll::Pending => {
            let Some(conn) = connection.as_mut() else { return Poll::Pending };
            let done = ready!(Pin::new(conn).poll(cx));
            connection = None;
            match done {
                Ok(()) => send.as_mut().poll(cx),
                Err(e) => Poll::Ready(Err(HttpError::from(e))),
            }
        }
    })
    .await?;
    let rest: ConnectionFuture = Box::new(async move {
        match connection {
            Some(conn) => conn.await.map_err(hyper_error),
            None => Ok(()),
        }
    });
    Ok((response, rest))
}
