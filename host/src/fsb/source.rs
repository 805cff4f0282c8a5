//! A volume's files as rustic reads them for a backup, through directory handles: the walk
//! opens every directory and file relative to its parent's handle without following symbolic
//! links, so nothing outside the volume's directory is ever read, whatever the tenant does to
//! its tree meanwhile. Symbolic links are recorded as links. Sockets, pipes and devices are
//! skipped, and files that vanish during the walk are left out; both with a warning. A file
//! that changes while it is read is kept as read, with a warning.

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, File, Metadata, MetadataExt, OpenOptions};
use rustic_core::jiff::Timestamp;
use rustic_core::repofile::{Metadata as NodeMetadata, Node, NodeType};
use rustic_core::{ErrorKind, ReadSource, ReadSourceEntry, ReadSourceOpen, RusticError, RusticResult};

/// Warnings of one backup, in the order they happened.
pub type Warnings = Arc<Mutex<Vec<String>>>;

/// The files of one volume directory.
pub struct VolumeSource {
    dir: Arc<Dir>,
    /// Where the volume's root is in the snapshot, e.g. `/data`.
    root: PathBuf,
    warnings: Warnings,
}

impl VolumeSource {
    /// The volume whose directory is `dir`, recorded in snapshots at `root`.
    pub fn new(dir: Dir, root: PathBuf, warnings: Warnings) -> Self {
        VolumeSource { dir: Arc::new(dir), root, warnings }
    }
}

fn warn(warnings: &Warnings, message: String) {
    warnings.lock().expect("warnings lock").push(message);
}

/// Go's `fs.FileMode` bits, which restic records (`io/fs`'s `ModeDir`, `ModeSymlink`).
const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_STICKY: u32 = 1 << 20;

fn go_mode(meta: &Metadata) -> u32 {
    let mode = meta.mode();
    let mut go = mode & 0o777;
    if meta.is_dir() {
        go |= GO_DIR;
    } else if meta.file_type().is_symlink() {
        go |= GO_SYMLINK;
    }
    for (bit, go_bit) in [(0o4000, GO_SETUID), (0o2000, GO_SETGID), (0o1000, GO_STICKY)] {
        if mode & bit != 0 {
            go |= go_bit;
        }
    }
    go
}

fn timestamp(seconds: i64, nanoseconds: i64) -> Option<Timestamp> {
    Timestamp::new(seconds, i32::try_from(nanoseconds).ok()?).ok()
}

fn node_metadata(meta: &Metadata) -> NodeMetadata {
    NodeMetadata {
        mode: Some(go_mode(meta)),
        mtime: timestamp(meta.mtime(), meta.mtime_nsec()),
        atime: timestamp(meta.atime(), meta.atime_nsec()),
        ctime: timestamp(meta.ctime(), meta.ctime_nsec()),
        uid: Some(meta.uid()),
        gid: Some(meta.gid()),
        user: None,
        group: None,
        inode: meta.ino(),
        device_id: meta.dev(),
        size: if meta.is_dir() { 0 } else { meta.len() },
        links: if meta.is_dir() { 0 } else { meta.nlink() },
        extended_attributes: Vec::new(),
    }
}

fn io_error(path: &Path, err: io::Error) -> Box<RusticError> {
    RusticError::with_source(ErrorKind::InputOutput, "reading `{path}` of the volume failed", err)
        .attach_context("path", path.display().to_string())
}

impl ReadSource for VolumeSource {
    type Open = OpenEntry;
    type Iter = Walk;

    /// The bytes of the volume's files, counted by a walk of its own (run alongside the
    /// backup, for its progress); what it finds amiss the backup's walk says again.
    fn size(&self) -> RusticResult<Option<u64>> {
        let files = self.walk(Warnings::default()).filter_map(Result::ok).filter(|e| e.node.is_file());
        Ok(Some(files.map(|e| e.node.meta.size).sum()))
    }

    fn entries(&self) -> Walk {
        self.walk(self.warnings.clone())
    }
}

impl VolumeSource {
    fn walk(&self, warnings: Warnings) -> Walk {
        let names = read_names(&self.dir, &self.root, &warnings);
        Walk { stack: vec![Level { dir: self.dir.clone(), path: self.root.clone(), names }], warnings }
    }
}

/// A directory being walked: its handle, its path in the snapshot, and its names still to
/// visit, last first.
struct Level {
    dir: Arc<Dir>,
    path: PathBuf,
    names: Vec<OsString>,
}

