//! URL pieces every HTTP provider builds: percent-encoding and query strings.

/// Percent-encodes `s` per RFC 3986 (unreserved characters kept); `/` kept when `keep_slash`,
/// for a key used as a path.
pub fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `k=v&k=v` with each value encoded, in the order given (names are used as they are).
pub fn query<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", k.as_ref(), encode(v.as_ref(), false))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_spaces_unicode_percent_and_plus_survive() {
        assert_eq!(encode("a b/c~d*", true), "a%20b/c~d%2A");
        assert_eq!(encode("a/b", false), "a%2Fb");
        assert_eq!(encode("100%+ü", false), "100%25%2B%C3%BC");
        assert_eq!(query(&[("prefix", "a b/"), ("max", "10")]), "prefix=a%20b%2F&max=10");
    }
}
