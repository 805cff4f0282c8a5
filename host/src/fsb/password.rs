//! A namespace's repository password: Velero's secret `velero-repo-credentials`, key
//! `repository-password`. The user's own when they created it first; otherwise created at
//! first use with a random password (not Velero's static default) and stored sealed like every
//! secret.

use crate::coffer::Coffer;
use crate::locations::sealed_identity;
use crate::model::Secret;
use crate::object::ObjectError;
use crate::secret::SecretBytes;
use crate::secrets::{SecretError, create_secret};

use super::FsbError;

/// Velero's secret holding repository passwords.
pub const REPO_CREDENTIALS: &str = "velero-repo-credentials";
/// Its key.
pub const REPO_PASSWORD_KEY: &str = "repository-password";

/// The password of `namespace`'s repositories, created if there is none yet.
pub fn repository_password(coffer: &Coffer, namespace: &str, repository: &str) -> Result<SecretBytes, FsbError> {
    if let Some(password) = existing(coffer, namespace, repository)? {
        return Ok(password);
    }
    let generated: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    match create_secret(coffer, namespace, REPO_CREDENTIALS, vec![(REPO_PASSWORD_KEY.to_owned(), generated.into_bytes())]) {
        // Another run created it meanwhile: use theirs.
        Ok(_) | Err(SecretError::Object(ObjectError::AlreadyExists { .. })) => {}
        Err(e) => return Err(e.into()),
    }
    existing(coffer, namespace, repository)?.ok_or_else(|| unusable(repository, "the secret vanished as it was created".into()))
}

fn existing(coffer: &Coffer, namespace: &str, repository: &str) -> Result<Option<SecretBytes>, FsbError> {
    let txn = coffer.state.read()?;
    let Some(secret) = txn.get::<Secret>(namespace, REPO_CREDENTIALS)? else {
        return Ok(None);
    };
    let Some(sealed) = secret.sealed_data.get(REPO_PASSWORD_KEY) else {
        let keys: Vec<&str> = secret.sealed_data.keys().map(String::as_str).collect();
        return Err(unusable(repository, format!("the secret has no such key (it has: {})", keys.join(", "))));
    };
    let password = coffer.keyring.open_value(&sealed_identity(namespace, REPO_CREDENTIALS, REPO_PASSWORD_KEY), sealed)?;
    if std::str::from_utf8(password.expose()).is_err() || password.expose().is_empty() {
        return Err(unusable(repository, "the password must be non-empty UTF-8 text".into()));
    }
    Ok(Some(password))
}

fn unusable(repository: &str, reason: String) -> FsbError {
    FsbError::Password { repository: repository.to_owned(), secret: REPO_CREDENTIALS.into(), key: REPO_PASSWORD_KEY.into(), reason }
}

/// The password as rustic takes it. Only for rustic: never logged or shown.
pub(super) fn as_text(password: &SecretBytes) -> &str {
    std::str::from_utf8(password.expose()).unwrap_or_default()
}
