//! Named secrets whose values are files' contents, sealed at rest; values are never printed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::coffer::Coffer;
use crate::object::{ObjectError, validate_name};
use crate::model::{BackupStorageLocation, ObjectMeta, Secret, SecretKeySelector};
use crate::state::{StateError, expect_version};

/// A secret operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Bad name, missing or present already.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// A key is not a valid key name.
    #[error("secret key {key:?} is invalid: use letters, digits, '-', '_' or '.'")]
    InvalidKey {
        /// The key.
        key: String,
    },
    /// No values given.
    #[error("a secret needs at least one key")]
    Empty,
    /// The same key given twice.
    #[error("secret key {key:?} is given more than once")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// The state failed.
    #[error(transparent)]
    State(#[from] StateError),
}

const KIND: &str = "secret";

/// What is shown of a secret: its name and keys, never its values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretSummary {
    /// `v1`.
    pub api_version: String,
    /// `Secret`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// Its keys.
    pub keys: Vec<String>,
}

impl From<&Secret> for SecretSummary {
    fn from(secret: &Secret) -> Self {
        SecretSummary {
            api_version: secret.api_version.clone(),
            kind: secret.kind.clone(),
            metadata: secret.metadata.clone(),
            keys: secret.sealed_data.keys().cloned().collect(),
        }
    }
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Seals `values` (key → content) for secret `name`, checking the keys.
fn seal_values(coffer: &Coffer, namespace: &str, name: &str, values: Vec<(String, Vec<u8>)>) -> Result<BTreeMap<String, String>, SecretError> {
    if values.is_empty() {
        return Err(SecretError::Empty);
    }
    let mut sealed_data = BTreeMap::new();
    for (key, value) in values {
        if !valid_key(&key) {
            return Err(SecretError::InvalidKey { key });
        }
        let sealed = coffer.keyring.seal(&crate::locations::sealed_identity(namespace, name, &key), &value);
        if sealed_data.insert(key.clone(), sealed).is_some() {
            return Err(SecretError::DuplicateKey { key });
        }
    }
    Ok(sealed_data)
}

/// Creates secret `name` holding `values` (key → content), each sealed with the keyring.
pub fn create_secret(coffer: &Coffer, namespace: &str, name: &str, values: Vec<(String, Vec<u8>)>) -> Result<Secret, SecretError> {
    validate_name(KIND, name)?;
    let sealed_data = seal_values(coffer, namespace, name, values)?;
    let mut secret = Secret { api_version: "v1".into(), kind: "Secret".into(), metadata: ObjectMeta::new(namespace, name), sealed_data };
    coffer.state.write(|txn| {
        if txn.get::<Secret>(namespace, name)?.is_some() {
            return Err(SecretError::Object(ObjectError::already_exists(KIND, name)));
        }
        txn.put(&mut secret)?;
        Ok(())
    })?;
    Ok(secret)
}

/// Sets keys of secret `name` (adding or replacing them; other keys stay), if it is still at
/// `expected` (when that is given). Locations read credentials afresh for every provider
/// instance, so the next call uses the new values.
pub fn set_secret(
    coffer: &Coffer,
    namespace: &str,
    name: &str,
    expected: Option<&str>,
    values: Vec<(String, Vec<u8>)>,
) -> Result<Secret, SecretError> {
    let sealed = seal_values(coffer, namespace, name, values)?;
    coffer.state.write(|txn| {
        let Some(mut secret) = txn.get::<Secret>(namespace, name)? else {
            return Err(SecretError::Object(ObjectError::not_found(KIND, name)));
        };
        expect_version(&secret, expected)?;
        secret.sealed_data.extend(sealed.clone());
        txn.put(&mut secret)?;
        // Locations using it are validated again at once, not after their frequency.
        for mut bsl in txn.list::<BackupStorageLocation>(namespace)? {
            if uses(bsl.spec.credential.as_ref(), name) {
                bsl.status.last_validation_time = None;
                txn.put(&mut bsl)?;
            }
        }
        Ok(secret)
    })
}

/// Whether a location with credential `selector` reads secret `name`.
fn uses(selector: Option<&SecretKeySelector>, name: &str) -> bool {
    selector.map_or(crate::locations::DEFAULT_CREDENTIAL.0, |s| s.name.as_str()) == name
}

/// The named secrets, or all when `names` is empty.
pub fn get_secrets(coffer: &Coffer, namespace: &str, names: &[String]) -> Result<Vec<Secret>, SecretError> {
    let txn = coffer.state.read()?;
    if names.is_empty() {
        return Ok(txn.list(namespace)?);
    }
    names
        .iter()
        .map(|n| {
            txn.get(namespace, n)?
                .ok_or_else(|| SecretError::Object(ObjectError::not_found(KIND, n)))
        })
        .collect()
}

/// Deletes secrets. Locations naming them fail validation until it is recreated.
pub fn delete_secrets(coffer: &Coffer, namespace: &str, names: &[String]) -> Result<(), SecretError> {
    coffer.state.write(|txn| {
        for name in names {
            if !txn.delete::<Secret>(namespace, name)? {
                return Err(SecretError::Object(ObjectError::not_found(KIND, name)));
            }
        }
        Ok(())
    })
}
