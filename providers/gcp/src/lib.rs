//! `velero.io/gcp`: Google Cloud Storage over `wasi:http`, through the GCS JSON API.
//!
//! Config (Velero's GCP plugin keys): `storeEndpoint` (an endpoint other than
//! `https://storage.googleapis.com`, such as a Private Service Connect endpoint or
//! fake-gcs-server; a trailing `/storage/v1/` is allowed, as the Go client takes it),
//! `universeDomain` (endpoints become `storage.<domain>`), `kmsKeyName` (Cloud KMS key for new
//! objects) and `serviceAccount` (accepted; Velero uses it only with Workload Identity), plus
//! Coffer's `tokenEndpoint` (where to exchange the key's assertion for an access token, instead
//! of the key's `token_uri`) and the injected `bucket`, `prefix` and `caCert`. The credential is
//! a service-account key file. Without a credential, requests go unauthenticated, which only a
//! `storeEndpoint` (an emulator) accepts.
//!
//! Objects larger than one chunk are sent with a resumable upload, one chunk at a time.
//! Signed URLs are V4 (`GOOG4-RSA-SHA256`), signed with the key. `caCert` is honoured by the
//! host, which makes the TLS connections. Refused by name rather than ignored:
//! `credentialsFile` (a host path; the location's credential is what Coffer passes).

mod service_account;

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coffer_guest_sdk::http::{self, Body, Response};
use coffer_guest_sdk::paging::{self, Page};
use coffer_guest_sdk::sigv4::{self, canonical_query};
use coffer_guest_sdk::streams::{InputStream, OutputStream, read_up_to};
use coffer_guest_sdk::{Config, Credential, Error, Manifest, ObjectEntry, ObjectStore, Result, deleted, exists, uri};
use serde_json::Value;

use service_account::ServiceAccount;

const KEYS: &[&str] = &["kmsKeyName", "serviceAccount", "credentialsFile", "storeEndpoint", "universeDomain", "tokenEndpoint"];
/// One resumable-upload chunk (a multiple of 256 KiB, as GCS requires): what a put holds in
/// guest memory, twice (the chunk being sent and the next, read to learn whether it is last).
const CHUNK: usize = 8 << 20;
/// Objects per list page (the JSON API maximum).
const PAGE: &str = "1000";
/// The longest a V4 signed URL may live.
const MAX_SIGNED_TTL: u64 = 7 * 24 * 3600;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Maps a JSON API error response onto the SDK's variants.
fn gcs_error(what: &str, status: u16, body: &str) -> Error {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            let error = v.get("error")?;
            // The JSON API nests `{code, message}`; the OAuth endpoint returns
            // `{error, error_description}`.
            error.get("message").or_else(|| v.get("error_description")).or(Some(error)).and_then(Value::as_str).map(str::to_owned)
        })
        .unwrap_or_else(|| body.lines().next().unwrap_or_default().to_owned());
    let text = format!("{what}: {status} {message}").trim_end().to_owned();
    match status {
        // The OAuth endpoint refuses a bad grant with 400.
        400 if what.starts_with("token") => Error::Unauthenticated(text),
        _ => Error::from_status(status, text),
    }
}

fn checked(what: &str, response: Response) -> Result<Response> {
    response.success_or(what, gcs_error)
}

fn with_query(url: &str, query: &[(&str, &str)]) -> String {
    if query.is_empty() { url.to_owned() } else { format!("{url}?{}", uri::query(query)) }
}

/// How requests are authorised.
enum Auth {
    /// No `Authorization` header: for emulators.
    Anonymous,
    /// Bearer tokens from a service-account key, cached until shortly before they expire.
    ServiceAccount { account: Box<ServiceAccount>, token_url: String, token: RefCell<Option<(String, u64)>> },
}

struct Gcs {
    /// `scheme://authority` plus any base path, without a trailing `/`.
    root: String,
    kms_key_name: Option<String>,
    auth: Auth,
}

impl Gcs {
    fn object_url(&self, bucket: &str, key: &str) -> String {
        format!("{}/storage/v1/b/{}/o/{}", self.root, uri::encode(bucket, false), uri::encode(key, false))
    }

    fn upload_url(&self, bucket: &str) -> String {
        format!("{}/upload/storage/v1/b/{}/o", self.root, uri::encode(bucket, false))
    }

