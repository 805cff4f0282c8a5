//! The typed handle of a volume-snapshotter provider instance.

use super::bindings::{Versioned, VolumeSnapshotterWorld};
use super::component::{Pre, ProviderComponent};
use super::error::{ErrorKind, ProviderError};
use super::grants::Grants;
use super::slot::{Slot, call_export, wrong_kind};
use super::{ProviderKind, Sandbox};

/// A volume's type and IOPS, as recorded with its snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// The provider's volume type.
    pub volume_type: String,
    /// Provisioned IOPS, where the type has them.
    pub iops: Option<i64>,
}

/// A snapshot copied into a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotCopy {
    /// The copy's snapshot ID in its location.
    pub snapshot_id: String,
    /// The zone in which volumes are made from the copy.
    pub volume_az: String,
}

/// A volume snapshotter serving one location.
pub struct VolumeSnapshotterHandle {
    slot: Slot<VolumeSnapshotterWorld>,
}

impl VolumeSnapshotterHandle {
    /// Instantiates `component` with `grants` and initialises it.
    pub async fn new(sandbox: &Sandbox, component: &ProviderComponent, grants: Grants) -> Result<Self, ProviderError> {
        let Pre::VolumeSnapshotter(pre) = &component.pre else {
            return Err(wrong_kind(component, &grants, ProviderKind::VolumeSnapshotter));
        };
        Ok(VolumeSnapshotterHandle { slot: Slot::new(sandbox.clone(), pre.clone(), grants).await? })
    }

    /// The location this handle serves.
    pub fn location(&self) -> &str {
        self.slot.location()
    }

    /// The contract version the provider was built against.
    pub fn contract(&self) -> &'static str {
        self.slot.contract()
    }

    /// Whether the provider has the calls contract `version` added (e.g. `"0.3.0"`).
    pub fn has(&self, version: &str) -> bool {
        self.slot.has(version)
    }

    /// Creates a volume from a snapshot; returns the new volume's ID.
    pub async fn create_volume_from_snapshot(
        &mut self,
        snapshot_id: &str,
        volume_type: &str,
        volume_az: &str,
        iops: Option<i64>,
    ) -> Result<String, ProviderError> {
        call_export!(self.slot, coffer_provider_volume_snapshotter.call_create_volume_from_snapshot(snapshot_id, volume_type, volume_az, iops))
    }

    /// The volume ID of PersistentVolume `pv` (JSON), or `None` if this provider does not handle it.
    pub async fn get_volume_id(&mut self, pv: &str) -> Result<Option<String>, ProviderError> {
        call_export!(self.slot, coffer_provider_volume_snapshotter.call_get_volume_id(pv))
    }

    /// `pv` rewritten to refer to `volume_id`.
    pub async fn set_volume_id(&mut self, pv: &str, volume_id: &str) -> Result<String, ProviderError> {
        call_export!(self.slot, coffer_provider_volume_snapshotter.call_set_volume_id(pv, volume_id))
    }

    /// The type and IOPS of a volume.
    pub async fn get_volume_info(&mut self, volume_id: &str, volume_az: &str) -> Result<VolumeInfo, ProviderError> {
        call_export!(self.slot, "get_volume_info", |bindings, store| async move {
            Ok(match bindings {
                Versioned::Current(b) => b.coffer_provider_volume_snapshotter().call_get_volume_info(store, volume_id, volume_az).await?
                    .map(|info| VolumeInfo { volume_type: info.volume_type, iops: info.iops }),
                Versioned::V0_2(b) => b.coffer_provider_volume_snapshotter().call_get_volume_info(store, volume_id, volume_az).await?
                    .map(|info| VolumeInfo { volume_type: info.volume_type, iops: info.iops }),
                Versioned::V0_1(b) => b.coffer_provider_volume_snapshotter().call_get_volume_info(store, volume_id, volume_az).await?
                    .map(|info| VolumeInfo { volume_type: info.volume_type, iops: info.iops }),
            })
        })
    }

    /// Snapshots a volume; returns the snapshot ID.
    pub async fn create_snapshot(&mut self, volume_id: &str, volume_az: &str, tags: &[(String, String)]) -> Result<String, ProviderError> {
        call_export!(self.slot, coffer_provider_volume_snapshotter.call_create_snapshot(volume_id, volume_az, tags))
    }

    /// Deletes a snapshot; a missing one is not an error.
    pub async fn delete_snapshot(&mut self, snapshot_id: &str) -> Result<(), ProviderError> {
        call_export!(self.slot, coffer_provider_volume_snapshotter.call_delete_snapshot(snapshot_id))
    }

    /// Copies `snapshot_id`, taken through a location of this provider with config `source`,
    /// into this location. The handle must have been made with the source's directories
    /// ([`Grants::with_source_directories`](super::Grants::with_source_directories)).
    pub async fn copy_snapshot(
        &mut self,
        snapshot_id: &str,
        source: &Vec<(String, String)>,
        volume_az: &str,
        tags: &[(String, String)],
    ) -> Result<SnapshotCopy, ProviderError> {
        if !self.has("0.3.0") {
            let kind = ErrorKind::OlderContract { contract: self.contract(), call: "copy-snapshot", added: "0.3.0" };
            return Err(ProviderError { location: self.location().to_owned(), kind });
        }
        call_export!(self.slot, "copy_snapshot", |bindings, store| async move {
            match bindings {
                Versioned::Current(b) => Ok(b
                    .coffer_provider_volume_snapshotter()
                    .call_copy_snapshot(store, snapshot_id, source, volume_az, tags)
                    .await?
                    .map(|copy| SnapshotCopy { snapshot_id: copy.snapshot_id, volume_az: copy.volume_az })),
                Versioned::V0_2(_) | Versioned::V0_1(_) => unreachable!("refused above"),
            }
        })
    }
}
