//! The directories a tenant's locations use on the host, opened beneath the tenant's tree, so
//! that restore targets and other locations can be kept apart from them.

use std::path::Path;

use cap_std::fs::Dir;

use super::LocationError;
use crate::coffer::Coffer;
use crate::confine::{PathRoot, nested};
use crate::model::{BackupStorageLocation, VolumeSnapshotLocation};
use crate::sandbox::ProviderKind;

/// One directory of one location.
pub struct LocationDirectory {
    /// The location, e.g. `backup-location "default"`.
    pub location: String,
    /// The config key naming the directory.
    pub key: String,
    /// The directory as configured.
    pub value: String,
    /// The directory, open.
    pub dir: Dir,
}

/// The directories `provider` (of `kind`) takes from `config`, each opened beneath `paths`;
/// those that cannot be opened (or an unknown provider) are left out.
fn directories_of(coffer: &Coffer, paths: &PathRoot, location: String, provider: &str, kind: ProviderKind, config: &std::collections::BTreeMap<String, String>) -> Vec<LocationDirectory> {
    let Ok(plugin) = coffer.registry.resolve(provider, kind) else { return Vec::new() };
    plugin
        .component
        .manifest()
        .directories
        .iter()
        .filter_map(|request| {
            let value = config.get(&request.config_key).filter(|v| !v.is_empty())?;
            let dir = paths.open_dir(&request.config_key, Path::new(value)).ok()?;
            Some(LocationDirectory { location: location.clone(), key: request.config_key.clone(), value: value.clone(), dir })
        })
        .collect()
}

/// Where the paths of `namespace`'s locations resolve.
pub(super) fn tenant_paths(coffer: &Coffer, namespace: &str) -> Result<PathRoot, LocationError> {
    Ok(coffer.tenant(namespace)?.paths().clone())
}

/// Every directory of every location in `namespace`.
pub fn location_directories(coffer: &Coffer, namespace: &str) -> Result<Vec<LocationDirectory>, LocationError> {
    directories_in(coffer, &tenant_paths(coffer, namespace)?, namespace)
}

/// Every directory of every location in `namespace`, opened beneath `paths`.
fn directories_in(coffer: &Coffer, paths: &PathRoot, namespace: &str) -> Result<Vec<LocationDirectory>, LocationError> {
    let txn = coffer.state.read()?;
    let mut out = Vec::new();
    for bsl in txn.list::<BackupStorageLocation>(namespace)? {
        let location = format!("backup-location {:?}", bsl.metadata.name);
        out.extend(directories_of(coffer, paths, location, &bsl.spec.provider, ProviderKind::ObjectStore, &bsl.spec.config));
    }
    for vsl in txn.list::<VolumeSnapshotLocation>(namespace)? {
        let location = format!("snapshot-location {:?}", vsl.metadata.name);
        out.extend(directories_of(coffer, paths, location, &vsl.spec.provider, ProviderKind::VolumeSnapshotter, &vsl.spec.config));
    }
    Ok(out)
}

/// Refuses a new location (`location`, of `kind`) whose directories nest with another
/// location's: one containing the other would let one provider reach into data the other
/// keeps. Locations may share one directory (as several buckets share one server), but not
/// nest.
pub(super) fn check_apart(
    coffer: &Coffer,
    namespace: &str,
    location: &str,
    provider: &str,
    kind: ProviderKind,
    config: &std::collections::BTreeMap<String, String>,
) -> Result<(), LocationError> {
    let paths = tenant_paths(coffer, namespace)?;
    let mine = directories_of(coffer, &paths, location.to_owned(), provider, kind, config);
    if mine.is_empty() {
        return Ok(());
    }
    let io = |e: std::io::Error| LocationError::InvalidField { field: location.to_owned(), reason: e.to_string() };
    for other in directories_in(coffer, &paths, namespace)?.iter().filter(|o| o.location != location) {
        for own in &mine {
            if nested(&own.dir, &other.dir).map_err(io)? {
                return Err(LocationError::InvalidField {
                    field: format!("{location}: config key {:?}", own.key),
                    reason: format!(
                        "{} nests with {}, the directory {:?} of {}; locations may share a directory but not nest",
                        own.value, other.value, other.key, other.location
                    ),
                });
            }
        }
    }
    Ok(())
}
