//! What every named object shares: names that are Kubernetes DNS-1123 subdomains (so that
//! they carry over to Velero), and the errors of finding, creating and naming one, for every
//! kind the state keeps.

use thiserror::Error;

/// An object's name is invalid, taken or unknown.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// The name is not valid.
    #[error("{kind} name {name:?} is invalid: {reason}")]
    InvalidName {
        /// The kind of object.
        kind: &'static str,
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The object already exists.
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// The kind of object.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// The object does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// The kind of object.
        kind: &'static str,
        /// The name.
        name: String,
    },
}

impl ObjectError {
    /// `kind` `name` does not exist.
    pub fn not_found(kind: &'static str, name: &str) -> Self {
        ObjectError::NotFound { kind, name: name.to_owned() }
    }

    /// `kind` `name` exists already.
    pub fn already_exists(kind: &'static str, name: &str) -> Self {
        ObjectError::AlreadyExists { kind, name: name.to_owned() }
    }
}

/// Checks that `name` is a DNS-1123 subdomain: lower-case letters, digits, `-` and `.`,
/// starting and ending with a letter or digit, at most 253 characters.
pub fn validate_name(kind: &'static str, name: &str) -> Result<(), ObjectError> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
        && name.starts_with(alnum)
        && name.ends_with(alnum);
    if ok {
        Ok(())
    } else {
        Err(ObjectError::InvalidName {
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
