//! A backup's objects as one storage location holds them, and how they are read and added
//! to: as stored, or through the location's encryption key when the backup is encrypted.

use std::io::{Read, Write};

use super::BackupError;
use super::layout::Layout;
use crate::coffer::Coffer;
use crate::encryption::{BackupKey, EncryptionError, sealed_overhead};
use crate::locations::encryption_key;
use crate::model::{Backup, BackupStorageLocation};

/// A backup in the storage location it is read from.
pub struct Stored {
    /// The location.
    pub bsl: BackupStorageLocation,
    /// Its layout.
    pub layout: Layout,
    /// For an encrypted backup: the location's key, and the recipient the backup is
    /// encrypted to (which the key holds the identity of).
    sealed: Option<(BackupKey, String)>,
}

impl Stored {
    /// `backup` as `bsl` holds it. An encrypted backup needs the location's key to hold the
    /// identity of its recipient; otherwise the error names the location and the recipient.
    pub fn new(coffer: &Coffer, backup: &Backup, bsl: BackupStorageLocation) -> Result<Self, BackupError> {
        let layout = Layout::new(&bsl.spec.object_storage.prefix);
        let Some(encryption) = &backup.status.encryption else {
            return Ok(Stored { bsl, layout, sealed: None });
        };
        let recipient = encryption.recipient.clone();
        let location = bsl.metadata.name.clone();
        let key = encryption_key(coffer, &bsl)?.ok_or_else(|| EncryptionError::NoKey { location, recipient: recipient.clone() })?;
        if !key.opens(&recipient) {
            let object = format!("backup {}", backup.metadata.meta.name);
            return Err(EncryptionError::WrongKey { location: key.location().into(), recipient, object }.into());
        }
        Ok(Stored { bsl, layout, sealed: Some((key, recipient)) })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bsl.spec.object_storage.bucket
    }

    /// Whether the backup's objects are encrypted.
    pub fn encrypted(&self) -> bool {
        self.sealed.is_some()
    }

    /// The most an object of at most `plain` bytes takes as stored.
    pub fn stored_limit(&self, plain: u64) -> u64 {
        if self.encrypted() { plain + sealed_overhead(plain) } else { plain }
    }

    /// The content of `object` from what the bucket holds of it.
    pub fn plain(&self, object: &str, stored: Vec<u8>) -> Result<Vec<u8>, BackupError> {
        match &self.sealed {
            None => Ok(stored),
            Some((key, recipient)) => Ok(key.open_bytes(object, recipient, &stored)?),
        }
    }

    /// The content of `object`, read from what the bucket holds of it, into `out`.
    pub fn plain_into(&self, object: &str, mut stored: impl Read, mut out: impl Write) -> Result<u64, BackupError> {
        match &self.sealed {
            None => std::io::copy(&mut stored, &mut out).and_then(|n| out.flush().map(|()| n)).map_err(|error| BackupError::Io { path: object.into(), error }),
            Some((key, recipient)) => Ok(key.open(object, recipient, stored, out)?),
        }
    }

    /// What to store for a new object of this backup (a restore's files) holding `plain`:
    /// encrypted with the location's key when the backup is encrypted.
    pub fn sealed(&self, object: &str, plain: Vec<u8>) -> Result<Vec<u8>, BackupError> {
        match &self.sealed {
            None => Ok(plain),
            Some((key, _)) => Ok(key.seal_bytes(object, &plain)?),
        }
    }
}
