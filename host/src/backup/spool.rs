//! A backup's tarball between writing it and uploading it: in memory while small (most are,
//! and an unnamed file costs an inode made and freed on every backup), in an unnamed
//! temporary file beyond; read again from its start by each location's upload.

use std::io::{Cursor, Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use tempfile::{SpooledData, SpooledTempFile};

/// Bytes a spool keeps in memory before it moves them into a temporary file.
const IN_MEMORY: usize = 4 << 20;

/// Where a tarball is written.
pub(super) struct Spool(SpooledTempFile);

impl Spool {
    pub(super) fn new() -> Spool {
        Spool(SpooledTempFile::new(IN_MEMORY))
    }

    /// What was written, to be read.
    pub(super) fn finish(mut self) -> std::io::Result<Spooled> {
        self.0.flush()?;
        Ok(match self.0.into_inner() {
            SpooledData::InMemory(cursor) => Spooled::Memory(Bytes::from(cursor.into_inner())),
            SpooledData::OnDisk(file) => Spooled::File(Arc::new(file)),
        })
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A written spool, shared by the uploads that read it.
#[derive(Clone)]
pub(super) enum Spooled {
    Memory(Bytes),
    File(Arc<std::fs::File>),
}

impl Spooled {
    /// A reader from its start.
    pub(super) fn reader(&self) -> Box<dyn Read + Send> {
        match self {
            Spooled::Memory(bytes) => Box::new(Cursor::new(bytes.clone())),
            Spooled::File(file) => Box::new(FileAt { file: file.clone(), at: 0 }),
        }
    }
}

/// A file read from `at` with positioned reads, so that readers of one file do not move each
/// other.
struct FileAt {
    file: Arc<std::fs::File>,
    at: u64,
}

impl Read for FileAt {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(&*self.file, buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(len: usize) -> (Vec<u8>, Spooled) {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut spool = Spool::new();
        for piece in data.chunks(100_003) {
            spool.write_all(piece).unwrap();
        }
        (data, spool.finish().unwrap())
    }

    fn read_whole(spooled: &Spooled) -> Vec<u8> {
        let mut out = Vec::new();
        spooled.reader().read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn a_small_tarball_stays_in_memory_and_a_large_one_moves_to_a_file_and_each_reads_whole_every_time() {
        let (small, spooled) = written(IN_MEMORY);
        assert!(matches!(spooled, Spooled::Memory(_)));
        assert_eq!(read_whole(&spooled), small);
        let (large, spooled) = written(IN_MEMORY + 1);
        assert!(matches!(spooled, Spooled::File(_)));
        // Two readers at once, each from the start.
        let mut first = spooled.reader();
        let mut head = [0u8; 10];
        first.read_exact(&mut head).unwrap();
        assert_eq!(read_whole(&spooled), large);
        let mut rest = Vec::new();
        first.read_to_end(&mut rest).unwrap();
        assert_eq!([&head[..], &rest].concat(), large);
    }
}