/// The names in `dir`, sorted so that the walk visits them in order (last popped first).
fn read_names(dir: &Dir, path: &Path, warnings: &Warnings) -> Vec<OsString> {
    let mut names: Vec<OsString> = match dir.entries() {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.file_name())).collect(),
        Err(e) => {
            warn(warnings, format!("{}: not read: {e}", path.display()));
            Vec::new()
        }
    };
    names.sort_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
    names
}

/// The walk: every entry of the volume, parents before children, in path order.
pub struct Walk {
    stack: Vec<Level>,
    warnings: Warnings,
}

impl Iterator for Walk {
    type Item = RusticResult<ReadSourceEntry<OpenEntry>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let level = self.stack.last_mut()?;
            let Some(name) = level.names.pop() else {
                self.stack.pop();
                continue;
            };
            let dir = level.dir.clone();
            let path = level.path.join(&name);
            let meta = match dir.symlink_metadata(&name) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    warn(&self.warnings, format!("{}: vanished during the backup; left out", path.display()));
                    continue;
                }
                Err(e) => return Some(Err(io_error(&path, e))),
            };
            let file_type = meta.file_type();
            let node_meta = node_metadata(&meta);
            let (node_type, open) = if file_type.is_dir() {
                match dir.open_dir_nofollow(&name) {
                    Ok(sub) => {
                        let names = read_names(&sub, &path, &self.warnings);
                        self.stack.push(Level { dir: Arc::new(sub), path: path.clone(), names });
                        (NodeType::Dir, None)
                    }
                    Err(e) => {
                        warn(&self.warnings, format!("{}: directory not opened ({e}); left out", path.display()));
                        continue;
                    }
                }
            } else if file_type.is_symlink() {
                match dir.read_link_contents(&name) {
                    Ok(target) => (NodeType::from_link(&target), None),
                    Err(e) => {
                        warn(&self.warnings, format!("{}: link not read ({e}); left out", path.display()));
                        continue;
                    }
                }
            } else if file_type.is_file() {
                let seen = Seen { size: meta.len(), mtime: (meta.mtime(), meta.mtime_nsec()) };
                let open = OpenEntry { dir, name: name.clone(), path: path.clone(), seen, warnings: self.warnings.clone() };
                (NodeType::File, Some(open))
            } else {
                warn(&self.warnings, format!("{}: a socket, pipe or device; skipped", path.display()));
                continue;
            };
            let node = Node::new_node(&name, node_type, node_meta);
            return Some(Ok(ReadSourceEntry { path, node, open }));
        }
    }
}

/// How to open one regular file of the walk: by name, relative to its directory's handle,
/// never following a link put in its place.
#[derive(Debug)]
pub struct OpenEntry {
    dir: Arc<Dir>,
    name: OsString,
    path: PathBuf,
    seen: Seen,
    warnings: Warnings,
}

/// A file's size and modification time when the walk saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    size: u64,
    mtime: (i64, i64),
}

impl ReadSourceOpen for OpenEntry {
    type Reader = WatchedFile;

    fn open(self) -> RusticResult<WatchedFile> {
        let mut options = OpenOptions::new();
        options.read(true).follow(FollowSymlinks::No);
        match self.dir.open_with(&self.name, &options) {
            Ok(file) => Ok(WatchedFile { file: File::into_std(file), path: self.path, seen: self.seen, warnings: self.warnings, ended: false }),
            Err(e) => {
                warn(&self.warnings, format!("{}: not read ({e}); left out", self.path.display()));
                Err(io_error(&self.path, e))
            }
        }
    }
}

/// A file being read for a backup: at its end, a size or modification time other than the
/// walk saw means it changed while it was read, which the backup's warnings say; a read that
/// fails leaves the file out, with a warning.
pub struct WatchedFile {
    file: std::fs::File,
    path: PathBuf,
    seen: Seen,
    warnings: Warnings,
    ended: bool,
}

impl io::Read for WatchedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read(buf);
        match &read {
            Ok(0) if !buf.is_empty() && !self.ended => {
                self.ended = true;
                let now = self.file.metadata().map(|m| Seen { size: m.len(), mtime: (m.mtime(), m.mtime_nsec()) });
                if now.as_ref().is_ok_and(|now| *now != self.seen) {
                    let message = "changed while it was read; the snapshot holds what was read, which may mix old and new content";
                    warn(&self.warnings, format!("{}: {message}", self.path.display()));
                }
            }
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                warn(&self.warnings, format!("{}: reading failed ({e}); left out", self.path.display()));
            }
            _ => {}
        }
        read
    }
}
