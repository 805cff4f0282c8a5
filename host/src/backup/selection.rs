//! Which locations a backup uses, by Velero's rules (`backup_controller.go`:
//! `prepareBackupRequest`, `validateAndGetSnapshotLocations`), with Velero's messages.

use std::collections::BTreeMap;

use crate::model::{AccessMode, BackupSpec, BackupStorageLocation, LocationPhase, VolumeSnapshotLocation};
use crate::keyring::Keyring;
use crate::locations::{LocationError, encryption_key_in};
use crate::state::{StateError, Txn};

/// The name Velero's server falls back to when no location is marked default
/// (`--default-backup-storage-location`).
pub const SERVER_DEFAULT_BSL: &str = "default";

/// The locations a backup resolved to.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The one backup storage location.
    pub storage_location: BackupStorageLocation,
    /// At most one volume snapshot location per provider, ordered by provider.
    pub snapshot_locations: Vec<VolumeSnapshotLocation>,
    /// The other backup storage locations that receive a copy (`spec.copyTo`), in order.
    pub copy_locations: Vec<BackupStorageLocation>,
    /// The volume snapshot locations that receive a copy of each snapshot taken through a
    /// location of their provider (`spec.copySnapshotsTo`), in order.
    pub snapshot_copy_locations: Vec<VolumeSnapshotLocation>,
}

/// Resolves `spec`'s locations in `namespace`. `default_vsls` is the server's
/// `--default-volume-snapshot-locations` (provider → name, providers compared verbatim).
/// Every problem is returned, as Velero collects them into `validationErrors`.
pub fn resolve_locations(
    txn: &Txn<'_>,
    namespace: &str,
    spec: &BackupSpec,
    default_vsls: &BTreeMap<String, String>,
) -> Result<Result<Resolved, Vec<String>>, StateError> {
    let mut errors = Vec::new();
    let storage_location = resolve_storage_location(txn, namespace, spec, &mut errors)?;
    let snapshot_locations = resolve_snapshot_locations(txn, namespace, spec, default_vsls, &mut errors)?;
    let main = storage_location.as_ref().map(|b| b.metadata.name.as_str());
    let copy_locations = resolve_copy_locations(txn, namespace, spec, main, &mut errors)?;
    let snapshot_copy_locations = resolve_snapshot_copy_locations(txn, namespace, spec, &snapshot_locations, &mut errors)?;
    Ok(match storage_location {
        Some(storage_location) if errors.is_empty() => {
            Ok(Resolved { storage_location, snapshot_locations, copy_locations, snapshot_copy_locations })
        }
        _ => Err(errors),
    })
}

fn resolve_storage_location(
    txn: &Txn<'_>,
    namespace: &str,
    spec: &BackupSpec,
    errors: &mut Vec<String>,
) -> Result<Option<BackupStorageLocation>, StateError> {
    let (name, chosen_by_server) = if spec.storage_location.is_empty() {
        let default = txn.list::<BackupStorageLocation>(namespace)?.into_iter().find(|b| b.spec.default);
        (default.map_or_else(|| SERVER_DEFAULT_BSL.to_owned(), |b| b.metadata.name), true)
    } else {
        (spec.storage_location.clone(), false)
    };
    let Some(bsl) = txn.get::<BackupStorageLocation>(namespace, &name)? else {
        let not_found = format!("backupstoragelocations.velero.io {name:?} not found");
        errors.push(if chosen_by_server {
            format!(
                "an existing backup storage location was not specified at backup creation time and the server default {name} does not exist. Please address this issue (see `coffer backup-location -h` for options) and create a new backup. Error: {not_found}"
            )
        } else {
            format!(
                "an existing backup storage location was not specified at backup creation time and the default {name} was not found. Please address this issue (see `coffer backup-location -h` for options) and create a new backup. Error: {not_found}"
            )
        });
        return Ok(None);
    };
    if bsl.spec.access_mode == AccessMode::ReadOnly {
        errors.push(format!("backup can't be created because backup storage location {name} is currently in read-only mode"));
    }
    if bsl.status.phase == Some(LocationPhase::Unavailable) {
        errors.push(format!("backup can't be created because BackupStorageLocation {name} is in Unavailable status."));
    }
    Ok(Some(bsl))
}

