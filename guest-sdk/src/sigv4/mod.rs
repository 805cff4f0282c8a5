//! AWS Signature Version 4: signing requests and presigning URLs, reading shared-credentials
//! files, and the request date.

mod credentials;
mod date;

pub use credentials::parse_shared_credentials;
pub use date::{amz_date, amz_date_now};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The SHA-256 of an empty body, hex.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The payload hash S3 accepts for bodies streamed without hashing them first.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Access key and secret (and session token) to sign with.
#[derive(Clone)]
pub struct AwsCredentials {
    /// `aws_access_key_id`.
    pub access_key_id: String,
    /// `aws_secret_access_key`.
    pub secret_access_key: String,
    /// `aws_session_token`, for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex SHA-256 of `data`. In a component the host computes it (`coffer:provider/digest`),
/// several times faster than WebAssembly can.
pub fn sha256_hex(data: &[u8]) -> String {
    #[cfg(target_arch = "wasm32")]
    let digest = crate::bindings::host::coffer::provider::digest::sha256(data);
    #[cfg(not(target_arch = "wasm32"))]
    let digest = <Sha256 as sha2::Digest>::digest(data);
    hex(&digest)
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

pub use crate::uri::encode as uri_encode;

/// A request to sign: method, already-encoded path, query pairs (unencoded), and headers
/// (names lower case) that must include `host`.
pub struct Request<'a> {
    /// `GET`, `PUT`, ...
    pub method: &'a str,
    /// The URI path, already percent-encoded.
    pub path: &'a str,
    /// Query parameters, not encoded.
    pub query: &'a [(String, String)],
    /// Headers to sign, names lower case.
    pub headers: &'a [(String, String)],
    /// The hex SHA-256 of the body, or [`UNSIGNED_PAYLOAD`].
    pub payload_hash: &'a str,
}

/// The canonical query string.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query.iter().map(|(k, v)| (uri_encode(k, false), uri_encode(v, false))).collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{}/{region}/{service}/aws4_request", &date[..8])
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), &date[..8]);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, service);
    hmac(&k_service, "aws4_request")
}

/// Signs `request` at `date` (`YYYYMMDDTHHMMSSZ`); returns the `Authorization` header value.
pub fn authorization(request: &Request<'_>, credentials: &AwsCredentials, region: &str, service: &str, date: &str) -> String {
    let mut headers: Vec<(String, String)> =
        request.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned())).collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        request.path,
        canonical_query(request.query),
        request.payload_hash
    );
    let scope = scope(date, region, service);
    let to_sign = format!("AWS4-HMAC-SHA256\n{date}\n{scope}\n{}", sha256_hex(canonical.as_bytes()));
    let signature = hex(&hmac(&signing_key(&credentials.secret_access_key, date, region, service), &to_sign));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    )
}

/// The query string of a presigned `GET` of `path` on `host`, valid `expires` seconds.
pub fn presign_query(
    path: &str,
    host: &str,
    credentials: &AwsCredentials,
    region: &str,
    service: &str,
    date: &str,
    expires: u64,
) -> String {
    let mut query = vec![
        ("X-Amz-Algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
        ("X-Amz-Credential".to_owned(), format!("{}/{}", credentials.access_key_id, scope(date, region, service))),
        ("X-Amz-Date".to_owned(), date.to_owned()),
        ("X-Amz-Expires".to_owned(), expires.to_string()),
        ("X-Amz-SignedHeaders".to_owned(), "host".to_owned()),
    ];
    if let Some(token) = &credentials.session_token {
        query.push(("X-Amz-Security-Token".to_owned(), token.clone()));
    }
    let canonical = format!("GET\n{path}\n{}\nhost:{host}\n\nhost\n{UNSIGNED_PAYLOAD}", canonical_query(&query));
    let scope = scope(date, region, service);
    let to_sign = format!("AWS4-HMAC-SHA256\n{date}\n{scope}\n{}", sha256_hex(canonical.as_bytes()));
    let signature = hex(&hmac(&signing_key(&credentials.secret_access_key, date, region, service), &to_sign));
    format!("{}&X-Amz-Signature={signature}", canonical_query(&query))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_credentials() -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    /// The GET-object example of the S3 SigV4 documentation ("Example: GET Object").
    #[test]
    fn s3_documentation_get_object_example() {
        let headers = [
            ("host".to_owned(), "examplebucket.s3.amazonaws.com".to_owned()),
            ("range".to_owned(), "bytes=0-9".to_owned()),
            ("x-amz-content-sha256".to_owned(), EMPTY_SHA256.to_owned()),
            ("x-amz-date".to_owned(), "20130524T000000Z".to_owned()),
        ];
        let request = Request { method: "GET", path: "/test.txt", query: &[], headers: &headers, payload_hash: EMPTY_SHA256 };
        let auth = authorization(&request, &example_credentials(), "us-east-1", "s3", "20130524T000000Z");
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// The presigned-URL example of the S3 SigV4 documentation.
    #[test]
    fn s3_documentation_presigned_url_example() {
        let query = presign_query("/test.txt", "examplebucket.s3.amazonaws.com", &example_credentials(), "us-east-1", "s3", "20130524T000000Z", 86400);
        assert!(
            query.ends_with("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"),
            "{query}"
        );
    }

    #[test]
    fn encoding() {
    }
}
