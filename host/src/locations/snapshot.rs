//! Volume snapshot locations.

use std::collections::BTreeMap;

use crate::coffer::Coffer;
use crate::model::{
    API_VERSION, LocationStatus, ObjectMeta, SecretKeySelector, VolumeSnapshotLocation,
    VolumeSnapshotLocationSpec,
};
use crate::object::{ObjectError, validate_name};
use crate::sandbox::{ProviderKind, VolumeSnapshotterHandle, grants_for};

use super::location::{self, Location};
use super::directories::tenant_paths;
use super::location_grants;
use super::{LocationError, delete_named, get_named};
use crate::state::expect_version;

const KIND: &str = VolumeSnapshotLocation::NOUN;

/// What `snapshot-location create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewVolumeSnapshotLocation {
    /// Name.
    pub name: String,
    /// Provider name.
    pub provider: String,
    /// Provider config.
    pub config: BTreeMap<String, String>,
    /// Its own credential.
    pub credential: Option<SecretKeySelector>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

impl NewVolumeSnapshotLocation {
    /// The request a VolumeSnapshotLocation object (as an API client sends it) makes; its
    /// namespace and status are ignored.
    pub fn from_object(vsl: VolumeSnapshotLocation) -> Self {
        NewVolumeSnapshotLocation {
            name: vsl.metadata.name,
            provider: vsl.spec.provider,
            config: vsl.spec.config,
            credential: vsl.spec.credential,
            labels: vsl.metadata.labels,
        }
    }

    /// The object this describes, with its fields checked.
    pub fn build(self, namespace: &str) -> Result<VolumeSnapshotLocation, LocationError> {
        validate_name(KIND, &self.name)?;
        if self.provider.is_empty() {
            return Err(LocationError::InvalidField { field: "spec.provider".into(), reason: "is required".into() });
        }
        let mut metadata = ObjectMeta::new(namespace, &self.name);
        metadata.labels = self.labels;
        Ok(VolumeSnapshotLocation {
            api_version: API_VERSION.into(),
            kind: "VolumeSnapshotLocation".into(),
            metadata,
            spec: VolumeSnapshotLocationSpec { provider: self.provider, config: self.config, credential: self.credential },
            status: LocationStatus::default(),
        })
    }
}

/// Creates a location after checking it (see [`location::create`]). Velero never sets a
/// VSL's phase; Coffer does, so that a bad location shows before a backup needs it.
pub async fn create_volume_snapshot_location(
    coffer: &Coffer,
    namespace: &str,
    new: NewVolumeSnapshotLocation,
) -> Result<VolumeSnapshotLocation, LocationError> {
    location::create(coffer, new.build(namespace)?).await
}

/// Changes a location's credential (if it is still at `expected`, when that is given), and
/// checks it at once.
pub async fn set_volume_snapshot_location(
    coffer: &Coffer,
    namespace: &str,
    name: &str,
    credential: SecretKeySelector,
    expected: Option<&str>,
) -> Result<VolumeSnapshotLocation, LocationError> {
    let vsl = coffer.state.write(|txn| {
        let mut vsl = txn
            .get::<VolumeSnapshotLocation>(namespace, name)?
            .ok_or_else(|| ObjectError::not_found(KIND, name))?;
        expect_version(&vsl, expected)?;
        location::set_credential(txn, coffer, &mut vsl, credential.clone())?;
        txn.put(&mut vsl)?;
        Ok::<_, LocationError>(vsl)
    })?;
    location::record_validation(coffer, vsl).await
}

/// Deletes a location. Snapshots already taken are not touched.
pub fn delete_volume_snapshot_location(coffer: &Coffer, namespace: &str, name: &str) -> Result<(), LocationError> {
    delete_named::<VolumeSnapshotLocation>(coffer, namespace, name, KIND)
}

/// The named locations, or all when `names` is empty.
pub fn get_volume_snapshot_locations(
    coffer: &Coffer,
    namespace: &str,
    names: &[String],
) -> Result<Vec<VolumeSnapshotLocation>, LocationError> {
    get_named(coffer, namespace, names, KIND)
}

/// The location's label and the plugin serving it.
fn plugin_of(coffer: &Coffer, vsl: &VolumeSnapshotLocation) -> Result<(String, std::sync::Arc<crate::plugins::Plugin>), LocationError> {
    let location = location::label(vsl);
    let plugin = coffer
        .registry
        .resolve(&vsl.spec.provider, ProviderKind::VolumeSnapshotter)
        .map_err(|error| LocationError::Plugin { location: location.clone(), error })?;
    Ok((location, plugin))
}

/// A handle on the location's volume snapshotter, with its credential and only its grants.
pub async fn volume_snapshotter_for(
    coffer: &Coffer,
    vsl: &VolumeSnapshotLocation,
) -> Result<VolumeSnapshotterHandle, LocationError> {
    let (location, plugin) = plugin_of(coffer, vsl)?;
    let grants = location_grants(coffer, &vsl.metadata.namespace, &location, &plugin, vsl.spec.config.clone(), vsl.spec.credential.as_ref())?;
    Ok(VolumeSnapshotterHandle::new(&coffer.sandbox, &plugin.component, grants).await?)
}

/// A handle on `vsl`'s volume snapshotter that copies snapshots taken through `source`, a
/// location of the same provider and tenant: `vsl`'s own grants, plus `source`'s directories
/// read-only (see [`Grants::with_source_directories`](crate::sandbox::Grants::with_source_directories)).
/// Nothing else of the source, not its credential nor its endpoints, is granted.
pub async fn volume_snapshot_copier_for(
    coffer: &Coffer,
    vsl: &VolumeSnapshotLocation,
    source: &VolumeSnapshotLocation,
) -> Result<VolumeSnapshotterHandle, LocationError> {
    let (location, plugin) = plugin_of(coffer, vsl)?;
    let paths = tenant_paths(coffer, &source.metadata.namespace)?;
    let source_grants = grants_for(&location::label(source), plugin.component.manifest(), source.spec.config.clone(), None, &paths)?;
    let grants = location_grants(coffer, &vsl.metadata.namespace, &location, &plugin, vsl.spec.config.clone(), vsl.spec.credential.as_ref())?;
    let grants = grants.with_source_directories(&source_grants);
    Ok(VolumeSnapshotterHandle::new(&coffer.sandbox, &plugin.component, grants).await?)
}
