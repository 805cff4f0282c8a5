//! Client-side encryption of a backup's objects (a storage location's `encryptionKey`), in the
//! age format, so that the stock `age` tool decrypts any of them with the identity file.
//!
//! A key is a secret value holding age X25519 identities, one per line as `age-keygen` writes
//! them (`#` comments and blank lines are ignored): the first encrypts, every one decrypts, so
//! a key rotates by putting the new identity first and keeping the old ones after it. Data is
//! encrypted and decrypted as it streams, in age's 64 KiB chunks, never held whole.

use std::io::{Read, Write};
use std::str::FromStr;

use age::x25519::Identity;
use thiserror::Error;

use crate::secret::SecretBytes;

/// Why a backup's objects cannot be encrypted or decrypted. Each names the location, and the
/// recipient or object concerned; none carries key material.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EncryptionError {
    /// The key's secret value is not a list of age X25519 identities.
    #[error("backup storage location {location}: encryption key {secret}: {reason}")]
    InvalidKey {
        /// The location.
        location: String,
        /// The secret and key, as `SECRET=KEY`.
        secret: String,
        /// What is wrong (a line number, never the line).
        reason: String,
    },
    /// The backup is encrypted but the location it is read from has no key.
    #[error(
        "the backup is encrypted to recipient {recipient}, and backup storage location {location} has no encryption key: \
         give it a key holding that identity (backup-location set {location} --encryption-key SECRET=KEY)"
    )]
    NoKey {
        /// The location.
        location: String,
        /// The recipient the backup was encrypted to.
        recipient: String,
    },
    /// The location's key holds no identity of the recipient the backup was encrypted to.
    #[error(
        "the encryption key of backup storage location {location} does not decrypt {object}: it is encrypted to recipient \
         {recipient}, whose identity the key does not hold"
    )]
    WrongKey {
        /// The location.
        location: String,
        /// The recipient the backup was encrypted to.
        recipient: String,
        /// The object.
        object: String,
    },
    /// An object is not a whole age file (truncated, altered or never encrypted).
    #[error("{object} is not a whole age-encrypted object: {reason}")]
    Corrupt {
        /// The object.
        object: String,
        /// What age reported.
        reason: String,
    },
    /// Reading or writing the data failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or written.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// A storage location's encryption key: its identities and the recipient it encrypts to.
pub struct BackupKey {
    location: String,
    identities: Vec<Identity>,
    recipient: String,
}

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupKey").field("location", &self.location).field("recipient", &self.recipient).finish_non_exhaustive()
    }
}

impl BackupKey {
    /// Parses the value of secret key `secret` (`SECRET=KEY`, for messages) of `location`.
    pub fn parse(location: &str, secret: &str, value: &SecretBytes) -> Result<Self, EncryptionError> {
        let invalid = |reason: String| EncryptionError::InvalidKey { location: location.into(), secret: secret.into(), reason };
        let text = std::str::from_utf8(value.expose()).map_err(|_| invalid("it is not UTF-8 text".into()))?;
        let mut identities = Vec::new();
        for (n, line) in text.lines().enumerate().map(|(n, l)| (n + 1, l.trim())) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // The line is key material: the message gives its number only.
            let identity = Identity::from_str(line).map_err(|_| invalid(format!("line {n} is not an age X25519 identity (AGE-SECRET-KEY-1…)")))?;
            identities.push(identity);
        }
        let first = identities.first().ok_or_else(|| invalid("it holds no age identity (make one with age-keygen)".into()))?;
        let recipient = first.to_public().to_string();
        Ok(BackupKey { location: location.into(), identities, recipient })
    }

    /// The recipient this key encrypts to (`age1…`): its first identity's.
    pub fn recipient(&self) -> &str {
        &self.recipient
    }

    /// The location the key belongs to.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Whether one of the key's identities decrypts what is encrypted to `recipient`.
    pub fn opens(&self, recipient: &str) -> bool {
        self.identities.iter().any(|i| i.to_public().to_string() == recipient)
    }

    /// Encrypts everything `plain` yields into `sealed`; the bytes written.
    pub fn seal(&self, what: &str, mut plain: impl Read, sealed: impl Write) -> Result<u64, EncryptionError> {
        let io = |source| EncryptionError::Io { what: format!("encrypting {what}"), source };
        let recipient = self.identities[0].to_public();
        let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let mut counted = Counted { inner: sealed, written: 0 };
        let mut writer = encryptor.wrap_output(&mut counted).map_err(io)?;
        std::io::copy(&mut plain, &mut writer).map_err(io)?;
        // Flushed here, so that a failed write is an error and not lost when a buffer drops.
        writer.finish().and_then(|out| out.flush()).map_err(io)?;
        Ok(counted.written)
    }

    /// Encrypts `plain` in memory (for small documents).
    pub fn seal_bytes(&self, what: &str, plain: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        let mut sealed = Vec::with_capacity(plain.len() + 256);
        self.seal(what, plain, &mut sealed)?;
        Ok(sealed)
    }

    /// Decrypts object `object`, encrypted to `recipient`, from `sealed` into `plain`; the
    /// bytes written. A truncated or altered object fails, never yielding unauthenticated data
    /// past the chunk that fails.
    pub fn open(&self, object: &str, recipient: &str, sealed: impl Read, mut plain: impl Write) -> Result<u64, EncryptionError> {
        if !self.opens(recipient) {
            return Err(self.wrong_key(object, recipient));
        }
        let corrupt = |reason: String| EncryptionError::Corrupt { object: object.into(), reason };
        let decryptor = age::Decryptor::new_buffered(std::io::BufReader::new(sealed)).map_err(|e| corrupt(e.to_string()))?;
        let mut reader = match decryptor.decrypt(self.identities.iter().map(|i| i as &dyn age::Identity)) {
            Ok(reader) => reader,
            Err(age::DecryptError::NoMatchingKeys) => return Err(self.wrong_key(object, recipient)),
            Err(e) => return Err(corrupt(e.to_string())),
        };
        let written = std::io::copy(&mut reader, &mut plain).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => corrupt(e.to_string()),
            _ => EncryptionError::Io { what: format!("decrypting {object}"), source: e },
        })?;
        plain.flush().map_err(|source| EncryptionError::Io { what: format!("decrypting {object}"), source })?;
        Ok(written)
    }

    /// Decrypts `sealed` in memory (for small documents).
    pub fn open_bytes(&self, object: &str, recipient: &str, sealed: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        let mut plain = Vec::with_capacity(sealed.len());
        self.open(object, recipient, sealed, &mut plain)?;
        Ok(plain)
    }

    fn wrong_key(&self, object: &str, recipient: &str) -> EncryptionError {
        EncryptionError::WrongKey { location: self.location.clone(), recipient: recipient.into(), object: object.into() }
    }
}

