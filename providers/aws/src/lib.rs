//! `velero.io/aws`: an S3 object store over `wasi:http`, signing with SigV4.
//!
//! Config (Velero's AWS plugin keys): `region` (required unless `s3Url` is set), `s3Url`
//! (custom endpoint, addressed path-style), `s3ForcePathStyle`, `publicUrl` (for signed URLs),
//! `profile`, `serverSideEncryption`, `kmsKeyId`, `tagging`, plus the injected `bucket`,
//! `prefix` and `caCert`. The credential is an AWS shared-credentials file. Objects larger
//! than one part are uploaded with multipart upload: one part in guest memory at a time,
//! while up to [`PARTS_IN_FLIGHT`] earlier parts await the server's answer.
//!
//! `caCert` and `insecureSkipTLSVerify` are honoured by the host, which makes the TLS
//! connections. Not supported yet, and refused by name rather than ignored: `checksumAlgorithm`
//! other than empty, `customerKeyEncryptionFile`.

use std::time::Duration;

use coffer_guest_sdk::http::{self, Body, Pending, Response};
use coffer_guest_sdk::paging::{self, Page};
use coffer_guest_sdk::sigv4::{self, AwsCredentials, EMPTY_SHA256};
use coffer_guest_sdk::streams::{InputStream, OutputStream};
use coffer_guest_sdk::{Config, Credential, Error, Manifest, ObjectEntry, ObjectStore, Result, deleted, exists, upload, uri, xml};

/// Size of one upload part: what a put holds in guest memory at a time.
const PART_SIZE: usize = 8 << 20;
/// Upload parts whose bodies are sent and whose responses are still awaited.
const PARTS_IN_FLIGHT: usize = 3;
/// Keys per ListObjectsV2 page (the S3 maximum).
const PAGE: &str = "1000";

const KEYS: &[&str] = &[
    "region", "s3Url", "s3ForcePathStyle", "publicUrl", "profile", "serverSideEncryption", "kmsKeyId", "tagging",
    "insecureSkipTLSVerify", "checksumAlgorithm", "signatureVersion", "enableSharedConfig", "customerKeyEncryptionFile",
];

struct S3 {
    /// `https://s3.<region>.amazonaws.com` or `s3Url`, without a trailing `/`.
    endpoint: String,
    public_endpoint: String,
    path_style: bool,
    region: String,
    credentials: AwsCredentials,
    extra_put_headers: Vec<(String, String)>,
}

