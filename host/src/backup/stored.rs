//! A backup's objects as one storage location holds them, and how they are read and added
//! to: as stored, or through the location's encryption key when the backup is encrypted.

use std::io::{Read, Seek, Write};

use super::BackupError;
use super::layout::Layout;
use crate::coffer::Coffer;
use crate::encryption::{BackupKey, EncryptionError, sealed_overhead};
use crate::locations::encryption_key;
use crate::model::{Backup, BackupStorageLocation};
use crate::sandbox::ObjectStoreHandle;

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

    /// Object `key` of this backup in a temporary file, at its start, refused beyond `limit`
    /// bytes of content (plus age's overhead as stored): downloaded whole, and for an
    /// encrypted backup decrypted into a second file, so that nothing of it is read before it
    /// is whole and authenticated.
    pub async fn download_file(&self, store: &mut ObjectStoreHandle, key: &str, limit: u64) -> Result<std::fs::File, BackupError> {
        let io = |error| BackupError::Io { path: format!("a temporary file for {key}"), error };
        let mut file = tempfile::tempfile().map_err(io)?;
        let sink = Capped { inner: file.try_clone().map_err(io)?, left: self.stored_limit(limit), limit };
        store.get_object(self.bucket(), key, sink).await?;
        file.rewind().map_err(io)?;
        if self.encrypted() {
            let plain = tempfile::tempfile().map_err(io)?;
            self.plain_into(key, std::io::BufReader::new(file), std::io::BufWriter::new(plain.try_clone().map_err(io)?))?;
            file = plain;
            file.rewind().map_err(io)?;
        }
        Ok(file)
    }
}

/// A `Write` that refuses to take more than `left` bytes in all (`limit`, for its message).
struct Capped<W> {
    inner: W,
    left: u64,
    limit: u64,
}

impl<W: Write> Write for Capped<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(std::io::Error::other(format!("the object is larger than the {} bytes Coffer accepts", self.limit)));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
