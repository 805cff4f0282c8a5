//! Velero's backup tarball (format 1.1.0): writing it, and reading it defensively.

use std::io::{Read, Write};
use std::path::{Component, Path};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use thiserror::Error;

use super::item::Item;

/// `metadata/version` content, and `status.formatVersion`.
pub const FORMAT_VERSION: &str = "1.1.0";

/// The path of `item` in a tarball (and in a restore's target directory): under
/// `resources/<resource.group>/`, then `namespaces/<ns>/` or `cluster/`, or with
/// `version_dir` (`v1-preferredversion`) between the two.
pub fn item_path(item: &Item, version_dir: Option<&str>) -> String {
    let scope = match &item.namespace {
        Some(ns) => format!("namespaces/{ns}"),
        None => "cluster".to_owned(),
    };
    let version = version_dir.map(|v| format!("{v}/")).unwrap_or_default();
    format!("resources/{}/{version}{scope}/{}.json", item.group_resource(), item.name)
}

fn append(tar: &mut tar::Builder<impl Write>, path: &str, body: &[u8], mtime: u64) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o755);
    header.set_size(body.len() as u64);
    header.set_mtime(mtime);
    tar.append_data(&mut header, path, body)
}

/// Writes the gzip-compressed tarball of `items` to `out`: `metadata/version`, then each item
/// at its unversioned path and again under `<version>-preferredversion/`, as Velero does.
pub fn write_tarball<'a>(items: impl IntoIterator<Item = &'a Item>, out: impl Write) -> std::io::Result<()> {
    let mtime = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::default()));
    append(&mut tar, "metadata/version", format!("{FORMAT_VERSION}\n").as_bytes(), mtime)?;
    for item in items {
        let body = serde_json::to_vec(&item.object)?;
        append(&mut tar, &item_path(item, None), &body, mtime)?;
        append(&mut tar, &item_path(item, Some(&format!("{}-preferredversion", item.version))), &body, mtime)?;
    }
    tar.into_inner()?.finish()?.flush()
}

/// Bounds on what a tarball may expand to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest single entry (Kubernetes objects are at most ~1.5 MB).
    pub max_entry: u64,
    /// Largest total of all entries.
    pub max_total: u64,
}

impl Default for Limits {
    /// 4 MiB an entry (more than twice the largest object etcd stores by default, and what
    /// bounds the memory of parsing one), 8 GiB in all.
    fn default() -> Self {
        Limits { max_entry: 4 << 20, max_total: 8 << 30 }
    }
}

/// Why a tarball was refused. Nothing is written when any entry is refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TarballError {
    /// Not gzip, or a broken tar stream.
    #[error("the backup tarball is corrupt: {0}")]
    Corrupt(String),
    /// An entry path that is absolute or climbs out with `..`.
    #[error("the backup tarball has an entry with an unsafe path {0:?}")]
    UnsafePath(String),
    /// A link, device or other non-file entry.
    #[error("the backup tarball has an entry {path:?} of type {kind}, but only files and directories are allowed")]
    UnsupportedEntry {
        /// The entry.
        path: String,
        /// Its type.
        kind: String,
    },
    /// An entry larger than the limit.
    #[error("the backup tarball entry {path:?} expands beyond {limit} bytes")]
    EntryTooLarge {
        /// The entry.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// More data than the limit in total.
    #[error("the backup tarball expands beyond {0} bytes")]
    TotalTooLarge(u64),
    /// An entry that is not a valid object.
    #[error("the backup tarball entry {path:?} is not a valid object: {reason}")]
    BadItem {
        /// The entry.
        path: String,
        /// Why.
        reason: String,
    },
    /// No `metadata/version`, or an unknown one.
    #[error("the backup tarball has {0}")]
    Version(String),
}

/// A tarball's objects, read and checked in full before anything is written anywhere.
#[derive(Debug)]
pub struct Contents {
    /// The format version.
    pub version: String,
    /// Each object once (the preferred-version copies are skipped).
    pub items: Vec<Item>,
}

