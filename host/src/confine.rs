//! Where the paths a tenant names resolve, and the one place they are confined.
//!
//! A path a tenant names (a location's directory, a backup source, a restore target) is
//! resolved when it is *used*, into an open directory handle, and everything after that goes
//! through the handle: nothing is checked by name and then reopened by name. On a shared host
//! the tenant's own directory is held open and every path resolves beneath it with
//! `openat2(RESOLVE_BENEATH)` (through `cap-std`), so `..`, absolute paths and symbolic links
//! that lead out are refused by the kernel, whatever is swapped in between two calls.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, DirBuilder};
use thiserror::Error;

/// A path a tenant named could not be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path leads outside the tenant's tree (`..`, an absolute path elsewhere, or a
    /// symbolic link pointing out).
    #[error("{field} {path:?} is outside {root}: paths must be inside the tenant's directory")]
    Outside {
        /// What the path is for, e.g. `the restore target`.
        field: String,
        /// The path as named.
        path: String,
        /// The tenant's tree, as the tenant sees it.
        root: String,
    },
    /// The path could not be opened or created.
    #[error("{field} {path:?}: {error}")]
    Io {
        /// What the path is for.
        field: String,
        /// The path as named.
        path: String,
        /// Why.
        error: io::Error,
    },
}

/// Where the paths a tenant names resolve.
#[derive(Debug, Clone)]
pub enum PathRoot {
    /// The single user of a command line: paths are the user's own, absolute or relative to
    /// the working directory.
    Anywhere,
    /// A tenant of a shared host: paths resolve beneath the tenant's directory, held open.
    Beneath {
        /// The tenant's directory on the host (for messages and to accept absolute paths
        /// that lie inside it).
        path: PathBuf,
        /// The tenant's directory, open.
        dir: Arc<Dir>,
    },
}

/// Creates directories owner-only (0700).
fn private_builder() -> DirBuilder {
    use cap_std::fs::DirBuilderExt;
    let mut builder = DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder
}

impl PathRoot {
    /// The tree `<root>/<tenant>` (created owner-only when missing), beneath the already open
    /// `root`. `tenant` must be one plain name.
    pub fn tenant(root: &Dir, root_path: &Path, tenant: &str) -> io::Result<PathRoot> {
        if Path::new(tenant).components().count() != 1 || !matches!(Path::new(tenant).components().next(), Some(Component::Normal(_))) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("tenant name {tenant:?} is not one plain name")));
        }
        match root.create_dir_with(tenant, &private_builder()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let dir = cap_fs_ext::DirExt::open_dir_nofollow(root, tenant)?;
        Ok(PathRoot::Beneath { path: root_path.join(tenant), dir: Arc::new(dir) })
    }

    /// `path` as it should be recorded: relative to the tenant's tree on a shared host (so
    /// that no host path is shown to a tenant), as named otherwise.
    pub fn recorded(&self, path: &Path) -> PathBuf {
        match self {
            PathRoot::Anywhere => path.to_path_buf(),
            PathRoot::Beneath { path: root, .. } => path.strip_prefix(root).unwrap_or(path).to_path_buf(),
        }
    }

    fn outside(&self, field: &str, path: &Path) -> PathError {
        let root = match self {
            PathRoot::Anywhere => String::new(),
            PathRoot::Beneath { path, .. } => path.display().to_string(),
        };
        PathError::Outside { field: field.into(), path: path.display().to_string(), root }
    }

    fn io(&self, field: &str, path: &Path, error: io::Error) -> PathError {
        // cap-std's word for a resolution that left the directory.
        if error.to_string().contains("outside of the filesystem") {
            return self.outside(field, path);
        }
        PathError::Io { field: field.into(), path: path.display().to_string(), error }
    }

    /// `path` beneath the tenant's tree: relative, or absolute inside the tree; plain names
    /// only (`.` allowed, `..` never).
    fn relative(&self, field: &str, path: &Path, root: &Path) -> Result<PathBuf, PathError> {
        let relative = if path.is_absolute() { path.strip_prefix(root).map_err(|_| self.outside(field, path))? } else { path };
        if relative.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
            return Err(self.outside(field, path));
        }
        Ok(if relative.as_os_str().is_empty() { PathBuf::from(".") } else { relative.to_path_buf() })
    }

    /// Checks `path` without touching the filesystem: on a shared host it must name something
    /// beneath the tenant's tree (relative, or absolute inside it, without `..`). Where it
    /// leads is checked again, by the kernel, each time it is opened.
    pub fn check(&self, field: &str, path: &Path) -> Result<(), PathError> {
        match self {
            PathRoot::Anywhere => Ok(()),
            PathRoot::Beneath { path: root, .. } => self.relative(field, path, root).map(drop),
        }
    }

    /// Opens the existing directory `path`; `field` says what it is for, in errors.
    pub fn open_dir(&self, field: &str, path: &Path) -> Result<Dir, PathError> {
        match self {
            PathRoot::Anywhere => Dir::open_ambient_dir(path, ambient_authority()).map_err(|e| self.io(field, path, e)),
            PathRoot::Beneath { path: root, dir } => {
                let relative = self.relative(field, path, root)?;
                dir.open_dir(&relative).map_err(|e| self.io(field, path, e))
            }
        }
    }

    /// Opens the directory `path`, creating it and its parents (owner-only) when missing.
    pub fn create_dir(&self, field: &str, path: &Path) -> Result<Dir, PathError> {
        match self {
            PathRoot::Anywhere => {
                std::fs::create_dir_all(path).map_err(|e| self.io(field, path, e))?;
                self.open_dir(field, path)
            }
            PathRoot::Beneath { path: root, dir } => {
                let relative = self.relative(field, path, root)?;
                let created = dir.create_dir_with(&relative, &private_builder());
                // Opening says best why creating failed (a link leading out, say).
                let opened = dir.open_dir(&relative).map_err(|e| self.io(field, path, e))?;
                created.map_err(|e| self.io(field, path, e))?;
                Ok(opened)
            }
        }
    }
}

