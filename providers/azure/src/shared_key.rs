//! Azure Storage SharedKey signing and service SAS tokens, and the dates they need.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The storage REST API version Coffer speaks.
pub const API_VERSION: &str = "2021-08-06";

/// HMAC-SHA256 of `text` with the account key, base64.
pub fn sign(key: &[u8], text: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(text.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Authorization: SharedKey` value for a request. `resource_path` is the URL path as sent
/// (with the account for path-style endpoints); `query` unencoded; `headers` lower-case names.
pub fn authorization(
    account: &str,
    key: &[u8],
    method: &str,
    resource_path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
) -> String {
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str());
    let content_length = match header("content-length") {
        "0" => "",
        other => other,
    };
    let mut ms: Vec<(&str, &str)> = headers.iter().filter(|(k, _)| k.starts_with("x-ms-")).map(|(k, v)| (k.as_str(), v.trim())).collect();
    ms.sort();
    let canonical_headers: String = ms.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let mut params: Vec<(String, String)> = query.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    params.sort();
    let canonical_query: String = params.iter().map(|(k, v)| format!("\n{k}:{v}")).collect();
    let to_sign = format!(
        "{method}\n{}\n{}\n{content_length}\n{}\n{}\n\n{}\n{}\n{}\n{}\n{}\n{canonical_headers}/{account}{resource_path}{canonical_query}",
        header("content-encoding"),
        header("content-language"),
        header("content-md5"),
        header("content-type"),
        header("if-modified-since"),
        header("if-match"),
        header("if-none-match"),
        header("if-unmodified-since"),
        header("range"),
    );
    format!("SharedKey {account}:{}", sign(key, &to_sign))
}

/// A read-only service SAS for one blob, valid until `expiry` (ISO 8601, `…Z`).
pub fn blob_read_sas(account: &str, key: &[u8], container: &str, blob: &str, expiry: &str) -> Vec<(String, String)> {
    let resource = format!("/blob/{account}/{container}/{blob}");
    // Version 2020-12-06 and later: permissions, start, expiry, resource, identifier, IP,
    // protocol, version, resource type, snapshot time, encryption scope, then five response
    // headers.
    let to_sign = format!("r\n\n{expiry}\n{resource}\n\n\nhttps,http\n{API_VERSION}\nb\n\n\n\n\n\n\n");
    vec![
        ("sv".into(), API_VERSION.into()),
        ("se".into(), expiry.into()),
        ("sr".into(), "b".into()),
        ("sp".into(), "r".into()),
        ("spr".into(), "https,http".into()),
        ("sig".into(), sign(key, &to_sign)),
    ]
}

/// The civil date of a Unix time: (year, month, day, weekday with 0 = Sunday).
fn civil(unix: u64) -> (i64, i64, i64, i64) {
    let days = (unix / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day, (days + 4).rem_euclid(7))
}

/// RFC 1123 (`x-ms-date`), e.g. `Tue, 24 Nov 2026 19:30:00 GMT`.
pub fn rfc1123(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (y, m, d, wd) = civil(unix);
    let s = unix % 86_400;
    format!("{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT", DAYS[wd as usize], MONTHS[(m - 1) as usize], s / 3600, s % 3600 / 60, s % 60)
}

/// ISO 8601 to the second (`2026-11-24T19:30:00Z`), for SAS expiry.
pub fn iso8601(unix: u64) -> String {
    let (y, m, d, _) = civil(unix);
    let s = unix % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s % 3600 / 60, s % 60)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc1123(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(rfc1123(1_795_548_600), "Tue, 24 Nov 2026 19:30:00 GMT");
        assert_eq!(iso8601(1_795_548_600), "2026-11-24T19:30:00Z");
    }
}