fn authority(endpoint: &str) -> &str {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// Maps an S3 error response to the SDK error of the same meaning.
fn s3_error(what: &str, status: u16, body: &str) -> Error {
    let code = xml::text(body, "Code").unwrap_or_default();
    let message = xml::text(body, "Message").unwrap_or_default();
    let text = format!("{what}: {status} {code} {message}").trim_end().to_owned();
    match code.as_str() {
        "NoSuchKey" | "NoSuchBucket" | "NoSuchUpload" => Error::NotFound(text),
        "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" | "InvalidToken" => Error::Unauthenticated(text),
        "AccessDenied" => Error::PermissionDenied(text),
        "PreconditionFailed" => Error::AlreadyExists(text),
        _ => Error::from_status(status, text),
    }
}

impl S3 {
    /// The URL path (encoded) and host for `key` (or the bucket itself when empty).
    fn locate(&self, endpoint: &str, bucket: &str, key: &str) -> (String, String) {
        let key = uri::encode(key, true);
        if self.path_style {
            let base = endpoint.split_once("://").map_or("", |(_, r)| r).split_once('/').map_or("", |(_, p)| p);
            let base = if base.is_empty() { String::new() } else { format!("/{}", base.trim_end_matches('/')) };
            (format!("{base}/{bucket}/{key}"), authority(endpoint).to_owned())
        } else {
            (format!("/{key}"), format!("{bucket}.{}", authority(endpoint)))
        }
    }

    fn scheme(endpoint: &str) -> &str {
        endpoint.split_once("://").map_or("https", |(s, _)| s)
    }

    /// Sends one signed request and waits for its response.
    #[allow(clippy::too_many_arguments, reason = "the parts of one S3 request")]
    fn request(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        query: &[(String, String)],
        extra_headers: &[(String, String)],
        body: Body<'_>,
        payload_hash: &str,
    ) -> Result<Response> {
        self.start(method, bucket, key, query, extra_headers, body, payload_hash)?.wait()
    }

    /// Sends one signed request without waiting for its response.
    #[allow(clippy::too_many_arguments, reason = "the parts of one S3 request")]
    fn start(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        query: &[(String, String)],
        extra_headers: &[(String, String)],
        body: Body<'_>,
        payload_hash: &str,
    ) -> Result<Pending> {
        let (path, host) = self.locate(&self.endpoint, bucket, key);
        let date = sigv4::amz_date_now();
        let mut headers = vec![
            ("host".to_owned(), host.clone()),
            ("x-amz-content-sha256".to_owned(), payload_hash.to_owned()),
            ("x-amz-date".to_owned(), date.clone()),
        ];
        if let Some(token) = &self.credentials.session_token {
            headers.push(("x-amz-security-token".to_owned(), token.clone()));
        }
        headers.extend(extra_headers.iter().cloned());
        // Some servers insist on a length even for requests without a body.
        if matches!(body, Body::Empty) && !matches!(method, "GET" | "HEAD") {
            headers.push(("content-length".to_owned(), "0".to_owned()));
        }
        let request = sigv4::Request { method, path: &path, query, headers: &headers, payload_hash };
        let auth = sigv4::authorization(&request, &self.credentials, &self.region, "s3", &date);
        headers.retain(|(k, _)| k != "host");
        headers.push(("authorization".to_owned(), auth));
        let query = sigv4::canonical_query(query);
        let url = format!("{}://{host}{path}{}{query}", Self::scheme(&self.endpoint), if query.is_empty() { "" } else { "?" });
        http::start(method, &url, &headers, body)
    }

    /// A request without a body whose response must be a success; returns it.
    fn simple(&self, what: &str, method: &str, bucket: &str, key: &str, query: &[(String, String)]) -> Result<Response> {
        Self::expect_ok(what, self.request(method, bucket, key, query, &[], Body::Empty, EMPTY_SHA256)?)
    }

    fn expect_ok(what: &str, response: Response) -> Result<Response> {
        response.success_or(what, s3_error)
    }

    fn put_bytes(&self, bucket: &str, key: &str, bytes: &[u8]) -> Result<()> {
        let mut headers = vec![("content-length".to_owned(), bytes.len().to_string())];
        headers.extend(self.extra_put_headers.iter().cloned());
        let hash = sigv4::sha256_hex(bytes);
        let response = self.request("PUT", bucket, key, &[], &headers, Body::Bytes(bytes), &hash)?;
        Self::expect_ok(&format!("PutObject {key}"), response).map(drop)
    }

    /// Starts a multipart upload of `key`.
    fn multipart<'a>(&'a self, bucket: &'a str, key: &'a str) -> Result<Multipart<'a>> {
        let what = format!("multipart upload of {key}");
        let response = self.request("POST", bucket, key, &[("uploads".into(), String::new())], &self.extra_put_headers, Body::Empty, EMPTY_SHA256)?;
        let created = Self::expect_ok(&what, response)?.text()?;
        let upload_id = xml::text(&created, "UploadId").ok_or_else(|| Error::Other(format!("{what}: no UploadId in {created}")))?;
        Ok(Multipart { s3: self, bucket, key, upload_id, etags: Vec::new(), what })
    }

    /// One page of ListObjectsV2 for `prefix` (and `delimiter`), from `token` on.
    fn page(&self, bucket: &str, prefix: &str, delimiter: Option<&str>, token: Option<&str>) -> Result<Page> {
        let mut query = vec![("list-type".to_owned(), "2".to_owned()), ("prefix".to_owned(), prefix.to_owned()), ("max-keys".to_owned(), PAGE.to_owned())];
        if let Some(d) = delimiter {
            query.push(("delimiter".to_owned(), d.to_owned()));
        }
        if let Some(t) = token {
            query.push(("continuation-token".to_owned(), t.to_owned()));
        }
        let text = self.simple(&format!("ListObjectsV2 {prefix}"), "GET", bucket, "", &query)?.text()?;
        Ok(Page {
            objects: xml::elements(&text, "Contents")
                .iter()
                .map(|c| paging::object(&format!("ListObjectsV2 {prefix}"), xml::text(c, "Key"), xml::text(c, "Size")))
                .collect::<Result<_>>()?,
            prefixes: xml::elements(&text, "CommonPrefixes").iter().filter_map(|c| xml::text(c, "Prefix")).collect(),
            next: (xml::text(&text, "IsTruncated").as_deref() == Some("true")).then(|| xml::text(&text, "NextContinuationToken")).flatten(),
        })
    }
}

