//! Encryption of secret values at rest, with a key file only the data directory's owner reads.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use thiserror::Error;
use zeroize::Zeroizing;

use serde::{Deserialize, Serialize};

use crate::secret::SecretBytes;
use crate::state::{Resource, State};

/// The key file's name under the data directory.
pub const KEY_FILE: &str = "master.key";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// A keyring failure. Never contains secret material.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// The key file could not be read or created.
    #[error("master key {path}: {message}")]
    KeyFile {
        /// The key file.
        path: String,
        /// What failed.
        message: String,
    },
    /// A stored value does not decrypt with this key (wrong key file or tampering).
    #[error("stored value of {what} does not decrypt with this data directory's master key")]
    Undecryptable {
        /// Which value, e.g. `secret velero/creds key cloud`.
        what: String,
    },
    /// The state's secrets are sealed with another master key.
    #[error(
        "master key {path} is not the key this state's secrets are sealed with: every process on one state needs the same master key (--master-key-file)"
    )]
    WrongKey {
        /// The key file.
        path: String,
    },
    /// The state could not be read or written.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

/// What tells whether a master key is the one a state's secrets are sealed with: a value sealed
/// with it, kept in the state.
#[derive(Debug, Serialize, Deserialize)]
struct MasterKeyCheck {
    sealed: String,
}

impl Resource for MasterKeyCheck {
    const KIND: &'static str = "MasterKeyCheck";
    fn namespace(&self) -> &str {
        ""
    }
    fn name(&self) -> &str {
        CHECK_IDENTITY
    }
}

/// The identity the check value is sealed to.
const CHECK_IDENTITY: &str = "master-key";

/// Seals and opens secret values with the data directory's master key (XChaCha20-Poly1305,
/// random nonce, the value's identity as associated data so values cannot be swapped).
pub struct Keyring {
    cipher: XChaCha20Poly1305,
    /// The key file, for errors.
    path: String,
}

impl Keyring {
    /// Loads the master key from `file`, which must exist: an operator's, which every process
    /// sharing one state is given.
    pub fn open_file(file: &Path) -> Result<Keyring, KeyringError> {
        let path = file.display().to_string();
        let key = Zeroizing::new(fs::read(file).map_err(|e| KeyringError::KeyFile { path: path.clone(), message: e.to_string() })?);
        Keyring::from_key(path, &key)
    }

    /// Loads the master key from `data_dir`, creating it (mode 0600) on first use.
    pub fn open(data_dir: &Path) -> Result<Keyring, KeyringError> {
        let path = data_dir.join(KEY_FILE);
        let err = |e: &dyn std::fmt::Display| KeyringError::KeyFile { path: path.display().to_string(), message: e.to_string() };
        let key = match fs::read(&path) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: Zeroizing<Vec<u8>> = Zeroizing::new((0..KEY_LEN).map(|_| rand::random::<u8>()).collect());
                crate::state::create_private_dir(data_dir).map_err(|e| err(&e))?;
                match fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
                    Ok(mut file) => {
                        file.write_all(&key).and_then(|()| file.sync_all()).map_err(|e| err(&e))?;
                        key
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Zeroizing::new(fs::read(&path).map_err(|e| err(&e))?)
                    }
                    Err(e) => return Err(err(&e)),
                }
            }
            Err(e) => return Err(err(&e)),
        };
        Keyring::from_key(path.display().to_string(), &key)
    }

    fn from_key(path: String, key: &[u8]) -> Result<Keyring, KeyringError> {
        if key.len() != KEY_LEN {
            let message = format!("must hold exactly {KEY_LEN} bytes, holds {}", key.len());
            return Err(KeyringError::KeyFile { path, message });
        }
        let cipher = XChaCha20Poly1305::new_from_slice(key).map_err(|e| KeyringError::KeyFile { path: path.clone(), message: e.to_string() })?;
        Ok(Keyring { cipher, path })
    }

    /// Checks that `state`'s secrets are sealed with this key: the first key to open a state
    /// leaves a value sealed with it there, which every later one must open. So a process
    /// given another key refuses to start, rather than reading secrets it cannot open.
    pub fn check(&self, state: &State) -> Result<(), KeyringError> {
        let kept = state.read()?.get::<MasterKeyCheck>("", CHECK_IDENTITY)?;
        let check = match kept {
            Some(check) => check,
            None => state.write(|txn| match txn.get::<MasterKeyCheck>("", CHECK_IDENTITY)? {
                Some(check) => Ok::<_, KeyringError>(check), // Another process's, first.
                None => {
                    let mut check = MasterKeyCheck { sealed: self.seal(CHECK_IDENTITY, CHECK_IDENTITY.as_bytes()) };
                    txn.put(&mut check)?;
                    Ok(check)
                }
            })?,
        };
        match self.open_value(CHECK_IDENTITY, &check.sealed) {
            Ok(_) => Ok(()),
            Err(_) => Err(KeyringError::WrongKey { path: self.path.clone() }),
        }
    }

    /// Encrypts `plaintext`, bound to `identity`; base64 text.
    pub fn seal(&self, identity: &str, plaintext: &[u8]) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: identity.as_bytes() })
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    /// Decrypts what [`Keyring::seal`] produced for the same `identity`.
    pub fn open_value(&self, identity: &str, sealed: &str) -> Result<SecretBytes, KeyringError> {
        let undecryptable = || KeyringError::Undecryptable { what: identity.to_owned() };
        let raw = STANDARD.decode(sealed).map_err(|_| undecryptable())?;
        if raw.len() < NONCE_LEN {
            return Err(undecryptable());
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad: identity.as_bytes() })
            .map_err(|_| undecryptable())?;
        Ok(SecretBytes::new(plain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let dir = tempfile::tempdir().unwrap();
        let k = Keyring::open(dir.path()).unwrap();
        let sealed = k.seal("velero/a/cloud", b"key=value");
        assert!(!sealed.contains("key=value"));
        assert_eq!(k.open_value("velero/a/cloud", &sealed).unwrap().expose(), b"key=value");
        assert!(k.open_value("velero/b/cloud", &sealed).is_err(), "bound to its identity");
        let again = Keyring::open(dir.path()).unwrap();
        assert_eq!(again.open_value("velero/a/cloud", &sealed).unwrap().expose(), b"key=value");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
    }
}
