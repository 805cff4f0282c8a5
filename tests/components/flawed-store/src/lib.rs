//! A broken object store for the `coffer plugin test` tests: objects as files under the
//! directory of config key `root`, right in every way but the one config key `flaw` names:
//!
//! - `lie-length`: get-object reports one byte more than it wrote;
//! - `list-outside`: list-objects adds a key outside the prefix it was asked for;
//! - `torn-put`: put-object writes straight into the object's file, so that a reader sees
//!   it half written;
//! - `other-for-missing`: a missing object is `other`, not `not-found`;
//! - `hang-on-missing`: a get of a missing object waits a day for nothing, using no CPU.

use std::time::Duration;

use coffer_guest_sdk::fs::{self, Descriptor, DescriptorFlags, DescriptorType, OpenFlags, PathFlags, TEMP_PREFIX};
use coffer_guest_sdk::streams::{InputStream, OutputStream, splice_all};
use coffer_guest_sdk::{Config, Credential, Error, Manifest, ObjectEntry, ObjectStore, Result};

struct Flawed {
    data: Descriptor,
    root: String,
    flaw: String,
}

impl Flawed {
    fn has(&self, flaw: &str) -> bool {
        self.flaw == flaw
    }

    fn path(bucket: &str, key: &str) -> Result<String> {
        if key.is_empty() || key.split('/').any(|s| s.is_empty() || s == "." || s == "..") || bucket.contains('/') {
            return Err(Error::InvalidArgument(format!("key {key:?} in bucket {bucket:?}")));
        }
        Ok(format!("{bucket}/{key}"))
    }

    /// The file of `key`, or the contract's error for a missing one (or the flaw's).
    fn existing(&self, bucket: &str, key: &str) -> Result<String> {
        let path = Self::path(bucket, key)?;
        match fs::kind_of(&self.data, &path)? {
            Some(DescriptorType::RegularFile) => Ok(path),
            _ if self.has("other-for-missing") => Err(Error::Other(format!("no such file: {path}"))),
            _ if self.has("hang-on-missing") => {
                wasip2::clocks::monotonic_clock::subscribe_duration(24 * 3600 * 1_000_000_000).block();
                Err(Error::NotFound(format!("{key:?}, a day later")))
            }
            _ => Err(Error::NotFound(format!("{key:?}"))),
        }
    }

    fn walk(&self, bucket: &str, dir: &str, out: &mut Vec<ObjectEntry>) -> Result<()> {
        let full = if dir.is_empty() { bucket.to_owned() } else { format!("{bucket}/{dir}") };
        for (name, kind) in fs::read_dir(&self.data, &full)? {
            let key = if dir.is_empty() { name.clone() } else { format!("{dir}/{name}") };
            match kind {
                DescriptorType::Directory => self.walk(bucket, &key, out)?,
                DescriptorType::RegularFile if !name.starts_with(TEMP_PREFIX) => {
                    out.push(ObjectEntry { size: fs::size_of(&self.data, &format!("{bucket}/{key}"))?, key });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl ObjectStore for Flawed {
    fn manifest() -> Manifest {
        Manifest::new("coffer.test/flawed-store", "test component: an object store with one flaw").directory("root", "/data", true, false)
    }

    fn init(config: Vec<(String, String)>, _credential: Option<Credential>) -> Result<Self> {
        let config = Config::parse_object_store(config, &["root", "flaw"])?;
        let flaw = config.get("flaw").unwrap_or_default().to_owned();
        Ok(Flawed { data: fs::preopen("/data")?, root: config.require("root")?.to_owned(), flaw })
    }

    fn put_object(&self, bucket: &str, key: &str, body: InputStream) -> Result<u64> {
        let path = Self::path(bucket, key)?;
        if !self.has("torn-put") {
            return fs::write_atomically(&self.data, &path, &body);
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            fs::create_dir_all(&self.data, parent)?;
        }
        let file = self
            .data
            .open_at(PathFlags::empty(), &path, OpenFlags::CREATE | OpenFlags::TRUNCATE, DescriptorFlags::WRITE)
            .map_err(|c| fs::fs_error(&path, c))?;
        let sink = file.write_via_stream(0).map_err(|c| fs::fs_error(&path, c))?;
        splice_all(&body, &sink)
    }

    fn object_exists(&self, bucket: &str, key: &str) -> Result<bool> {
        Ok(matches!(fs::kind_of(&self.data, &Self::path(bucket, key)?)?, Some(DescriptorType::RegularFile)))
    }

    fn get_object(&self, bucket: &str, key: &str, sink: OutputStream) -> Result<u64> {
        let written = fs::read_into(&self.data, &self.existing(bucket, key)?, &sink)?;
        Ok(if self.has("lie-length") && written > 0 { written + 1 } else { written })
    }

    fn get_object_range(&self, bucket: &str, key: &str, offset: u64, length: u64, sink: OutputStream) -> Result<u64> {
        fs::read_range_into(&self.data, &self.existing(bucket, key)?, offset, length, &sink)
    }

    fn list_common_prefixes(&self, bucket: &str, prefix: &str, delimiter: &str) -> Result<Vec<String>> {
        let mut out: Vec<String> = self
            .list_objects(bucket, prefix)?
            .into_iter()
            .filter_map(|entry| {
                let rest = entry.key.strip_prefix(prefix)?;
                rest.find(delimiter).map(|i| format!("{prefix}{}", &rest[..i + delimiter.len()]))
            })
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn list_objects(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectEntry>> {
        let mut all = Vec::new();
        if matches!(fs::kind_of(&self.data, bucket)?, Some(DescriptorType::Directory)) {
            self.walk(bucket, "", &mut all)?;
        }
        all.retain(|e| e.key.starts_with(prefix));
        if self.has("list-outside") {
            all.push(ObjectEntry { key: "elsewhere/not-under-the-prefix".into(), size: 1 });
        }
        Ok(all)
    }

    fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        match self.data.unlink_file_at(&Self::path(bucket, key)?) {
            Ok(()) | Err(fs::ErrorCode::NoEntry) => Ok(()),
            Err(code) => Err(fs::fs_error(key, code)),
        }
    }

    fn create_signed_url(&self, bucket: &str, key: &str, _ttl: Duration) -> Result<String> {
        Ok(format!("file://{}/{}", self.root.trim_end_matches('/'), self.existing(bucket, key)?))
    }
}

coffer_guest_sdk::export_object_store!(Flawed);
