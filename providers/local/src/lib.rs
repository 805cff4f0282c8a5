//! `velero.io/local`: snapshots of directory volumes.
//!
//! Config: `volumeRoot`, the absolute host directory holding the volumes (mounted at
//! `/volumes`), and `snapshotDir`, where snapshots are kept (mounted at `/snapshots`).
//! A PersistentVolume is claimed when its `hostPath.path` or `local.path` lies inside
//! `volumeRoot`; its volume ID is that path relative to `volumeRoot`. A snapshot is a full copy
//! of the volume's tree under `snapshotDir/<snapshot-id>/data`, written under a temporary name
//! and renamed into place when complete. `copy-snapshot` copies a snapshot of another `local`
//! location (its `snapshotDir`, mounted read-only at `/source/snapshots` for the call) into
//! this one.

use coffer_guest_sdk::fs::{self, Descriptor, DescriptorFlags, DescriptorType, OpenFlags, PathFlags, TEMP_PREFIX};
use coffer_guest_sdk::{Config, Credential, Error, Manifest, Result, SnapshotCopy, VolumeInfo, VolumeSnapshotter};
use serde_json::Value;

const VOLUMES: &str = "/volumes";
const SNAPSHOTS: &str = "/snapshots";
/// Where `copy-snapshot` sees the source location's `snapshotDir`.
const SOURCE_SNAPSHOTS: &str = "/source/snapshots";
/// The volume type recorded for directory volumes.
const VOLUME_TYPE: &str = "directory";

struct Local {
    volumes: Descriptor,
    snapshots: Descriptor,
    /// `volumeRoot` as the host names it, without a trailing `/`.
    volume_root: String,
}

/// Checks an ID used as a path under a granted directory.
fn check_id(what: &str, id: &str) -> Result<()> {
    let bad = id.is_empty()
        || id.starts_with('/')
        || id.starts_with(TEMP_PREFIX)
        || id.split('/').any(|s| s.is_empty() || s == "." || s == "..")
        || id.contains('\0');
    if bad {
        return Err(Error::InvalidArgument(format!("{what} {id:?} is not a valid relative ID")));
    }
    Ok(())
}

fn parse_pv(pv: &str) -> Result<Value> {
    serde_json::from_str(pv).map_err(|e| Error::InvalidArgument(format!("the PersistentVolume is not JSON: {e}")))
}

/// The JSON pointer of the directory path of a PV, if it has one.
fn path_field(pv: &Value) -> Option<&'static str> {
    ["/spec/hostPath/path", "/spec/local/path"].into_iter().find(|p| pv.pointer(p).is_some_and(Value::is_string))
}

/// Copies the tree `from` under `src` to `to` under `dst` (which must not exist).
fn copy_tree(src: &Descriptor, from: &str, dst: &Descriptor, to: &str) -> Result<()> {
    dst.create_directory_at(to).map_err(|c| fs::fs_error(to, c))?;
    for (name, kind) in fs::read_dir(src, from)? {
        let (s, d) = (format!("{from}/{name}"), format!("{to}/{name}"));
        match kind {
            DescriptorType::Directory => copy_tree(src, &s, dst, &d)?,
            DescriptorType::RegularFile => {
                fs::copy_file(src, &s, dst, &d)?;
            }
            DescriptorType::SymbolicLink => {
                let target = src.readlink_at(&s).map_err(|c| fs::fs_error(&s, c))?;
                dst.symlink_at(&target, &d).map_err(|c| fs::fs_error(&d, c))?;
            }
            _ => return Err(Error::Unsupported(format!("{s} is neither a file, a directory nor a symlink"))),
        }
    }
    Ok(())
}

/// Copies `from` under `src` into a new directory `to` under `dst`: into a temporary name
/// first, renamed when complete, so a half copy is never visible under `to`.
fn copy_tree_atomically(src: &Descriptor, from: &str, dst: &Descriptor, to: &str) -> Result<()> {
    let temp = format!("{TEMP_PREFIX}{}", fs::random_hex(8));
    let result = copy_tree(src, from, dst, &temp).and_then(|()| dst.rename_at(&temp, dst, to).map_err(|c| fs::fs_error(to, c)));
    if result.is_err() {
        let _ = fs::remove_all(dst, &temp);
    }
    result
}