fn safe_relative(path: &Path) -> bool {
    !path.as_os_str().is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Reads a tarball from `input` within `limits` into memory. Refuses what [`visit_tarball`]
/// refuses.
pub fn read_tarball(input: impl Read, limits: Limits) -> Result<Contents, TarballError> {
    let mut items = Vec::new();
    let version = visit_tarball(input, limits, |item| {
        items.push(item);
        true
    })?;
    Ok(Contents { version, items })
}

/// Reads a tarball from `input` within `limits`, handing each object to `visit` as it is read
/// (one at a time: memory stays bounded by one entry whatever the tarball holds) until
/// `visit` answers `false`. Returns the format version. Refuses absolute or climbing paths,
/// links and devices, oversized or corrupt data, objects that do not match their path, and a
/// missing or unknown format version.
pub fn visit_tarball(input: impl Read, limits: Limits, mut visit: impl FnMut(Item) -> bool) -> Result<String, TarballError> {
    let corrupt = |e: std::io::Error| TarballError::Corrupt(e.to_string());
    let mut archive = tar::Archive::new(GzDecoder::new(input));
    let mut total = 0u64;
    let mut version = None;
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if !safe_relative(Path::new(&raw_path)) {
            return Err(TarballError::UnsafePath(raw_path));
        }
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Directory => continue,
            other => return Err(TarballError::UnsupportedEntry { path: raw_path, kind: format!("{other:?}") }),
        }
        if entry.header().size().map_err(corrupt)? > limits.max_entry {
            return Err(TarballError::EntryTooLarge { path: raw_path, limit: limits.max_entry });
        }
        let mut body = Vec::new();
        (&mut entry).take(limits.max_entry + 1).read_to_end(&mut body).map_err(corrupt)?;
        if body.len() as u64 > limits.max_entry {
            return Err(TarballError::EntryTooLarge { path: raw_path, limit: limits.max_entry });
        }
        total += body.len() as u64;
        if total > limits.max_total {
            return Err(TarballError::TotalTooLarge(limits.max_total));
        }
        let parts: Vec<&str> = raw_path.split('/').collect();
        match parts.as_slice() {
            ["metadata", "version"] => version = Some(String::from_utf8_lossy(&body).trim().to_owned()),
            ["resources", _, "namespaces", _, _] | ["resources", _, "cluster", _] => {
                let bad = |reason: String| TarballError::BadItem { path: raw_path.clone(), reason };
                let object = serde_json::from_slice(&body).map_err(|e| bad(e.to_string()))?;
                let item = Item::from_object(object).map_err(|e| bad(e.0))?;
                if item_path(&item, None) != raw_path {
                    return Err(bad(format!("it holds {} {}, which belongs elsewhere", item.kind, item.qualified_name())));
                }
                if !visit(item) {
                    break;
                }
            }
            // Versioned copies (`<version>-preferredversion`, other versions): the unversioned
            // copy is the one restored.
            _ => {}
        }
    }
    let version = version.ok_or_else(|| TarballError::Version("no metadata/version".into()))?;
    if !version.starts_with("1.") {
        return Err(TarballError::Version(format!("format version {version:?}, which this Coffer cannot read")));
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_velero_paths_and_round_trip() {
        let pod = Item::from_object(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bar", "namespace": "foo"}})).unwrap();
        let deploy = Item::from_object(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "raz", "namespace": "zoo"}})).unwrap();
        let pv = Item::from_object(json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv01"}})).unwrap();
        let mut tarball = Vec::new();
        write_tarball([&pod, &deploy, &pv], &mut tarball).unwrap();
        let mut names: Vec<String> = tar::Archive::new(GzDecoder::new(&tarball[..]))
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "metadata/version",
                "resources/deployments.apps/namespaces/zoo/raz.json",
                "resources/deployments.apps/v1-preferredversion/namespaces/zoo/raz.json",
                "resources/persistentvolumes/cluster/pv01.json",
                "resources/persistentvolumes/v1-preferredversion/cluster/pv01.json",
                "resources/pods/namespaces/foo/bar.json",
                "resources/pods/v1-preferredversion/namespaces/foo/bar.json",
            ]
        );
        let contents = read_tarball(&tarball[..], Limits::default()).unwrap();
        assert_eq!(contents.version, "1.1.0");
        assert_eq!(contents.items, [pod, deploy, pv]);
    }
}
