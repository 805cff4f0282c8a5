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

use crate::secret::SecretBytes;

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
}

/// Seals and opens secret values with the data directory's master key (XChaCha20-Poly1305,
/// random nonce, the value's identity as associated data so values cannot be swapped).
pub struct Keyring {
    cipher: XChaCha20Poly1305,
}

impl Keyring {
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
        if key.len() != KEY_LEN {
            return Err(err(&format!("must hold exactly {KEY_LEN} bytes, holds {}", key.len())));
        }
        let cipher = XChaCha20Poly1305::new_from_slice(&key).map_err(|e| err(&e))?;
        Ok(Keyring { cipher })
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
