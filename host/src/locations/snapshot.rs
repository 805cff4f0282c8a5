//! Volume snapshot locations.

use std::collections::BTreeMap;

use crate::coffer::Coffer;
use crate::model::{
    API_VERSION, LocationPhase, LocationStatus, ObjectMeta, SecretKeySelector, VolumeSnapshotLocation,
    VolumeSnapshotLocationSpec, now,
};
use crate::object::{ObjectError, validate_name};
use crate::sandbox::{ProviderKind, VolumeSnapshotterHandle};

use super::directories::check_apart;
use super::location_grants;
use super::credentials::resolve_credential;
use super::{LocationError, Selection, delete_selected, get_named};

const KIND: &str = "volume snapshot location";

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

fn label(vsl: &VolumeSnapshotLocation) -> String {
    format!("snapshot-location {:?}", vsl.metadata.name)
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

/// Creates a location after checking that its provider initialises with its config and
/// credential. A wrong definition is refused; an unreachable provider is recorded as phase
/// Unavailable (Velero never sets a VSL's phase; Coffer does, so that a bad location shows
/// before a backup needs it).
pub async fn create_volume_snapshot_location(
    coffer: &Coffer,
    namespace: &str,
    new: NewVolumeSnapshotLocation,
) -> Result<VolumeSnapshotLocation, LocationError> {
    let mut vsl = new.build(namespace)?;
    let name = vsl.metadata.name.clone();
    let exists = |txn: &crate::state::Txn<'_>| -> Result<(), LocationError> {
        match txn.get::<VolumeSnapshotLocation>(namespace, &name)? {
            Some(_) => Err(ObjectError::already_exists(KIND, &name).into()),
            None => Ok(()),
        }
    };
    exists(&coffer.state.read()?)?;
    check_apart(coffer, namespace, &label(&vsl), &vsl.spec.provider, ProviderKind::VolumeSnapshotter, &vsl.spec.config)?;
    match volume_snapshotter_for(coffer, &vsl).await.map(drop) {
        Err(e) if e.is_definition_error() => return Err(e),
        outcome => set_status(&mut vsl, outcome),
    }
    coffer.state.write(|txn| {
        exists(txn)?;
        Ok::<_, LocationError>(txn.put(&vsl)?)
    })?;
    Ok(vsl)
}

/// Changes a location's credential, and checks it at once.
pub async fn set_volume_snapshot_location(
    coffer: &Coffer,
    namespace: &str,
    name: &str,
    credential: SecretKeySelector,
) -> Result<VolumeSnapshotLocation, LocationError> {
    let vsl = coffer.state.write(|txn| {
        let mut vsl = txn
            .get::<VolumeSnapshotLocation>(namespace, name)?
            .ok_or_else(|| ObjectError::not_found(KIND, name))?;
        resolve_credential(txn, &coffer.keyring, namespace, &label(&vsl), Some(&credential))?;
        vsl.spec.credential = Some(credential.clone());
        txn.put(&vsl)?;
        Ok::<_, LocationError>(vsl)
    })?;
    record_validation(coffer, vsl).await
}

/// Deletes locations; returns the names deleted. Snapshots already taken are not touched.
pub fn delete_volume_snapshot_locations(
    coffer: &Coffer,
    namespace: &str,
    selection: &Selection,
) -> Result<Vec<String>, LocationError> {
    delete_selected::<VolumeSnapshotLocation>(coffer, namespace, selection, KIND)
}

/// The named locations, or all when `names` is empty.
pub fn get_volume_snapshot_locations(
    coffer: &Coffer,
    namespace: &str,
    names: &[String],
) -> Result<Vec<VolumeSnapshotLocation>, LocationError> {
    get_named(coffer, namespace, names, KIND)
}

/// A handle on the location's volume snapshotter, with its credential and only its grants.
pub async fn volume_snapshotter_for(
    coffer: &Coffer,
    vsl: &VolumeSnapshotLocation,
) -> Result<VolumeSnapshotterHandle, LocationError> {
    let location = label(vsl);
    let plugin = coffer
        .registry
        .resolve(&vsl.spec.provider, ProviderKind::VolumeSnapshotter)
        .map_err(|error| LocationError::Plugin { location: location.clone(), error })?;
    let grants = location_grants(coffer, &vsl.metadata.namespace, &location, plugin, vsl.spec.config.clone(), vsl.spec.credential.as_ref())?;
    Ok(VolumeSnapshotterHandle::new(&coffer.sandbox, &plugin.component, grants).await?)
}

/// Records a check's outcome in `vsl`'s status.
fn set_status(vsl: &mut VolumeSnapshotLocation, outcome: Result<(), LocationError>) {
    let (phase, message) = match outcome {
        Ok(()) => (LocationPhase::Available, String::new()),
        Err(e) => (
            LocationPhase::Unavailable,
            format!("VolumeSnapshotLocation {:?} is unavailable: {}", vsl.metadata.name, e.reason()),
        ),
    };
    vsl.status.phase = Some(phase);
    vsl.status.message = message;
    vsl.status.last_validation_time = Some(now());
}

async fn record_validation(coffer: &Coffer, mut vsl: VolumeSnapshotLocation) -> Result<VolumeSnapshotLocation, LocationError> {
    let outcome = volume_snapshotter_for(coffer, &vsl).await.map(drop);
    set_status(&mut vsl, outcome);
    coffer.state.write(|txn| {
        if let Some(mut stored) = txn.get::<VolumeSnapshotLocation>(&vsl.metadata.namespace, &vsl.metadata.name)? {
            stored.status = vsl.status.clone();
            txn.put(&stored)?;
            vsl = stored;
        }
        Ok::<_, LocationError>(())
    })?;
    Ok(vsl)
}