impl Local {
    /// Writes a new snapshot holding a copy of the tree `from` under `src`, with `record` and
    /// `tags` in its `snapshot.json`: under a temporary name, renamed into place when complete.
    fn write_snapshot(&self, src: &Descriptor, from: &str, mut record: Value, tags: Vec<(String, String)>) -> Result<String> {
        let snapshot_id = format!("snap-{}", fs::random_hex(8));
        let temp = format!("{TEMP_PREFIX}{snapshot_id}");
        record["tags"] = Value::Object(tags.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
        let record = record.to_string();
        let result = (|| {
            self.snapshots.create_directory_at(&temp).map_err(|c| fs::fs_error(&temp, c))?;
            copy_tree(src, from, &self.snapshots, &format!("{temp}/data"))?;
            let file = self
                .snapshots
                .open_at(PathFlags::empty(), &format!("{temp}/snapshot.json"), OpenFlags::CREATE | OpenFlags::EXCLUSIVE, DescriptorFlags::WRITE)
                .map_err(|c| fs::fs_error("snapshot.json", c))?;
            let mut written = 0;
            while written < record.len() {
                written += file
                    .write(&record.as_bytes()[written..], written as u64)
                    .map_err(|c| fs::fs_error("snapshot.json", c))? as usize;
            }
            file.sync_data().map_err(|c| fs::fs_error("snapshot.json", c))?;
            self.snapshots.rename_at(&temp, &self.snapshots, &snapshot_id).map_err(|c| fs::fs_error(&snapshot_id, c))
        })();
        if let Err(e) = result {
            let _ = fs::remove_all(&self.snapshots, &temp);
            return Err(e);
        }
        Ok(snapshot_id)
    }

    fn require_volume(&self, volume_id: &str) -> Result<()> {
        check_id("volume ID", volume_id)?;
        match fs::kind_of(&self.volumes, volume_id)? {
            Some(DescriptorType::Directory) => Ok(()),
            _ => Err(Error::NotFound(format!("volume {volume_id:?} is not a directory under {}", self.volume_root))),
        }
    }
}

impl VolumeSnapshotter for Local {
    fn manifest() -> Manifest {
        Manifest::new("velero.io/local", "copies of directory volumes (config: volumeRoot, snapshotDir)")
            .directory("volumeRoot", VOLUMES, true, false)
            .directory("snapshotDir", SNAPSHOTS, true, false)
    }

    fn init(config: Vec<(String, String)>, _credential: Option<Credential>) -> Result<Self> {
        let config = Config::parse(config, &["volumeRoot", "snapshotDir"])?;
        let volume_root = config.require("volumeRoot")?.trim_end_matches('/').to_owned();
        config.require("snapshotDir")?;
        if !volume_root.starts_with('/') {
            return Err(Error::invalid_config("volumeRoot", format!("{volume_root:?} is not an absolute path")));
        }
        Ok(Local { volumes: fs::preopen(VOLUMES)?, snapshots: fs::preopen(SNAPSHOTS)?, volume_root })
    }

    fn create_volume_from_snapshot(&self, snapshot_id: &str, _type: &str, _az: &str, _iops: Option<i64>) -> Result<String> {
        check_id("snapshot ID", snapshot_id)?;
        let data = format!("{snapshot_id}/data");
        if !matches!(fs::kind_of(&self.snapshots, &data)?, Some(DescriptorType::Directory)) {
            return Err(Error::NotFound(format!("snapshot {snapshot_id:?}")));
        }
        let volume_id = format!("{snapshot_id}-restore-{}", fs::random_hex(4));
        copy_tree_atomically(&self.snapshots, &data, &self.volumes, &volume_id)?;
        Ok(volume_id)
    }

    fn get_volume_id(&self, pv: &str) -> Result<Option<String>> {
        let pv = parse_pv(pv)?;
        let Some(path) = path_field(&pv).and_then(|p| pv.pointer(p)).and_then(Value::as_str) else {
            return Ok(None);
        };
        let Some(relative) = path.strip_prefix(&self.volume_root).and_then(|r| r.strip_prefix('/')) else {
            return Ok(None);
        };
        let relative = relative.trim_end_matches('/');
        Ok(check_id("volume ID", relative).is_ok().then(|| relative.to_owned()))
    }

    fn set_volume_id(&self, pv: &str, volume_id: &str) -> Result<String> {
        check_id("volume ID", volume_id)?;
        let mut pv = parse_pv(pv)?;
        let field = path_field(&pv)
            .ok_or_else(|| Error::InvalidArgument("the PersistentVolume has neither hostPath.path nor local.path".into()))?;
        *pv.pointer_mut(field).expect("field was found above") = Value::String(format!("{}/{volume_id}", self.volume_root));
        Ok(pv.to_string())
    }

    fn get_volume_info(&self, volume_id: &str, _az: &str) -> Result<VolumeInfo> {
        self.require_volume(volume_id)?;
        Ok(VolumeInfo { volume_type: VOLUME_TYPE.into(), iops: None })
    }

    fn create_snapshot(&self, volume_id: &str, _az: &str, tags: Vec<(String, String)>) -> Result<String> {
        self.require_volume(volume_id)?;
        self.write_snapshot(&self.volumes, volume_id, serde_json::json!({ "volumeID": volume_id }), tags)
    }

    fn copy_snapshot(&self, snapshot_id: &str, source: Config, _az: &str, tags: Vec<(String, String)>) -> Result<SnapshotCopy> {
        check_id("snapshot ID", snapshot_id)?;
        let from = source.get("snapshotDir").unwrap_or_default();
        let source_dir = fs::preopen(SOURCE_SNAPSHOTS)?;
        let data = format!("{snapshot_id}/data");
        if !matches!(fs::kind_of(&source_dir, &data)?, Some(DescriptorType::Directory)) {
            return Err(Error::NotFound(format!("snapshot {snapshot_id:?} in {from}")));
        }
        let record = serde_json::json!({ "copyOf": snapshot_id, "copiedFrom": from });
        let snapshot_id = self.write_snapshot(&source_dir, &data, record, tags)?;
        Ok(SnapshotCopy { snapshot_id, volume_az: String::new() })
    }

    fn delete_snapshot(&self, snapshot_id: &str) -> Result<()> {
        check_id("snapshot ID", snapshot_id)?;
        fs::remove_all(&self.snapshots, snapshot_id)
    }
}

coffer_guest_sdk::export_volume_snapshotter!(Local);
