//! The credential a location grants its provider.

use std::fmt;

use crate::Error;

/// The content of the one secret key a location's credential names. It never prints: `Debug`
/// shows `Credential(<redacted>)`, and the bytes are zeroed when it is dropped.
pub struct Credential(Vec<u8>);

impl Credential {
    /// Wraps the bytes the host delivered through `init`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Credential(bytes)
    }

    /// The raw bytes.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as UTF-8 text (credentials files are INI, dotenv or JSON).
    pub fn expose_str(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.0)
            .map_err(|_| Error::Unauthenticated("the credential is not UTF-8 text".into()))
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

impl Drop for Credential {
    fn drop(&mut self) {
        for byte in self.0.iter_mut() {
            // SAFETY: `byte` is a valid, aligned, exclusive reference into our own buffer.
            unsafe { std::ptr::write_volatile(byte, 0) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let c = Credential::new(b"aws_secret_access_key=hunter2".to_vec());
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(shown, "Credential(<redacted>)");
    }

    #[test]
    fn non_utf8_credential_is_an_authentication_error() {
        let c = Credential::new(vec![0xff, 0xfe]);
        assert!(matches!(c.expose_str(), Err(Error::Unauthenticated(_))));
    }
}
