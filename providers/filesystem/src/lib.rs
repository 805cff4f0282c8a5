//! `velero.io/filesystem`: an object store keeping each object as a file.
//!
//! Config: `root` (required), an absolute host directory. The host mounts it at `/data` and
//! grants nothing else; bucket `b` is the directory `/data/b`, key `k` the file `/data/b/k`.
//! Puts are atomic (temporary file, sync, rename), empty directories left by deletes are
//! removed (with the temporary files of interrupted puts in them), and keys that could leave the bucket (`..`, absolute, empty segments) are refused.

use std::time::Duration;

use coffer_guest_sdk::fs::{self, Descriptor, DescriptorType, TEMP_PREFIX};
use coffer_guest_sdk::streams::{InputStream, OutputStream};
use coffer_guest_sdk::{Config, Credential, Error, Manifest, ObjectEntry, ObjectStore, Result};

const MOUNT: &str = "/data";

struct Filesystem {
    /// The granted directory as the guest sees it.
    data: Descriptor,
    /// The same directory as the host names it, for `file://` URLs.
    root: String,
}

/// Checks a bucket name: one plain path segment.
fn check_bucket(bucket: &str) -> Result<()> {
    if bucket.is_empty() || bucket.contains('/') || bucket == "." || bucket == ".." || bucket.contains('\0') {
        return Err(Error::InvalidArgument(format!("bucket {bucket:?} must be one plain directory name")));
    }
    Ok(())
}

/// Checks a key or key prefix: relative, `/`-separated, no `.`/`..`/empty segments, no
/// reserved temporary names. A prefix may end in `/`.
fn check_key(key: &str, is_prefix: bool) -> Result<()> {
    let body = if is_prefix { key.strip_suffix('/').unwrap_or(key) } else { key };
    if body.is_empty() {
        return if is_prefix { Ok(()) } else { Err(Error::InvalidArgument("the object key is empty".into())) };
    }
    for segment in body.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." || segment.contains('\0') || segment.starts_with(TEMP_PREFIX) {
            return Err(Error::InvalidArgument(format!(
                "key {key:?} has a segment {segment:?} that is not allowed (empty, '.', '..' or reserved)"
            )));
        }
    }
    Ok(())
}

impl Filesystem {
    fn path(bucket: &str, key: &str) -> Result<String> {
        check_bucket(bucket)?;
        check_key(key, false)?;
        Ok(format!("{bucket}/{key}"))
    }

    fn is_file(&self, path: &str) -> Result<bool> {
        Ok(matches!(fs::kind_of(&self.data, path)?, Some(DescriptorType::RegularFile)))
    }