/// Each location of `spec.copyTo` must exist, be another than the backup's own, appear once,
/// and be writable and not Unavailable, as the backup's own must.
fn resolve_copy_locations(
    txn: &Txn<'_>,
    namespace: &str,
    spec: &BackupSpec,
    main: Option<&str>,
    errors: &mut Vec<String>,
) -> Result<Vec<BackupStorageLocation>, StateError> {
    let mut copies: Vec<BackupStorageLocation> = Vec::new();
    for name in &spec.copy_to {
        if main == Some(name.as_str()) {
            errors.push(format!("backup storage location {name} is the backup's own: it cannot also receive a copy"));
            continue;
        }
        if copies.iter().any(|c| c.metadata.name == *name) {
            errors.push(format!("backup storage location {name} is named more than once to copy to"));
            continue;
        }
        let Some(bsl) = txn.get::<BackupStorageLocation>(namespace, name)? else {
            errors.push(format!("backup storage location {name} to copy to was not found: backupstoragelocations.velero.io {name:?} not found"));
            continue;
        };
        if bsl.spec.access_mode == AccessMode::ReadOnly {
            errors.push(format!("backup can't be copied to backup storage location {name} because it is currently in read-only mode"));
        }
        if bsl.status.phase == Some(LocationPhase::Unavailable) {
            errors.push(format!("backup can't be copied to backup storage location {name} because it is in Unavailable status."));
        }
        copies.push(bsl);
    }
    Ok(copies)
}

/// A backup and its copies are encrypted alike: when the backup's own location has an
/// encryption key, every copy's must hold the identity of its recipient (the copies carry the
/// same ciphertext); when it has none, no copy's location may have one. Each problem names the
/// location.
pub fn encryption_errors(txn: &Txn<'_>, keyring: &Keyring, resolved: &Resolved) -> Result<Vec<String>, StateError> {
    let mut errors = Vec::new();
    let key_of = |bsl: &BackupStorageLocation, errors: &mut Vec<String>| match encryption_key_in(txn, keyring, bsl) {
        Ok(key) => Ok(key),
        Err(LocationError::State(e)) => Err(e),
        Err(e) => {
            errors.push(format!("backup storage location {}: {e}", bsl.metadata.name));
            Ok(None)
        }
    };
    let main = &resolved.storage_location;
    let own = key_of(main, &mut errors)?;
    for copy in &resolved.copy_locations {
        let name = &copy.metadata.name;
        match (&own, key_of(copy, &mut errors)?) {
            (None, None) => {}
            (Some(own), None) if copy.spec.encryption_key.is_none() => errors.push(format!(
                "backup storage location {name} has no encryption key, and the backup is encrypted to recipient {}: give {name} a key holding that identity to receive a copy",
                own.recipient()
            )),
            (Some(own), Some(key)) if !key.opens(own.recipient()) => errors.push(format!(
                "the encryption key of backup storage location {name} does not hold the identity of recipient {} that the backup is encrypted to",
                own.recipient()
            )),
            (None, Some(_)) => errors.push(format!(
                "backup storage location {name} encrypts what it holds, and the backup's own location {} does not: give {} an encryption key too",
                main.metadata.name, main.metadata.name
            )),
            _ => {}
        }
    }
    Ok(errors)
}

