//! The room a shared host keeps on its data disk for its own state, so that a tenant filling
//! its locations cannot make the state unwritable.
//!
//! Two measures, one size:
//! - [`SpaceReserve`]: writes into a location whose directory is on the data disk are refused
//!   while the disk's free space is below the reserve;
//! - [`Ballast`]: a file of that size, allocated while there is room, and released only to let a
//!   state write through when the disk is full anyway (a provider writing on its own, another
//!   process).

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use thiserror::Error;

/// The data disk's free space fell below the reserve kept for the state.
#[derive(Debug, Clone, Error)]
#[error("the host's data disk has {free} bytes free, below the {reserve} bytes it keeps for its own state; writes there are refused until space is freed")]
pub struct BelowReserve {
    /// Bytes free (for unprivileged users).
    pub free: u64,
    /// The reserve in bytes.
    pub reserve: u64,
}

/// Bytes free for unprivileged users on the filesystem holding `fd`.
fn free_bytes(fd: impl AsFd) -> io::Result<u64> {
    let stat = rustix::fs::fstatvfs(fd)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// The device holding `fd`.
fn device(fd: impl AsFd) -> io::Result<u64> {
    Ok(rustix::fs::fstat(fd)?.st_dev)
}

/// The free space kept on the data disk.
#[derive(Debug)]
pub struct SpaceReserve {
    /// The data directory, open.
    data_dir: File,
    device: u64,
    bytes: u64,
}

impl SpaceReserve {
    /// Keeps `bytes` free on the disk holding `data_dir`.
    pub fn new(data_dir: &Path, bytes: u64) -> io::Result<SpaceReserve> {
        let data_dir = File::open(data_dir)?;
        Ok(SpaceReserve { device: device(&data_dir)?, data_dir, bytes })
    }

    /// The reserve in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Bytes free on the data disk.
    pub fn free(&self) -> io::Result<u64> {
        free_bytes(&self.data_dir)
    }

    /// Whether `dir` is on the data disk.
    pub fn shares_disk(&self, dir: impl AsFd) -> bool {
        device(dir).is_ok_and(|d| d == self.device)
    }

    /// Refuses when the free space is below the reserve. A disk whose space cannot be read is
    /// not refused: the writes themselves will say what is wrong.
    pub fn check(&self) -> Result<(), BelowReserve> {
        match self.free() {
            Ok(free) if free < self.bytes => Err(BelowReserve { free, reserve: self.bytes }),
            _ => Ok(()),
        }
    }
}

/// A file holding disk space for the state, given up when a state write found the disk full.
#[derive(Debug)]
pub struct Ballast {
    path: PathBuf,
    bytes: u64,
    held: Mutex<bool>,
}

impl Ballast {
    /// A ballast of `bytes` at `path`, allocated now if there is room for it and the reserve
    /// beside it.
    pub fn new(path: PathBuf, bytes: u64) -> Ballast {
        let ballast = Ballast { path, bytes, held: Mutex::new(false) };
        ballast.top_up();
        ballast
    }

    fn held(&self) -> std::sync::MutexGuard<'_, bool> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the space is held.
    pub fn is_held(&self) -> bool {
        *self.held()
    }

    /// Gives the space back to the disk. Returns whether any was held.
    pub fn release(&self) -> bool {
        let mut held = self.held();
        let was = *held;
        // Removing (not truncating) frees the blocks even if the file was only partly written.
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %self.path.display(), "could not release the state's reserve: {e}"),
        }
        *held = false;
        was
    }

    /// Allocates the space again once the disk has room for twice of it (the ballast and the
    /// reserve tenants' writes stop at). Returns whether it is held.
    pub fn top_up(&self) -> bool {
        let mut held = self.held();
        if *held || self.bytes == 0 {
            return *held;
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        match File::open(dir).and_then(free_bytes) {
            Ok(free) if free >= self.bytes.saturating_mul(2) => {}
            _ => return false,
        }
        let allocated = (|| {
            let file = File::create(&self.path)?;
            rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, self.bytes)?;
            file.sync_all()
        })();
        match allocated {
            Ok(()) => *held = true,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), "could not allocate the state's reserve: {e}");
                let _ = std::fs::remove_file(&self.path);
            }
        }
        *held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ballast_holds_its_size_and_gives_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reserve");
        let ballast = Ballast::new(path.clone(), 1 << 20);
        assert!(ballast.is_held());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
        assert!(ballast.release());
        assert!(!path.exists() && !ballast.is_held());
        assert!(!ballast.release());
        assert!(ballast.top_up());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
    }

    #[test]
    fn a_reserve_larger_than_the_disk_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let reserve = SpaceReserve::new(dir.path(), u64::MAX).unwrap();
        let err = reserve.check().unwrap_err();
        assert_eq!(err.reserve, u64::MAX);
        assert!(SpaceReserve::new(dir.path(), 0).unwrap().check().is_ok());
        assert!(reserve.shares_disk(File::open(dir.path()).unwrap()));
    }
}