/// A multipart upload under way.
struct Multipart<'a> {
    s3: &'a S3,
    bucket: &'a str,
    key: &'a str,
    upload_id: String,
    etags: Vec<String>,
    what: String,
}

impl upload::Parts for Multipart<'_> {
    fn send(&mut self, number: usize, bytes: &[u8]) -> Result<Pending> {
        let query = [("partNumber".to_owned(), number.to_string()), ("uploadId".to_owned(), self.upload_id.clone())];
        let headers = [("content-length".to_owned(), bytes.len().to_string())];
        // Hashing this part overlaps with the server storing the parts in flight.
        let hash = sigv4::sha256_hex(bytes);
        self.s3.start("PUT", self.bucket, self.key, &query, &headers, Body::Bytes(bytes), &hash)
    }

    fn answered(&mut self, number: usize, response: Response) -> Result<()> {
        let response = S3::expect_ok(&format!("{}, part {number}", self.what), response)?;
        let etag = response.header("etag").ok_or_else(|| Error::Other(format!("{}: part {number} has no ETag", self.what)))?;
        self.etags.push(etag);
        Ok(())
    }

    fn complete(self) -> Result<()> {
        let parts: String = self
            .etags
            .iter()
            .enumerate()
            .map(|(i, etag)| format!("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", i + 1, xml::escape(etag)))
            .collect();
        let document = format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>");
        let query = [("uploadId".to_owned(), self.upload_id.clone())];
        let headers = [("content-length".to_owned(), document.len().to_string())];
        let hash = sigv4::sha256_hex(document.as_bytes());
        let outcome = self.s3.request("POST", self.bucket, self.key, &query, &headers, Body::Bytes(document.as_bytes()), &hash);
        let completed = outcome.and_then(|response| S3::expect_ok(&self.what, response)?.text()).and_then(|text| {
            // S3 can report a failed completion inside a 200 response.
            if text.contains("<Error>") { Err(s3_error(&self.what, 200, &text)) } else { Ok(()) }
        });
        if completed.is_err() {
            let _ = self.s3.simple(&self.what, "DELETE", self.bucket, self.key, &[("uploadId".into(), self.upload_id.clone())]);
        }
        completed
    }

    fn abort(self) {
        let _ = self.s3.simple(&self.what, "DELETE", self.bucket, self.key, &[("uploadId".into(), self.upload_id)]);
    }
}

impl ObjectStore for S3 {
    fn manifest() -> Manifest {
        Manifest::new("velero.io/aws", "Amazon S3 and S3-compatible object storage (config: region, s3Url, ...)")
            .endpoint_key("s3Url")
            .endpoint_key("publicUrl")
            .endpoint_template("https://s3.{region}.amazonaws.com")
            .endpoint_template("https://{bucket}.s3.{region}.amazonaws.com")
    }

