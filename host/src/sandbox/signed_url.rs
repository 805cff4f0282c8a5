//! Fetching a URL that a provider signed. The URL is the provider's output, so the host
//! follows it only within the instance's own grants: an `http(s)` URL only to an origin the
//! instance may reach itself (same address rules, same TLS trust), a `file` URL only inside a
//! directory granted to it, read through that directory's handle. The body is bounded.

use std::io::Read;
use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use thiserror::Error;
use url::Url;

use super::grants::{Endpoint, Grants};
use super::tls;

/// What fetching a signed URL gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The HTTP status (200 for a file read).
    pub status: u16,
    /// The body, at most the limit asked for.
    pub body: Vec<u8>,
}

impl Fetched {
    /// Whether the status is 2xx.
    pub fn success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a signed URL could not be fetched.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Not a URL, or a scheme the host does not follow.
    #[error("{url:?} is not an http, https or file URL")]
    Unsupported {
        /// The URL.
        url: String,
    },
    /// Its origin or path is outside what the instance is granted.
    #[error("{url:?} leads outside the instance's grants ({reason})")]
    NotGranted {
        /// The URL.
        url: String,
        /// Which grant it misses.
        reason: String,
    },
    /// The request or the read failed.
    #[error("fetching {url:?}: {reason}")]
    Failed {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The body is longer than the limit.
    #[error("{url:?} answered more than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
}

/// GETs `url` as the instance granted `grants` could, keeping at most `limit` bytes of body.
pub async fn fetch_signed_url(grants: &Grants, url: &str, limit: u64) -> Result<Fetched, FetchError> {
    let parsed = Url::parse(url).map_err(|_| FetchError::Unsupported { url: url.into() })?;
    match parsed.scheme() {
        "http" | "https" => fetch_http(grants, url, &parsed, limit).await,
        "file" => read_file(grants, url, &parsed, limit),
        _ => Err(FetchError::Unsupported { url: url.into() }),
    }
}

async fn fetch_http(grants: &Grants, url: &str, parsed: &Url, limit: u64) -> Result<Fetched, FetchError> {
    let granted = Endpoint::of(parsed).filter(|e| grants.endpoints.contains(e));
    if granted.is_none() {
        let reason = format!("its origin is not among {}", list(grants.endpoints.iter()));
        return Err(FetchError::NotGranted { url: url.into(), reason });
    }
    let failed = |reason: String| FetchError::Failed { url: url.into(), reason };
    // The request line carries the path only: the origin goes in Host, as signatures expect.
    let host = match parsed.port() {
        Some(port) => format!("{}:{port}", parsed.host_str().unwrap_or_default()),
        None => parsed.host_str().unwrap_or_default().to_owned(),
    };
    let request = http::Request::get(url)
        .header(http::header::HOST, host)
        .body(Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync())
        .map_err(|e| failed(e.to_string()))?;
    let (response, connection) =
        tls::send_request(request, None, grants.tls.client_config(), grants.reach.clone(), grants.location.clone())
            .await
            .map_err(|e| failed(format!("{e:?}")))?;
    let connection = tokio::spawn(Box::into_pin(connection));
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| failed(format!("{e:?}")))?;
        if let Ok(data) = frame.into_data() {
            if (kept.len() + data.len()) as u64 > limit {
                connection.abort();
                return Err(FetchError::TooLarge { url: url.into(), limit });
            }
            kept.extend_from_slice(&data);
        }
    }
    connection.abort();
    Ok(Fetched { status, body: kept })
}

fn read_file(grants: &Grants, url: &str, parsed: &Url, limit: u64) -> Result<Fetched, FetchError> {
    let failed = |reason: String| FetchError::Failed { url: url.into(), reason };
    let path = parsed.to_file_path().map_err(|()| FetchError::Unsupported { url: url.into() })?;
    let inside = grants.directories.iter().find_map(|d| Some((d, path.strip_prefix(&d.host).ok()?)));
    let Some((grant, relative)) = inside else {
        let reason = format!("its path is in none of {}", list(grants.directories.iter().map(|d| d.host.display())));
        return Err(FetchError::NotGranted { url: url.into(), reason });
    };
    // Through the directory's handle: `..` and links cannot leave it.
    let file = grant.dir.open(relative).map_err(|e| failed(format!("{}: {e}", Path::new(relative).display())))?;
    let mut body = Vec::new();
    file.take(limit + 1).read_to_end(&mut body).map_err(|e| failed(e.to_string()))?;
    if body.len() as u64 > limit {
        return Err(FetchError::TooLarge { url: url.into(), limit });
    }
    Ok(Fetched { status: 200, body })
}

fn list<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let shown: Vec<String> = items.map(|i| i.to_string()).collect();
    if shown.is_empty() { "nothing (it is granted none)".into() } else { shown.join(", ") }
}