    /// The `Authorization` header, fetching a fresh access token when the cached one is old.
    fn authorization(&self) -> Result<Option<(String, String)>> {
        let Auth::ServiceAccount { account, token_url, token } = &self.auth else { return Ok(None) };
        let now = now();
        if let Some((cached, _)) = token.borrow().as_ref().filter(|(_, expires)| *expires > now) {
            return Ok(Some(("authorization".to_owned(), format!("Bearer {cached}"))));
        }
        let form = format!(
            "grant_type={}&assertion={}",
            uri::encode("urn:ietf:params:oauth:grant-type:jwt-bearer", false),
            account.assertion(token_url, now)
        );
        let headers = [
            ("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned()),
            ("content-length".to_owned(), form.len().to_string()),
        ];
        let what = format!("token request to {token_url} for {}", account.email);
        let response = checked(&what, http::send("POST", token_url, &headers, Body::Bytes(form.as_bytes()))?)?;
        let json: Value = serde_json::from_str(&response.text()?).map_err(|e| Error::Unauthenticated(format!("{what}: the answer is not JSON: {e}")))?;
        let access = json
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Unauthenticated(format!("{what}: the answer has no access_token")))?
            .to_owned();
        // Renew a minute early so a token never expires in flight.
        let lifetime = json.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
        *token.borrow_mut() = Some((access.clone(), now + lifetime.saturating_sub(60)));
        Ok(Some(("authorization".to_owned(), format!("Bearer {access}"))))
    }

    /// Sends one request with the current authorisation.
    fn send(&self, method: &str, url: &str, extra: &[(String, String)], body: Body<'_>) -> Result<Response> {
        let mut headers = extra.to_vec();
        headers.extend(self.authorization()?);
        http::send(method, url, &headers, body)
    }

    fn put_simple(&self, bucket: &str, key: &str, bytes: &[u8]) -> Result<()> {
        let mut query = vec![("uploadType", "media"), ("name", key)];
        if let Some(kms) = &self.kms_key_name {
            query.push(("kmsKeyName", kms));
        }
        let headers = [
            ("content-type".to_owned(), "application/octet-stream".to_owned()),
            ("content-length".to_owned(), bytes.len().to_string()),
        ];
        let response = self.send("POST", &with_query(&self.upload_url(bucket), &query), &headers, Body::Bytes(bytes))?;
        checked(&format!("upload {key}"), response).map(drop)
    }

    /// A resumable upload: opens a session, then sends `first` and the rest of `body` chunk by
    /// chunk, the last one with the total size. A failed upload's session is cancelled.
    fn put_resumable(&self, bucket: &str, key: &str, first: Vec<u8>, body: &InputStream) -> Result<u64> {
        let what = format!("resumable upload of {key}");
        let mut query = vec![("uploadType", "resumable"), ("name", key)];
        if let Some(kms) = &self.kms_key_name {
            query.push(("kmsKeyName", kms));
        }
        let metadata = serde_json::json!({ "name": key }).to_string();
        let headers = [
            ("content-type".to_owned(), "application/json; charset=UTF-8".to_owned()),
            ("content-length".to_owned(), metadata.len().to_string()),
            ("x-upload-content-type".to_owned(), "application/octet-stream".to_owned()),
        ];
        let response = checked(&what, self.send("POST", &with_query(&self.upload_url(bucket), &query), &headers, Body::Bytes(metadata.as_bytes()))?)?;
        let session = response.header("location").ok_or_else(|| Error::Other(format!("{what}: no session URI (Location) in the answer")))?;
        drop(response.bytes()?);
        let result = self.send_chunks(&what, &session, first, body);
        if result.is_err() {
            // Best effort: the session would expire on its own within a week.
            let _ = self.send("DELETE", &session, &[("content-length".to_owned(), "0".to_owned())], Body::Empty).and_then(Response::bytes);
        }
        result
    }

