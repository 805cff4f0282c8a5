//! Parsing of flag values: `k=v,...` maps, `secret=key` selectors, durations, files.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use coffer::model::{AccessMode, SecretKeySelector, go_duration};

/// Splits `text` on commas outside double quotes (CSV, as Velero parses `--config`).
fn split_csv(text: &str) -> Result<Vec<String>> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("non-empty").push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().expect("non-empty").push(c),
        }
    }
    if quoted {
        bail!("unterminated quote in {text:?}");
    }
    Ok(fields)
}

/// Parses `--<flag> k1=v1,k2=v2` into a map; each entry splits at its first `=`.
pub fn key_values(flag: &str, text: Option<&str>) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    let Some(text) = text else { return Ok(map) };
    for field in split_csv(text).with_context(|| format!("--{flag}"))? {
        if field.is_empty() {
            continue;
        }
        let Some((k, v)) = field.split_once('=') else {
            bail!("--{flag}: {field:?} is not key=value");
        };
        let k = k.trim();
        if k.is_empty() {
            bail!("--{flag}: {field:?} has an empty key");
        }
        if map.insert(k.to_owned(), v.to_owned()).is_some() {
            bail!("--{flag}: key {k:?} is given more than once");
        }
    }
    Ok(map)
}

/// Parses `--credential secret=key` (exactly one pair).
pub fn credential(text: Option<&str>) -> Result<Option<SecretKeySelector>> {
    secret_key("credential", text)
}

/// Parses a `SECRET=KEY` flag `--{flag}`.
pub fn secret_key(flag: &str, text: Option<&str>) -> Result<Option<SecretKeySelector>> {
    let map = key_values(flag, text)?;
    if text.is_some() && map.len() != 1 {
        bail!("--{flag} can only contain 1 key/value pair");
    }
    Ok(map.into_iter().next().map(|(name, key)| SecretKeySelector { name, key }))
}

/// Parses `--access-mode`.
pub fn access_mode(text: &str) -> Result<AccessMode> {
    match text {
        "ReadWrite" => Ok(AccessMode::ReadWrite),
        "ReadOnly" => Ok(AccessMode::ReadOnly),
        other => bail!("--access-mode: {other:?} is not ReadWrite or ReadOnly"),
    }
}

/// Parses a duration flag.
pub fn duration(flag: &str, text: Option<&str>) -> Result<Option<Duration>> {
    text.map(|t| go_duration::parse(t).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))).transpose()
}

/// Parses a duration flag that must be longer than 0.
pub fn positive_duration(flag: &str, text: &str) -> Result<Duration> {
    duration(flag, Some(text))?.filter(|d| !d.is_zero()).ok_or_else(|| anyhow::anyhow!("--{flag} must be longer than 0"))
}

/// Parses a byte size: `1048576`, `64Ki`, `256Mi`, `1Gi` (Kubernetes' binary suffixes).
pub fn size(flag: &str, text: &str) -> Result<u64> {
    let (digits, shift) = match text.strip_suffix("Gi") {
        Some(d) => (d, 30),
        None => match text.strip_suffix("Mi") {
            Some(d) => (d, 20),
            None => match text.strip_suffix("Ki") {
                Some(d) => (d, 10),
                None => (text, 0),
            },
        },
    };
    let n: u64 = digits.parse().map_err(|_| anyhow::anyhow!("--{flag}: {text:?} is not a size like 64Mi or 1Gi"))?;
    n.checked_mul(1 << shift).ok_or_else(|| anyhow::anyhow!("--{flag}: {text:?} is too large"))
}

/// Reads a file named by `--<flag>`.
pub fn read_file(flag: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("--{flag}: reading {}", path.display()))
}

/// Parses `--from-file key=path` or `--from-file path` (key = file name) and reads the file.
pub fn from_file(spec: &str) -> Result<(String, Vec<u8>)> {
    let (key, path) = match spec.split_once('=') {
        Some((k, p)) => (k.to_owned(), Path::new(p)),
        None => {
            let path = Path::new(spec);
            let name = path.file_name().and_then(|n| n.to_str()).context("--from-file: the path has no file name")?;
            (name.to_owned(), path)
        }
    };
    Ok((key, read_file("from-file", path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_csv_with_first_equals() {
        let m = key_values("config", Some(r#"region=us-east-1,s3Url=http://h:9000/?a=b,"tags=a=1,b=2""#)).unwrap();
        assert_eq!(m["region"], "us-east-1");
        assert_eq!(m["s3Url"], "http://h:9000/?a=b");
        assert_eq!(m["tags"], "a=1,b=2");
        assert!(key_values("config", Some("novalue")).unwrap_err().to_string().contains("novalue"));
        assert!(key_values("config", Some("a=1,a=2")).unwrap_err().to_string().contains("\"a\""));
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(size("memory", "64Mi").unwrap(), 64 << 20);
        assert_eq!(size("memory", "1Gi").unwrap(), 1 << 30);
        assert_eq!(size("memory", "4096").unwrap(), 4096);
        assert!(size("memory", "64MB").unwrap_err().to_string().contains("64Mi or 1Gi"));
    }

    #[test]
    fn credential_is_one_pair() {
        assert_eq!(
            credential(Some("creds=cloud")).unwrap(),
            Some(SecretKeySelector { name: "creds".into(), key: "cloud".into() })
        );
        assert_eq!(credential(Some("a=b,c=d")).unwrap_err().to_string(), "--credential can only contain 1 key/value pair");
        assert_eq!(credential(None).unwrap(), None);
    }
}