/// A writer that counts what passes through it.
struct Counted<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// How many bytes age adds to `plain` bytes at most: the header (one X25519 stanza) and a tag
/// per 64 KiB chunk. Bounds on encrypted objects add this to the bound on their plaintext.
pub fn sealed_overhead(plain: u64) -> u64 {
    1024 + 16 * (plain / (64 << 10) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(lines: &[&Identity]) -> BackupKey {
        use age::secrecy::ExposeSecret;
        let text: Vec<String> = lines.iter().map(|i| i.to_string().expose_secret().to_owned()).collect();
        let value = SecretBytes::new(format!("# created: now\n{}\n", text.join("\n")).into_bytes());
        BackupKey::parse("l", "k=v", &value).unwrap()
    }

    #[test]
    fn the_first_identity_encrypts_and_every_one_decrypts() {
        let (old, new) = (Identity::generate(), Identity::generate());
        let before = key(&[&old]);
        let sealed = before.seal_bytes("o", &vec![5u8; 200_000]).unwrap();
        assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
        assert!(sealed.len() as u64 <= 200_000 + sealed_overhead(200_000));
        // Rotated: the new identity first, the old one kept.
        let rotated = key(&[&new, &old]);
        assert_eq!(rotated.recipient(), new.to_public().to_string());
        assert_eq!(rotated.open_bytes("o", before.recipient(), &sealed).unwrap(), vec![5u8; 200_000]);
        // Without the old identity: refused by name, no output.
        let err = key(&[&new]).open_bytes("o", before.recipient(), &sealed).unwrap_err();
        assert!(matches!(err, EncryptionError::WrongKey { .. }), "{err}");
        assert!(err.to_string().contains(before.recipient()), "{err}");
        // Truncated or altered: refused.
        let err = before.open_bytes("o", before.recipient(), &sealed[..sealed.len() - 100]).unwrap_err();
        assert!(matches!(err, EncryptionError::Corrupt { .. }), "{err}");
        let mut altered = sealed.clone();
        let at = altered.len() - 50;
        altered[at] ^= 1;
        assert!(matches!(before.open_bytes("o", before.recipient(), &altered), Err(EncryptionError::Corrupt { .. })));
    }

    #[test]
    fn a_bad_key_is_named_by_line_without_its_content() {
        let value = SecretBytes::new(b"# comment\n\nAGE-SECRET-KEY-1NOTAKEY\n".to_vec());
        let err = BackupKey::parse("vault", "keys=age", &value).unwrap_err().to_string();
        assert_eq!(err, "backup storage location vault: encryption key keys=age: line 3 is not an age X25519 identity (AGE-SECRET-KEY-1…)");
        let err = BackupKey::parse("vault", "keys=age", &SecretBytes::new(b"# nothing\n".to_vec())).unwrap_err().to_string();
        assert!(err.contains("holds no age identity"), "{err}");
    }
}