impl PathRoot {
    /// Creates the file `path` for writing (replacing one there only with `overwrite`).
    pub fn create_file(&self, field: &str, path: &Path, overwrite: bool) -> Result<std::fs::File, PathError> {
        let mut options = cap_std::fs::OpenOptions::new();
        options.write(true);
        if overwrite { options.create(true).truncate(true) } else { options.create_new(true) };
        let file = match self {
            PathRoot::Anywhere => cap_std::fs::File::open_ambient_with(path, &options, ambient_authority()),
            PathRoot::Beneath { path: root, dir } => dir.open_with(self.relative(field, path, root)?, &options),
        };
        file.map(cap_std::fs::File::into_std).map_err(|e| self.io(field, path, e))
    }

    /// Removes the file `path` (one this root created, say, that turned out incomplete).
    pub fn remove_file(&self, field: &str, path: &Path) -> Result<(), PathError> {
        match self {
            PathRoot::Anywhere => std::fs::remove_file(path).map_err(|e| self.io(field, path, e)),
            PathRoot::Beneath { path: root, dir } => {
                let relative = self.relative(field, path, root)?;
                dir.remove_file(&relative).map_err(|e| self.io(field, path, e))
            }
        }
    }

    /// `path` checked (see [`PathRoot::check`]) and in the form it is recorded in: relative
    /// to the tenant's tree on a shared host, absolute for a single user.
    pub fn confine(&self, field: &str, path: &Path) -> Result<PathBuf, PathError> {
        self.check(field, path)?;
        match self {
            PathRoot::Anywhere => std::path::absolute(path).map_err(|e| self.io(field, path, e)),
            PathRoot::Beneath { .. } => Ok(self.recorded(path)),
        }
    }
}

/// The path the kernel has for the open directory `dir` (for messages and overlap checks).
pub fn path_of(dir: &Dir) -> io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(proc_path(dir.as_raw_fd()))
}

/// `/proc/self/fd/N`: opening it opens exactly the directory `fd` refers to, wherever it is
/// now and whatever its old name points at.
pub fn proc_path(fd: std::os::fd::RawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{fd}"))
}

/// Whether one of two directories contains the other (or they are the same).
pub fn overlapping(a: &Dir, b: &Dir) -> io::Result<bool> {
    let (a, b) = (path_of(a)?, path_of(b)?);
    Ok(a.starts_with(&b) || b.starts_with(&a))
}

/// Whether one of two directories lies strictly inside the other.
pub fn nested(a: &Dir, b: &Dir) -> io::Result<bool> {
    let (a, b) = (path_of(a)?, path_of(b)?);
    Ok(a != b && (a.starts_with(&b) || b.starts_with(&a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant_tree() -> (tempfile::TempDir, PathRoot) {
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        let tree = PathRoot::tenant(&root, tmp.path(), "acme").unwrap();
        (tmp, tree)
    }

    #[test]
    fn paths_resolve_beneath_the_tenant_tree_only() {
        let (tmp, tree) = tenant_tree();
        let acme = tmp.path().join("acme");
        std::fs::create_dir(acme.join("src")).unwrap();
        std::fs::create_dir(tmp.path().join("other")).unwrap();
        assert!(tree.open_dir("source", Path::new("src")).is_ok());
        assert!(tree.open_dir("source", &acme.join("src")).is_ok());
        assert!(tree.open_dir("source", Path::new("")).is_ok());
        assert!(tree.create_dir("target", Path::new("out/new")).is_ok());
        assert!(acme.join("out/new").is_dir());
        for bad in ["/etc", "../other", "src/../../other"] {
            let err = tree.open_dir("source", Path::new(bad)).unwrap_err();
            assert!(matches!(err, PathError::Outside { .. }), "{bad}: {err}");
        }
        std::os::unix::fs::symlink("../other", acme.join("escape")).unwrap();
        std::os::unix::fs::symlink("/etc", acme.join("abs")).unwrap();
        for bad in ["escape", "escape/new", "abs"] {
            let open = tree.open_dir("source", Path::new(bad)).map(drop);
            let create = tree.create_dir("target", Path::new(bad)).map(drop);
            assert!(open.is_err() && create.is_err(), "{bad}");
        }
        assert!(!tmp.path().join("other/new").exists());
        assert_eq!(std::fs::metadata(&acme).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777).unwrap(), 0o700);
    }

    #[test]
    fn a_held_directory_stays_the_one_opened() {
        let (tmp, tree) = tenant_tree();
        let acme = tmp.path().join("acme");
        std::fs::create_dir(acme.join("store")).unwrap();
        std::fs::create_dir(tmp.path().join("other")).unwrap();
        let held = tree.open_dir("root", Path::new("store")).unwrap();
        // Swap the name for a link to another tree: the handle still means the old directory.
        std::fs::rename(acme.join("store"), acme.join("moved")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("other"), acme.join("store")).unwrap();
        use std::os::fd::AsRawFd;
        let reopened = Dir::open_ambient_dir(proc_path(held.as_raw_fd()), ambient_authority()).unwrap();
        reopened.write("x", b"1").unwrap();
        assert!(acme.join("moved/x").exists() && !tmp.path().join("other/x").exists());
        assert!(overlapping(&held, &reopened).unwrap() && !nested(&held, &reopened).unwrap());
        assert_eq!(tree.recorded(&acme.join("moved")), Path::new("moved"));
    }
}
