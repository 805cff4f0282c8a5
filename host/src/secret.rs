//! A redacting holder for secret material.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

/// Secret bytes (a credential file's content). `Debug` and `Display` print `<redacted>`, the
/// bytes are zeroed when the last clone is dropped, and they reach only the provider instance
/// of the location that names them.
#[derive(Clone)]
pub struct SecretBytes(Arc<Zeroizing<Vec<u8>>>);

impl SecretBytes {
    /// Wraps `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Arc::new(Zeroizing::new(bytes)))
    }

    /// The bytes themselves. Call only where they are handed to their one consumer.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

impl fmt::Display for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_content() {
        let s = SecretBytes::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?} {s}"), "SecretBytes(<redacted>) <redacted>");
    }
}