    /// Every object below directory `dir` (relative to the bucket), appended to `out`.
    fn walk(&self, bucket: &str, dir: &str, out: &mut Vec<ObjectEntry>) -> Result<()> {
        let full = if dir.is_empty() { bucket.to_owned() } else { format!("{bucket}/{dir}") };
        for (name, kind) in fs::read_dir(&self.data, &full)? {
            if name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let key = if dir.is_empty() { name } else { format!("{dir}/{name}") };
            match kind {
                DescriptorType::Directory => self.walk(bucket, &key, out)?,
                DescriptorType::RegularFile => {
                    let size = fs::size_of(&self.data, &format!("{bucket}/{key}"))?;
                    out.push(ObjectEntry { key, size });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether directory `dir` holds at least one object, at any depth.
    fn holds_objects(&self, dir: &str) -> Result<bool> {
        for (name, kind) in fs::read_dir(&self.data, dir)? {
            if name.starts_with(TEMP_PREFIX) {
                continue;
            }
            match kind {
                DescriptorType::RegularFile => return Ok(true),
                DescriptorType::Directory if self.holds_objects(&format!("{dir}/{name}"))? => return Ok(true),
                _ => {}
            }
        }
        Ok(false)
    }

    /// After a delete: when `key`'s directory holds no objects any more, removes the temporary
    /// files that interrupted puts left there (the host never deletes in a directory it is
    /// still writing to), then the directories left empty.
    fn sweep(&self, bucket: &str, key: &str) {
        let Some((parent, _)) = key.rsplit_once('/') else { return };
        let dir = format!("{bucket}/{parent}");
        if !matches!(fs::kind_of(&self.data, &dir), Ok(Some(DescriptorType::Directory))) || self.holds_objects(&dir).unwrap_or(true) {
            return;
        }
        for (name, kind) in fs::read_dir(&self.data, &dir).unwrap_or_default() {
            if kind == DescriptorType::RegularFile && name.starts_with(TEMP_PREFIX) {
                let _ = self.data.unlink_file_at(&format!("{dir}/{name}"));
            }
        }
        self.prune_parents(bucket, key);
    }

    /// Removes the now-empty directories above `key`, stopping at the bucket.
    fn prune_parents(&self, bucket: &str, key: &str) {
        let mut rest = key;
        while let Some((parent, _)) = rest.rsplit_once('/') {
            if self.data.remove_directory_at(&format!("{bucket}/{parent}")).is_err() {
                break;
            }
            rest = parent;
        }
    }
}

impl ObjectStore for Filesystem {
    fn manifest() -> Manifest {
        Manifest::new("velero.io/filesystem", "objects as files under a local directory (config: root)")
            .directory("root", MOUNT, true, false)
    }

    fn init(config: Vec<(String, String)>, _credential: Option<Credential>) -> Result<Self> {
        let config = Config::parse_object_store(config, &["root"])?;
        let root = config.require("root")?.to_owned();
        if !root.starts_with('/') {
            return Err(Error::invalid_config("root", format!("{root:?} is not an absolute path")));
        }
        if let Some(bucket) = config.get("bucket") {
            check_bucket(bucket).map_err(|e| Error::invalid_config("bucket", e.to_string()))?;
        }
        Ok(Filesystem { data: fs::preopen(MOUNT)?, root })
    }

    fn put_object(&self, bucket: &str, key: &str, body: InputStream) -> Result<u64> {
        let path = Self::path(bucket, key)?;
        if matches!(fs::kind_of(&self.data, &path)?, Some(DescriptorType::Directory)) {
            return Err(Error::AlreadyExists(format!("{key:?} is a prefix of other objects")));
        }
        fs::write_atomically(&self.data, &path, &body)
    }

    fn object_exists(&self, bucket: &str, key: &str) -> Result<bool> {
        self.is_file(&Self::path(bucket, key)?)
    }

    fn get_object(&self, bucket: &str, key: &str, sink: OutputStream) -> Result<u64> {
        let path = Self::path(bucket, key)?;
        if !self.is_file(&path)? {
            return Err(Error::NotFound(format!("object {key:?} in bucket {bucket:?}")));
        }
        fs::read_into(&self.data, &path, &sink)
    }

    fn get_object_range(&self, bucket: &str, key: &str, offset: u64, length: u64, sink: OutputStream) -> Result<u64> {
        let path = Self::path(bucket, key)?;
        if !self.is_file(&path)? {
            return Err(Error::NotFound(format!("object {key:?} in bucket {bucket:?}")));
        }
        fs::read_range_into(&self.data, &path, offset, length, &sink)
    }

    fn list_common_prefixes(&self, bucket: &str, prefix: &str, delimiter: &str) -> Result<Vec<String>> {
        check_bucket(bucket)?;
        check_key(prefix, true)?;
        if delimiter != "/" {
            // Any other delimiter: derive from the full listing.
            let mut out: Vec<String> = self
                .list_objects(bucket, prefix)?
                .into_iter()
                .filter_map(|ObjectEntry { key, .. }| {
                    let rest = &key[prefix.len()..];
                    rest.find(delimiter).map(|i| format!("{prefix}{}", &rest[..i + delimiter.len()]))
                })
                .collect();
            out.dedup();
            return Ok(out);
        }
        // Directories under the prefix's parent whose name starts with its last segment.
        let (dir, partial) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let full = if dir.is_empty() { bucket.to_owned() } else { format!("{bucket}/{dir}") };
        if !matches!(fs::kind_of(&self.data, &full)?, Some(DescriptorType::Directory)) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (name, kind) in fs::read_dir(&self.data, &full)? {
            if kind == DescriptorType::Directory
                && name.starts_with(partial)
                && !name.starts_with(TEMP_PREFIX)
                && self.holds_objects(&format!("{full}/{name}"))?
            {
                let base = if dir.is_empty() { String::new() } else { format!("{dir}/") };
                out.push(format!("{base}{name}/"));
            }
        }
        Ok(out)
    }

    fn list_objects(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectEntry>> {
        check_bucket(bucket)?;
        check_key(prefix, true)?;
        if !matches!(fs::kind_of(&self.data, bucket)?, Some(DescriptorType::Directory)) {
            return Ok(Vec::new());
        }
        // Walk only the deepest directory that contains every match.
        let start = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
        let start_path = if start.is_empty() { bucket.to_owned() } else { format!("{bucket}/{start}") };
        if !matches!(fs::kind_of(&self.data, &start_path)?, Some(DescriptorType::Directory)) {
            return Ok(Vec::new());
        }
        let mut objects = Vec::new();
        self.walk(bucket, start, &mut objects)?;
        objects.retain(|o| o.key.starts_with(prefix));
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        let path = Self::path(bucket, key)?;
        match fs::kind_of(&self.data, &path)? {
            None => {
                self.sweep(bucket, key);
                Ok(())
            }
            Some(DescriptorType::RegularFile) => {
                self.data.unlink_file_at(&path).map_err(|c| fs::fs_error(&path, c))?;
                self.sweep(bucket, key);
                Ok(())
            }
            Some(_) => Err(Error::InvalidArgument(format!("{key:?} is not an object"))),
        }
    }

    fn create_signed_url(&self, bucket: &str, key: &str, _ttl: Duration) -> Result<String> {
        let path = Self::path(bucket, key)?;
        if !self.is_file(&path)? {
            return Err(Error::NotFound(format!("object {key:?} in bucket {bucket:?}")));
        }
        // A local file needs no signature: whoever can open the path can read it.
        Ok(format!("file://{}/{path}", self.root.trim_end_matches('/')))
    }
}

coffer_guest_sdk::export_object_store!(Filesystem);
