//! Which credential a location's provider receives.

use std::collections::BTreeMap;

use crate::coffer::Coffer;
use crate::keyring::Keyring;
use crate::encryption::BackupKey;
use crate::model::{BackupStorageLocation, Secret, SecretKeySelector};
use crate::plugins::Plugin;
use crate::sandbox::{Grants, grants_for};
use crate::quotas::quota_of;
use crate::secret::SecretBytes;
use crate::state::Txn;

use super::LocationError;
use super::directories::tenant_paths;

/// The default credential, used by locations that name none: the secret `cloud-credentials`,
/// key `cloud` (what `velero install` creates), in the location's namespace.
pub const DEFAULT_CREDENTIAL: (&str, &str) = ("cloud-credentials", "cloud");

/// The identity a secret value is sealed under (its namespace, secret and key).
pub fn sealed_identity(namespace: &str, secret: &str, key: &str) -> String {
    format!("{namespace}/{secret}/{key}")
}

/// The credential for `location` in `namespace`: its own secret key when it names one (which
/// must exist), otherwise the default credential if that exists, otherwise none. Values are
/// read afresh on every call, so a changed secret applies to the next provider instance.
pub fn resolve_credential(
    txn: &Txn<'_>,
    keyring: &Keyring,
    namespace: &str,
    location: &str,
    selector: Option<&SecretKeySelector>,
) -> Result<Option<SecretBytes>, LocationError> {
    let (name, key, explicit) = match selector {
        Some(s) => (s.name.as_str(), s.key.as_str(), true),
        None => (DEFAULT_CREDENTIAL.0, DEFAULT_CREDENTIAL.1, false),
    };
    let missing = |reason: String| LocationError::Credential {
        location: location.into(),
        secret: name.into(),
        key: key.into(),
        reason,
    };
    let Some(secret) = txn.get::<Secret>(namespace, name)? else {
        return if explicit { Err(missing(format!("secret {name:?} not found"))) } else { Ok(None) };
    };
    let Some(sealed) = secret.sealed_data.get(key) else {
        if !explicit {
            return Ok(None);
        }
        let keys: Vec<&str> = secret.sealed_data.keys().map(String::as_str).collect();
        return Err(missing(format!("secret {name:?} has no key {key:?} (it has: {})", keys.join(", "))));
    };
    Ok(Some(keyring.open_value(&sealed_identity(namespace, name, key), sealed)?))
}

/// The encryption key of `bsl`, if it names one: its secret value parsed as age identities.
/// Read afresh on every call, so a rotated key applies to the next backup. A missing secret
/// or a value that is not a list of identities is an error naming the field.
pub fn encryption_key(coffer: &Coffer, bsl: &BackupStorageLocation) -> Result<Option<BackupKey>, LocationError> {
    encryption_key_in(&coffer.state.read()?, &coffer.keyring, bsl)
}

/// [`encryption_key`], read in `txn`.
pub fn encryption_key_in(txn: &Txn<'_>, keyring: &Keyring, bsl: &BackupStorageLocation) -> Result<Option<BackupKey>, LocationError> {
    let Some(selector) = &bsl.spec.encryption_key else {
        return Ok(None);
    };
    let name = &bsl.metadata.name;
    let label = format!("backup-location {name:?} encryption key");
    let value = resolve_credential(txn, keyring, &bsl.metadata.namespace, &label, Some(selector))?
        .expect("an explicit selector resolves or fails");
    let key = BackupKey::parse(name, &format!("{}={}", selector.name, selector.key), &value)
        .map_err(|e| LocationError::InvalidField { field: "spec.encryptionKey".into(), reason: e.to_string() })?;
    Ok(Some(key))
}

/// Everything a location's provider instance gets: its config, its credential (resolved
/// now, so a rotated secret applies to the next instance), its tenant's quota, and on a
/// shared host no directory outside the tenant's tree.
pub(crate) fn location_grants(
    coffer: &Coffer,
    namespace: &str,
    location: &str,
    plugin: &Plugin,
    config: BTreeMap<String, String>,
    selector: Option<&SecretKeySelector>,
) -> Result<Grants, LocationError> {
    let (credential, quota) = {
        let txn = coffer.state.read()?;
        let credential = resolve_credential(&txn, &coffer.keyring, namespace, location, selector)?;
        (credential, quota_of(coffer, &txn, namespace)?)
    };
    let paths = tenant_paths(coffer, namespace)?;
    let mut grants = grants_for(location, plugin.component.manifest(), config, credential, &paths)?;
    grants.quota = quota;
    grants.reach = coffer.reach.clone();
    grants.space = coffer.space_reserve.clone().filter(|reserve| grants.directories.iter().any(|d| reserve.shares_disk(&*d.dir)));
    Ok(grants)
}