/// Each location of `spec.copySnapshotsTo` must exist, appear once, not be one the backup
/// takes its snapshots through, share its provider with one that is, and not be Unavailable.
fn resolve_snapshot_copy_locations(
    txn: &Txn<'_>,
    namespace: &str,
    spec: &BackupSpec,
    snapshot_locations: &[VolumeSnapshotLocation],
    errors: &mut Vec<String>,
) -> Result<Vec<VolumeSnapshotLocation>, StateError> {
    let mut copies: Vec<VolumeSnapshotLocation> = Vec::new();
    for name in &spec.copy_snapshots_to {
        if copies.iter().any(|c| c.metadata.name == *name) {
            errors.push(format!("volume snapshot location {name} is named more than once to copy snapshots to"));
            continue;
        }
        if snapshot_locations.iter().any(|v| v.metadata.name == *name) {
            errors.push(format!("volume snapshot location {name} takes the backup's snapshots: it cannot also receive copies of them"));
            continue;
        }
        let Some(vsl) = txn.get::<VolumeSnapshotLocation>(namespace, name)? else {
            errors.push(format!(
                "volume snapshot location {name} to copy snapshots to was not found: volumesnapshotlocations.velero.io {name:?} not found"
            ));
            continue;
        };
        let provider = &vsl.spec.provider;
        if !snapshot_locations.iter().any(|v| v.spec.provider == *provider) {
            errors.push(format!(
                "volume snapshot location {name} cannot receive copies: the backup takes no snapshots through a location of its provider {provider} (name one with --volume-snapshot-locations)"
            ));
        }
        if vsl.status.phase == Some(LocationPhase::Unavailable) {
            errors.push(format!("snapshots can't be copied to volume snapshot location {name} because it is in Unavailable status."));
        }
        copies.push(vsl);
    }
    Ok(copies)
}

fn resolve_snapshot_locations(
    txn: &Txn<'_>,
    namespace: &str,
    spec: &BackupSpec,
    default_vsls: &BTreeMap<String, String>,
    errors: &mut Vec<String>,
) -> Result<Vec<VolumeSnapshotLocation>, StateError> {
    // 1 and 2: every named location exists, and at most one per provider.
    let mut chosen: BTreeMap<String, VolumeSnapshotLocation> = BTreeMap::new();
    let before = errors.len();
    for name in &spec.volume_snapshot_locations {
        let Some(vsl) = txn.get::<VolumeSnapshotLocation>(namespace, name)? else {
            errors.push(format!(
                "a VolumeSnapshotLocation CRD for the location {name} with the name specified in the backup spec needs to be created before this snapshot can be executed. Error: volumesnapshotlocations.velero.io {name:?} not found"
            ));
            continue;
        };
        let provider = vsl.spec.provider.clone();
        if let Some(first) = chosen.get(&provider) {
            errors.push(format!(
                "more than one VolumeSnapshotLocation name specified for provider {provider}: {name}; unexpected name was {}",
                first.metadata.name
            ));
            continue;
        }
        chosen.insert(provider, vsl);
    }
    if errors.len() > before {
        return Ok(Vec::new());
    }
    // 3: each other provider: its only location, or the server default, or an error.
    let mut by_provider: BTreeMap<String, Vec<VolumeSnapshotLocation>> = BTreeMap::new();
    for vsl in txn.list::<VolumeSnapshotLocation>(namespace)? {
        by_provider.entry(vsl.spec.provider.clone()).or_default().push(vsl);
    }
    for (provider, mut locations) in by_provider {
        if chosen.contains_key(&provider) {
            continue;
        }
        if locations.len() == 1 {
            chosen.insert(provider, locations.remove(0));
            continue;
        }
        let Some(default) = default_vsls.get(&provider) else {
            errors.push(format!(
                "provider {provider} has more than one possible volume snapshot location, and none were specified explicitly or as a default"
            ));
            continue;
        };
        match locations.into_iter().find(|v| &v.metadata.name == default) {
            Some(vsl) => {
                chosen.insert(provider, vsl);
            }
            None => errors.push(format!(
                "error getting volume snapshot location named {default}: volumesnapshotlocations.velero.io {default:?} not found"
            )),
        }
    }
    Ok(chosen.into_values().collect())
}

/// Parses `--default-volume-snapshot-locations provider1:name1,provider2:name2`.
pub fn parse_default_snapshot_locations(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (provider, name) = pair
            .split_once(':')
            .filter(|(p, n)| !p.is_empty() && !n.is_empty())
            .ok_or_else(|| format!("{pair:?} is not provider:name"))?;
        if out.insert(provider.to_owned(), name.to_owned()).is_some() {
            return Err(format!("provider {provider:?} is given more than once"));
        }
    }
    Ok(out)
}
