//! A blocking HTTP client over `wasi:http`, for providers that talk to a storage service.
//! Request bodies can be spliced from a host input stream and response bodies into a host
//! output stream, so object data need not pass through guest memory.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, FutureIncomingResponse, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::{InputStream, OutputStream};

use crate::Error;
use crate::streams::{read_to_end, skip, splice_all, splice_up_to, write_all};

/// Bodies up to this size are handed to the host whole before the request is sent; the
/// host's request-body channel takes one write of up to 1 MiB without a reader.
const BODY_SENT_WITH_HEAD: usize = 64 << 10;

/// A request body.
pub enum Body<'a> {
    /// No body.
    Empty,
    /// Bytes in memory.
    Bytes(&'a [u8]),
    /// Everything from a stream (send `content-length` yourself if the server needs it).
    Stream(&'a InputStream),
}

/// A response whose body has not been read yet.
pub struct Response {
    /// The status code.
    pub status: u16,
    headers: Vec<(String, Vec<u8>)>,
    // Declared before `body`: the stream is a child of the body and must be dropped first.
    stream: InputStream,
    body: IncomingBody,
}

fn http_error(what: &str, e: ErrorCode) -> Error {
    match e {
        ErrorCode::HttpRequestDenied => Error::PermissionDenied(format!(
            "{what}: the host denied the request (the endpoint is not one the location's config names)"
        )),
        ErrorCode::DnsTimeout => Error::Unavailable(format!("{what}: the name lookup timed out")),
        ErrorCode::DnsError(d) => Error::Unavailable(format!(
            "{what}: the name lookup failed ({})",
            d.rcode.as_deref().unwrap_or("no answer")
        )),
        ErrorCode::DestinationNotFound => Error::Unavailable(format!("{what}: no such host")),
        ErrorCode::DestinationUnavailable | ErrorCode::DestinationIpUnroutable => {
            Error::Unavailable(format!("{what}: the host cannot be reached"))
        }
        ErrorCode::ConnectionRefused => Error::Unavailable(format!("{what}: connection refused")),
        ErrorCode::ConnectionTerminated => Error::Unavailable(format!("{what}: the server closed the connection")),
        ErrorCode::ConnectionTimeout => Error::Unavailable(format!("{what}: the connection timed out")),
        ErrorCode::ConnectionReadTimeout => Error::Unavailable(format!("{what}: the server stopped answering (read timed out)")),
        ErrorCode::ConnectionWriteTimeout => Error::Unavailable(format!("{what}: the server stopped reading (write timed out)")),
        ErrorCode::HttpProtocolError => Error::Unavailable(format!(
            "{what}: the connection failed mid-request (HTTP protocol error: the server closed it or answered garbage)"
        )),
        ErrorCode::TlsCertificateError | ErrorCode::TlsAlertReceived(_) | ErrorCode::TlsProtocolError => Error::Unavailable(format!(
            "{what}: TLS failed ({e:?}); a server whose certificate is not from a public CA needs the location's caCert"
        )),
        other => Error::Other(format!("{what}: {other:?}")),
    }
}

impl Response {
    /// The first value of header `name` (case-insensitive), as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// The response itself when its status is 2xx; otherwise the error that `to_error` makes of
    /// `what`, the status and the body (the service's error document).
    pub fn success_or(self, what: &str, to_error: impl FnOnce(&str, u16, &str) -> Error) -> Result<Response, Error> {
        if (200..300).contains(&self.status) {
            return Ok(self);
        }
        let status = self.status;
        Err(to_error(what, status, &self.text()?))
    }

    /// The whole body in memory (for small documents).
    pub fn bytes(self) -> Result<Vec<u8>, Error> {
        let out = read_to_end(&self.stream)?;
        drop(self.stream);
        let _ = IncomingBody::finish(self.body);
        Ok(out)
    }

    /// The body as text.
    pub fn text(self) -> Result<String, Error> {
        Ok(String::from_utf8_lossy(&self.bytes()?).into_owned())
    }

    /// Streams the body into `sink`; returns its length.
    pub fn splice_into(self, sink: &OutputStream) -> Result<u64, Error> {
        let n = splice_all(&self.stream, sink)?;
        drop(self.stream);
        let _ = IncomingBody::finish(self.body);
        Ok(n)
    }
}

/// The `Range` header value for `length` (at least 1) bytes from `offset`: `bytes=first-last`.
pub fn range(offset: u64, length: u64) -> String {
    format!("bytes={offset}-{}", offset.saturating_add(length.max(1) - 1))
}

impl Response {
    /// Streams the answer to a GET with [`range`]`(offset, length)` into `sink` and returns how
    /// many bytes it moved: the range of a 206, the same bytes of a 200 from a server that
    /// ignored the header, nothing for a 416 (the range starts at or past the object's end).
    /// Any other status is the error `to_error` makes of it.
    pub fn splice_range_into(
        self,
        what: &str,
        to_error: impl FnOnce(&str, u16, &str) -> Error,
        offset: u64,
        length: u64,
        sink: &OutputStream,
    ) -> Result<u64, Error> {
        match self.status {
            416 => {
                drop(self.stream);
                let _ = IncomingBody::finish(self.body);
                Ok(0)
            }
            200 | 206 => {
                if self.status == 200 && skip(&self.stream, offset)? < offset {
                    return self.splice_up_to(sink, 0);
                }
                self.splice_up_to(sink, length)
            }
            status if (200..300).contains(&status) => Err(Error::Other(format!("{what}: answered {status} to a ranged GET"))),
            status => Err(to_error(what, status, &self.text()?)),
        }
    }

    fn splice_up_to(self, sink: &OutputStream, limit: u64) -> Result<u64, Error> {
        let n = splice_up_to(&self.stream, sink, limit)?;
        drop(self.stream);
        let _ = IncomingBody::finish(self.body);
        Ok(n)
    }
}

/// A request whose body has been handed to the host and whose response has not arrived yet.
/// Holding several lets a provider keep more than one request in flight.
pub struct Pending {
    url: String,
    future: FutureIncomingResponse,
}

impl Pending {
    /// Waits for the response head.
    pub fn wait(self) -> Result<Response, Error> {
        let url = self.url;
        self.future.subscribe().block();
        let response = match self.future.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(e))) => return Err(http_error(&url, e)),
            _ => return Err(Error::Other(format!("{url}: the response was lost"))),
        };
        let status = response.status();
        let headers = response.headers().entries();
        let body = response.consume().map_err(|()| Error::Other("response body taken twice".into()))?;
        let stream = body.stream().map_err(|()| Error::Other("response body stream taken twice".into()))?;
        Ok(Response { status, headers, stream, body })
    }
}