    fn send_chunks(&self, what: &str, session: &str, first: Vec<u8>, body: &InputStream) -> Result<u64> {
        let mut offset = 0u64;
        let mut chunk = first;
        loop {
            let next = read_up_to(body, CHUNK)?;
            let end = offset + chunk.len() as u64;
            let total = if next.is_empty() { end.to_string() } else { "*".to_owned() };
            let mut sent = 0usize;
            // The server may keep less than it was sent; its `Range` says how much, and the
            // rest is sent again.
            while sent < chunk.len() {
                let start = offset + sent as u64;
                let headers = [
                    ("content-length".to_owned(), (chunk.len() - sent).to_string()),
                    ("content-range".to_owned(), format!("bytes {start}-{}/{total}", end - 1)),
                ];
                let response = self.send("PUT", session, &headers, Body::Bytes(&chunk[sent..]))?;
                match response.status {
                    200 | 201 if next.is_empty() => {
                        drop(response.bytes()?);
                        return Ok(end);
                    }
                    308 => {
                        let kept = response
                            .header("range")
                            .and_then(|r| r.rsplit_once('-').and_then(|(_, last)| last.trim().parse::<u64>().ok()))
                            .map_or(0, |last| last + 1);
                        drop(response.bytes()?);
                        if kept <= start || kept > end {
                            return Err(Error::Other(format!("{what}: the server kept {kept} bytes after bytes {start}-{}", end - 1)));
                        }
                        sent = usize::try_from(kept - offset).expect("within the chunk");
                    }
                    status => return Err(gcs_error(&format!("{what}, bytes {start}-{}", end - 1), status, &response.text()?)),
                }
            }
            if next.is_empty() {
                return Err(Error::Other(format!("{what}: the server kept every byte but did not complete the upload")));
            }
            offset = end;
            chunk = next;
        }
    }

