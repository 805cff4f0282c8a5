//! A repository's master key, unlocked from its password once and kept sealed in the state
//! like the password itself, so that opening the repository again skips restic's deliberately
//! slow key derivation (scrypt, about 0.3 s on every backup, restore and maintenance). The
//! bucket still holds only the password-protected key files. The key is kept with a digest of
//! the password that unlocked it, inside the seal: a changed password unlocks afresh.

use rustic_core::repofile::MasterKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::coffer::Coffer;
use crate::secret::SecretBytes;
use crate::state::Resource;

use super::FsbError;

/// A repository's sealed master key, in the state.
#[derive(Debug, Serialize, Deserialize)]
struct UnlockedKey {
    namespace: String,
    /// The repository, as errors name it (`<location>:<bucket>/<root>`).
    name: String,
    /// [`Sealed`], sealed by the keyring.
    sealed: String,
}

impl Resource for UnlockedKey {
    const KIND: &'static str = "UnlockedRepositoryKey";
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// What is sealed: the key, and the password it was unlocked with, digested.
#[derive(Serialize, Deserialize)]
struct Sealed {
    password_sha256: String,
    key: MasterKey,
}

fn identity(namespace: &str, repository: &str) -> String {
    format!("{namespace}/unlocked-repository-key/{repository}")
}

fn digest(password: &SecretBytes) -> String {
    hex::encode(Sha256::digest(password.expose()))
}

/// The key of `repository` kept from an earlier opening with `password`, if any.
pub(super) fn kept_key(coffer: &Coffer, namespace: &str, repository: &str, password: &SecretBytes) -> Result<Option<MasterKey>, FsbError> {
    let Some(kept) = coffer.state.read()?.get::<UnlockedKey>(namespace, repository)? else {
        return Ok(None);
    };
    // A seal that does not open (a keyring replaced) is as good as none: unlocked afresh.
    let Ok(plain) = coffer.keyring.open_value(&identity(namespace, repository), &kept.sealed) else {
        return Ok(None);
    };
    let sealed: Option<Sealed> = serde_json::from_slice(plain.expose()).ok();
    Ok(sealed.filter(|s| s.password_sha256 == digest(password)).map(|s| s.key))
}

/// Keeps `key`, unlocked from `repository` with `password`.
pub(super) fn keep_key(coffer: &Coffer, namespace: &str, repository: &str, password: &SecretBytes, key: MasterKey) -> Result<(), FsbError> {
    let plain = SecretBytes::new(serde_json::to_vec(&Sealed { password_sha256: digest(password), key }).expect("a key serializes"));
    let sealed = coffer.keyring.seal(&identity(namespace, repository), plain.expose());
    let mut kept = UnlockedKey { namespace: namespace.to_owned(), name: repository.to_owned(), sealed };
    coffer.state.write(|txn| txn.put(&mut kept))?;
    Ok(())
}