/// Sends a request to `url` (`http(s)://authority/path?query`) and waits for the response
/// head.
pub fn send(method: &str, url: &str, headers: &[(String, String)], body: Body<'_>) -> Result<Response, Error> {
    start(method, url, headers, body)?.wait()
}

/// Sends a request to `url` (`http(s)://authority/path?query`), body included, without
/// waiting for the response.
pub fn start(method: &str, url: &str, headers: &[(String, String)], body: Body<'_>) -> Result<Pending, Error> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| Error::InvalidArgument(format!("{url:?} is not a URL")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let fields: Vec<(String, Vec<u8>)> = headers.iter().map(|(k, v)| (k.clone(), v.as_bytes().to_vec())).collect();
    let fields = Fields::from_list(&fields).map_err(|e| Error::InvalidArgument(format!("request headers: {e:?}")))?;
    let request = OutgoingRequest::new(fields);
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "PUT" => Method::Put,
        "POST" => Method::Post,
        "DELETE" => Method::Delete,
        other => Method::Other(other.to_owned()),
    };
    let bad = |what: &str| Error::InvalidArgument(format!("{url}: invalid {what}"));
    request.set_method(&method).map_err(|()| bad("method"))?;
    request
        .set_scheme(Some(&match scheme {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => Scheme::Other(other.to_owned()),
        }))
        .map_err(|()| bad("scheme"))?;
    request.set_authority(Some(authority)).map_err(|()| bad("authority"))?;
    request.set_path_with_query(Some(path)).map_err(|()| bad("path"))?;
    let outgoing = request.body().map_err(|()| Error::Other("request body taken twice".into()))?;
    let small = match body {
        Body::Empty => true,
        Body::Bytes(bytes) => bytes.len() <= BODY_SENT_WITH_HEAD,
        Body::Stream(_) => false,
    };
    if small {
        // A small body goes out with the head: a server that answers from the head alone (a
        // bad signature) then finds the whole request read, and closes without resetting the
        // connection under the answer.
        write_body(&outgoing, body)?;
        OutgoingBody::finish(outgoing, None).map_err(|e| http_error(url, e))?;
        let future = outgoing_handler::handle(request, None).map_err(|e| http_error(url, e))?;
        return Ok(Pending { url: url.to_owned(), future });
    }
    let future = outgoing_handler::handle(request, None).map_err(|e| http_error(url, e))?;
    let pending = Pending { url: url.to_owned(), future };
    if let Err(write_error) = write_body(&outgoing, body) {
        // The body stream closes early when the request has already ended: the host refused
        // it, or the server answered before taking it all. The answer says why.
        drop(outgoing);
        return Err(match pending.wait() {
            Err(cause) => cause,
            Ok(response) => Error::Other(format!("{write_error} (the server answered {} first)", response.status)),
        });
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| http_error(url, e))?;
    Ok(pending)
}

fn write_body(outgoing: &OutgoingBody, body: Body<'_>) -> Result<(), Error> {
    let stream = outgoing.write().map_err(|()| Error::Other("request body stream taken twice".into()))?;
    match body {
        // With `content-length: 0` the stream is complete before any write, and even a flush
        // would fail as closed.
        Body::Empty | Body::Bytes([]) => Ok(()),
        Body::Bytes(bytes) => write_all(&stream, bytes),
        Body::Stream(input) => splice_all(input, &stream).map(drop),
    }
}