    /// One page of the objects listing for `prefix` (and `delimiter`), from `token` on.
    fn page(&self, bucket: &str, prefix: &str, delimiter: Option<&str>, token: Option<&str>) -> Result<Page> {
        let base = format!("{}/storage/v1/b/{}/o", self.root, uri::encode(bucket, false));
        let mut query = vec![("maxResults", PAGE), ("prefix", prefix)];
        if let Some(d) = delimiter {
            query.push(("delimiter", d));
        }
        if let Some(t) = token {
            query.push(("pageToken", t));
        }
        let response = checked(&format!("list {prefix}"), self.send("GET", &with_query(&base, &query), &[], Body::Empty)?)?;
        let json: Value = serde_json::from_str(&response.text()?).map_err(|e| Error::Other(format!("list {prefix}: the answer is not JSON: {e}")))?;
        let array = |field: &str| json.get(field).and_then(Value::as_array).into_iter().flatten();
        let text = |v: &Value, field: &str| v.get(field).and_then(Value::as_str).map(str::to_owned);
        let listing = format!("list {prefix}");
        Ok(Page {
            objects: array("items").map(|item| paging::object(&listing, text(item, "name"), text(item, "size"))).collect::<Result<_>>()?,
            prefixes: array("prefixes").filter_map(|p| p.as_str().map(str::to_owned)).collect(),
            next: json.get("nextPageToken").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

impl ObjectStore for Gcs {
    fn manifest() -> Manifest {
        Manifest::new("velero.io/gcp", "Google Cloud Storage (config: storeEndpoint, kmsKeyName, ...)")
            .endpoint_key("storeEndpoint")
            .endpoint_key("tokenEndpoint")
            .endpoint_template("https://storage.googleapis.com")
            .endpoint_template("https://oauth2.googleapis.com")
            .endpoint_template("https://storage.{universeDomain}")
            .endpoint_template("https://oauth2.{universeDomain}")
    }

    fn init(config: Vec<(String, String)>, credential: Option<Credential>) -> Result<Self> {
        let config = Config::parse_object_store(config, KEYS)?;
        if config.get("credentialsFile").is_some() {
            return Err(Error::invalid_config(
                "credentialsFile",
                "a file on the host is not readable by the provider: give the key as the location's credential",
            ));
        }
        let url_key = |key: &str| -> Result<Option<String>> {
            match config.get(key).filter(|u| !u.is_empty()) {
                Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(Some(u.trim_end_matches('/').to_owned())),
                Some(u) => Err(Error::invalid_config(key, format!("{u:?} must start with http:// or https://"))),
                None => Ok(None),
            }
        };
        let root = match (url_key("storeEndpoint")?, config.get("universeDomain").filter(|d| !d.is_empty())) {
            (Some(endpoint), _) => endpoint.strip_suffix("/storage/v1").unwrap_or(&endpoint).to_owned(),
            (None, Some(domain)) => format!("https://storage.{domain}"),
            (None, None) => "https://storage.googleapis.com".to_owned(),
        };
        let auth = match credential {
            Some(credential) => {
                let account = ServiceAccount::parse(&credential)?;
                let token_url = url_key("tokenEndpoint")?.unwrap_or_else(|| account.token_uri.clone());
                Auth::ServiceAccount { account: Box::new(account), token_url, token: RefCell::new(None) }
            }
            None if config.get("storeEndpoint").is_some() => Auth::Anonymous,
            None => {
                return Err(Error::Unauthenticated(
                    "no credential: give the location --credential (a service-account key) or create the default credential".into(),
                ));
            }
        };
        let kms_key_name = config.get("kmsKeyName").filter(|k| !k.is_empty()).map(str::to_owned);
        Ok(Gcs { root, kms_key_name, auth })
    }

    fn put_object(&self, bucket: &str, key: &str, body: InputStream) -> Result<u64> {
        let first = read_up_to(&body, CHUNK)?;
        if first.len() < CHUNK {
            self.put_simple(bucket, key, &first)?;
            return Ok(first.len() as u64);
        }
        self.put_resumable(bucket, key, first, &body)
    }

    fn object_exists(&self, bucket: &str, key: &str) -> Result<bool> {
        let response = self.send("GET", &self.object_url(bucket, key), &[], Body::Empty)?;
        exists(checked(&format!("get metadata of {key}"), response).and_then(|r| r.bytes().map(drop)))
    }

    fn get_object(&self, bucket: &str, key: &str, sink: OutputStream) -> Result<u64> {
        let url = with_query(&self.object_url(bucket, key), &[("alt", "media")]);
        checked(&format!("download {key}"), self.send("GET", &url, &[], Body::Empty)?)?.splice_into(&sink)
    }

    fn get_object_range(&self, bucket: &str, key: &str, offset: u64, length: u64, sink: OutputStream) -> Result<u64> {
        let url = with_query(&self.object_url(bucket, key), &[("alt", "media")]);
        let headers = [("range".to_owned(), http::range(offset, length))];
        let response = self.send("GET", &url, &headers, Body::Empty)?;
        response.splice_range_into(&format!("download {key}"), gcs_error, offset, length, &sink)
    }

    fn list_common_prefixes(&self, bucket: &str, prefix: &str, delimiter: &str) -> Result<Vec<String>> {
        paging::prefixes(|token| self.page(bucket, prefix, Some(delimiter), token))
    }

    fn list_objects(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectEntry>> {
        paging::objects(|token| self.page(bucket, prefix, None, token))
    }

    fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        let response = self.send("DELETE", &self.object_url(bucket, key), &[], Body::Empty)?;
        deleted(checked(&format!("delete {key}"), response).and_then(|r| r.bytes().map(drop)))
    }

    fn create_signed_url(&self, bucket: &str, key: &str, ttl: Duration) -> Result<String> {
        let Auth::ServiceAccount { account, .. } = &self.auth else {
            return Err(Error::Unsupported("signed URLs need a service-account key as the location's credential".into()));
        };
        let expires = ttl.as_secs().max(1);
        if expires > MAX_SIGNED_TTL {
            return Err(Error::InvalidArgument(format!("a signed URL lives at most 7 days, not {expires}s")));
        }
        let (scheme, rest) = self.root.split_once("://").expect("root is an http(s) URL");
        let (host, base_path) = rest.split_once('/').map_or((rest, String::new()), |(h, p)| (h, format!("/{p}")));
        let path = format!("{base_path}/{}/{}", uri::encode(bucket, false), uri::encode(key, true));
        let date = sigv4::amz_date_now();
        let scope = format!("{}/auto/storage/goog4_request", &date[..8]);
        let query = [
            ("X-Goog-Algorithm".to_owned(), "GOOG4-RSA-SHA256".to_owned()),
            ("X-Goog-Credential".to_owned(), format!("{}/{scope}", account.email)),
            ("X-Goog-Date".to_owned(), date.clone()),
            ("X-Goog-Expires".to_owned(), expires.to_string()),
            ("X-Goog-SignedHeaders".to_owned(), "host".to_owned()),
        ];
        let query = canonical_query(&query);
        let host = host.to_ascii_lowercase();
        let canonical = format!("GET\n{path}\n{query}\nhost:{host}\n\nhost\n{}", sigv4::UNSIGNED_PAYLOAD);
        let to_sign = format!("GOOG4-RSA-SHA256\n{date}\n{scope}\n{}", sigv4::sha256_hex(canonical.as_bytes()));
        let signature = sigv4::hex(&account.sign(to_sign.as_bytes()));
        Ok(format!("{scheme}://{host}{path}?{query}&X-Goog-Signature={signature}"))
    }
}

coffer_guest_sdk::export_object_store!(Gcs);
