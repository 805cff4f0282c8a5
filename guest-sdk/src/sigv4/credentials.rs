//! AWS shared-credentials files (`[profile]` sections of `key = value`).

use super::AwsCredentials;
use crate::{Credential, Error};

/// The access key of `profile` in the INI text of `credential`.
pub fn parse_shared_credentials(credential: &Credential, profile: &str) -> Result<AwsCredentials, Error> {
    let text = credential.expose_str()?;
    let mut section = String::new();
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().trim_start_matches("profile ").to_owned();
            continue;
        }
        if section != profile {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = value.trim().to_owned();
            match key.trim() {
                "aws_access_key_id" => id = Some(value),
                "aws_secret_access_key" => secret = Some(value),
                "aws_session_token" => token = Some(value),
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) if !access_key_id.is_empty() && !secret_access_key.is_empty() => {
            Ok(AwsCredentials { access_key_id, secret_access_key, session_token: token })
        }
        _ => Err(Error::Unauthenticated(format!(
            "the credential has no aws_access_key_id and aws_secret_access_key in profile [{profile}]"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles() {
        let c = Credential::new(b"[default]\naws_access_key_id = A\naws_secret_access_key = S\n\n[profile other]\naws_access_key_id=B\naws_secret_access_key=T\naws_session_token=X\n".to_vec());
        assert_eq!(parse_shared_credentials(&c, "default").unwrap().access_key_id, "A");
        let other = parse_shared_credentials(&c, "other").unwrap();
        assert_eq!((other.access_key_id.as_str(), other.session_token.as_deref()), ("B", Some("X")));
        assert!(matches!(parse_shared_credentials(&c, "missing"), Err(Error::Unauthenticated(_))));
    }
}