    fn init(config: Vec<(String, String)>, credential: Option<Credential>) -> Result<Self> {
        let config = Config::parse_object_store(config, KEYS)?;
        // The host makes the TLS connections and honours caCert and insecureSkipTLSVerify; the
        // value is checked here so that a typo is an error rather than verification.
        config.bool("insecureSkipTLSVerify")?;
        if config.get("customerKeyEncryptionFile").is_some() {
            return Err(Error::invalid_config("customerKeyEncryptionFile", "SSE-C is not supported yet"));
        }
        match config.get("checksumAlgorithm") {
            None | Some("") => {}
            Some(a @ ("CRC32" | "CRC32C" | "SHA1" | "SHA256")) => {
                return Err(Error::invalid_config("checksumAlgorithm", format!("{a} is not supported yet; set it empty")));
            }
            Some(other) => return Err(Error::invalid_config("checksumAlgorithm", format!("invalid checksum algorithm: {other}"))),
        }
        let s3_url = config.get("s3Url").filter(|u| !u.is_empty());
        if let Some(url) = s3_url
            && !url.starts_with("http://")
            && !url.starts_with("https://")
        {
            return Err(Error::invalid_config("s3Url", format!("Invalid s3 url {url}, URL must be valid according to https://golang.org/pkg/net/url/#Parse and start with http:// or https://")));
        }
        let region = match (config.get("region").filter(|r| !r.is_empty()), s3_url) {
            (Some(r), _) => r.to_owned(),
            (None, Some(_)) => "us-east-1".to_owned(),
            (None, None) => return Err(Error::invalid_config("region", "required when s3Url is not set")),
        };
        let endpoint = s3_url.map_or_else(|| format!("https://s3.{region}.amazonaws.com"), |u| u.trim_end_matches('/').to_owned());
        let public_endpoint = config.get("publicUrl").filter(|u| !u.is_empty()).map_or_else(|| endpoint.clone(), |u| u.trim_end_matches('/').to_owned());
        // A custom endpoint is addressed path-style: virtual hosts need DNS the endpoint may not have.
        let path_style = config.bool("s3ForcePathStyle")?.unwrap_or(false) || s3_url.is_some();
        let credential = credential.ok_or_else(|| Error::Unauthenticated("no credential: give the location --credential or create the default credential".into()))?;
        let credentials = sigv4::parse_shared_credentials(&credential, config.get("profile").unwrap_or("default"))?;
        let mut extra_put_headers = Vec::new();
        match (config.get("kmsKeyId").filter(|k| !k.is_empty()), config.get("serverSideEncryption").filter(|s| !s.is_empty())) {
            (Some(kms), _) => {
                extra_put_headers.push(("x-amz-server-side-encryption".to_owned(), "aws:kms".to_owned()));
                extra_put_headers.push(("x-amz-server-side-encryption-aws-kms-key-id".to_owned(), kms.to_owned()));
            }
            (None, Some(sse)) => extra_put_headers.push(("x-amz-server-side-encryption".to_owned(), sse.to_owned())),
            (None, None) => {}
        }
        if let Some(tagging) = config.get("tagging").filter(|t| !t.is_empty()) {
            extra_put_headers.push(("x-amz-tagging".to_owned(), tagging.to_owned()));
        }
        Ok(S3 { endpoint, public_endpoint, path_style, region, credentials, extra_put_headers })
    }

    fn put_object(&self, bucket: &str, key: &str, body: InputStream) -> Result<u64> {
        upload::put(&body, PART_SIZE, PARTS_IN_FLIGHT, |bytes| self.put_bytes(bucket, key, bytes), || self.multipart(bucket, key))
    }

    fn object_exists(&self, bucket: &str, key: &str) -> Result<bool> {
        exists(self.simple(&format!("HeadObject {key}"), "HEAD", bucket, key, &[]).map(drop))
    }

    fn get_object(&self, bucket: &str, key: &str, sink: OutputStream) -> Result<u64> {
        let response = self.simple(&format!("GetObject {key}"), "GET", bucket, key, &[])?;
        response.splice_into(&sink)
    }

    fn get_object_range(&self, bucket: &str, key: &str, offset: u64, length: u64, sink: OutputStream) -> Result<u64> {
        let what = format!("GetObject {key}");
        let headers = [("range".to_owned(), http::range(offset, length))];
        let response = self.request("GET", bucket, key, &[], &headers, Body::Empty, EMPTY_SHA256)?;
        response.splice_range_into(&what, s3_error, offset, length, &sink)
    }

    fn list_common_prefixes(&self, bucket: &str, prefix: &str, delimiter: &str) -> Result<Vec<String>> {
        paging::prefixes(|token| self.page(bucket, prefix, Some(delimiter), token))
    }

    fn list_objects(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectEntry>> {
        paging::objects(|token| self.page(bucket, prefix, None, token))
    }

    fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        deleted(self.simple(&format!("DeleteObject {key}"), "DELETE", bucket, key, &[]).map(drop))
    }

    fn create_signed_url(&self, bucket: &str, key: &str, ttl: Duration) -> Result<String> {
        let (path, host) = self.locate(&self.public_endpoint, bucket, key);
        let query = sigv4::presign_query(&path, &host, &self.credentials, &self.region, "s3", &sigv4::amz_date_now(), ttl.as_secs().max(1));
        Ok(format!("{}://{host}{path}?{query}", Self::scheme(&self.public_endpoint)))
    }
}

coffer_guest_sdk::export_object_store!(S3);
