//! A hostile volume snapshotter for the host-hardening tests. It claims every
//! PersistentVolume and "snapshots" it without doing anything; on restore, `set-volume-id`
//! answers a rewritten object chosen by config `rewrite`:
//!
//! - `kind=K`: the PV with its `kind` replaced by `K` (e.g. `../../escaped`), so that a host
//!   building paths from the answer would write outside its target;
//! - `name=N`: the PV renamed to `N`, so that it would overwrite another object;
//! - anything else (or unset): the PV unchanged, as an honest provider would answer.
//!
//! With `snapshotDir` granted (optional, mounted at `/snapshots`), `copy-snapshot` attacks the
//! source location's directory it is lent read-only at `/source/snapshots`: it tries to plant a
//! file there, to delete what is there and to rename it away, and answers an error naming every
//! attack that worked, or a copy when none did.

use coffer_guest_sdk::fs::{self, DescriptorFlags, OpenFlags, PathFlags};
use coffer_guest_sdk::{Config, Credential, Error, Manifest, Result, SnapshotCopy, VolumeInfo, VolumeSnapshotter};
use serde_json::Value;

struct Hostile {
    rewrite: Option<(String, String)>,
}

impl VolumeSnapshotter for Hostile {
    fn manifest() -> Manifest {
        Manifest::new("coffer.test/hostile-snapshotter", "test component whose answers try to steer the host's writes")
            .directory("snapshotDir", "/snapshots", true, true)
    }

    fn init(config: Vec<(String, String)>, _credential: Option<Credential>) -> Result<Self> {
        let config = Config::parse(config, &["rewrite", "snapshotDir"])?;
        let rewrite = config.get("rewrite").and_then(|r| r.split_once('=')).map(|(f, v)| (f.to_owned(), v.to_owned()));
        Ok(Hostile { rewrite })
    }

    fn create_volume_from_snapshot(&self, _snapshot_id: &str, _type: &str, _az: &str, _iops: Option<i64>) -> Result<String> {
        Ok("vol-restored".into())
    }

    fn get_volume_id(&self, _pv: &str) -> Result<Option<String>> {
        Ok(Some("vol-1".into()))
    }

    fn set_volume_id(&self, pv: &str, _volume_id: &str) -> Result<String> {
        let mut pv: Value = serde_json::from_str(pv).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        match self.rewrite.as_ref().map(|(f, v)| (f.as_str(), v.clone())) {
            Some(("kind", kind)) => pv["kind"] = Value::String(kind),
            Some(("name", name)) => pv["metadata"]["name"] = Value::String(name),
            _ => {}
        }
        Ok(pv.to_string())
    }

    fn get_volume_info(&self, _volume_id: &str, _az: &str) -> Result<VolumeInfo> {
        Ok(VolumeInfo { volume_type: "hostile".into(), iops: None })
    }

    fn create_snapshot(&self, _volume_id: &str, _az: &str, _tags: Vec<(String, String)>) -> Result<String> {
        Ok("snap-1".into())
    }

    fn delete_snapshot(&self, _snapshot_id: &str) -> Result<()> {
        Ok(())
    }

    fn copy_snapshot(&self, _snapshot_id: &str, _source: Config, _az: &str, _tags: Vec<(String, String)>) -> Result<SnapshotCopy> {
        let source = fs::preopen("/source/snapshots")?;
        let mut worked = Vec::new();
        let planted = source.open_at(PathFlags::empty(), "planted", OpenFlags::CREATE, DescriptorFlags::WRITE);
        if planted.is_ok_and(|f| f.write(b"planted by the copier", 0).is_ok()) {
            worked.push("planted a file");
        }
        for (name, _) in fs::read_dir(&source, ".").unwrap_or_default() {
            if fs::remove_all(&source, &name).is_ok() {
                worked.push("deleted from the source");
            }
            if source.rename_at(&name, &source, "renamed").is_ok() {
                worked.push("renamed in the source");
            }
        }
        if !worked.is_empty() {
            return Err(Error::Other(format!("the source was writable: {}", worked.join(", "))));
        }
        Ok(SnapshotCopy { snapshot_id: "snap-copy".into(), volume_az: "../../elsewhere".into() })
    }
}

coffer_guest_sdk::export_volume_snapshotter!(Hostile);
