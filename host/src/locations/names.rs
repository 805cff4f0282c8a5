//! Object names: Kubernetes DNS-1123 subdomains, so that names carry over to Velero.

use super::LocationError;

/// Checks that `name` is a DNS-1123 subdomain: lower-case letters, digits, `-` and `.`,
/// starting and ending with a letter or digit, at most 253 characters.
pub fn validate_name(kind: &'static str, name: &str) -> Result<(), LocationError> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
        && name.starts_with(alnum)
        && name.ends_with(alnum);
    if ok {
        Ok(())
    } else {
        Err(LocationError::InvalidName {
            kind,
            name: name.into(),
            reason: "must be lower-case letters, digits, '-' or '.', start and end with a letter or digit, and be at most 253 characters".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_subdomains_only() {
        for good in ["default", "a", "ebs-us-east-1", "x.y"] {
            assert!(validate_name("thing", good).is_ok(), "{good}");
        }
        for bad in ["", "Default", "-a", "a-", "a_b", "a/b", &"x".repeat(254)] {
            assert!(validate_name("thing", bad).is_err(), "{bad}");
        }
    }
}
