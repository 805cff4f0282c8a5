//! Native volume snapshot records (`-volumesnapshots.json.gz`, Velero's `volume.Snapshot`).

use serde::{Deserialize, Serialize};

/// What was snapshotted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotSpec {
    /// The backup.
    pub backup_name: String,
    /// The backup's UID (Coffer: its namespace/name).
    #[serde(default)]
    pub backup_uid: String,
    /// The volume snapshot location, by name.
    pub location: String,
    /// The PersistentVolume.
    pub persistent_volume_name: String,
    /// The provider's volume ID.
    #[serde(rename = "providerVolumeID")]
    pub provider_volume_id: String,
    /// The volume type.
    pub volume_type: String,
    /// The availability zone.
    #[serde(default, skip_serializing_if = "String::is_empty", rename = "volumeAZ")]
    pub volume_az: String,
    /// Provisioned IOPS.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "volumeIOPS")]
    pub volume_iops: Option<i64>,
}

/// How the snapshot went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotStatus {
    /// The provider's snapshot ID.
    #[serde(default, skip_serializing_if = "String::is_empty", rename = "providerSnapshotID")]
    pub provider_snapshot_id: String,
    /// `New`, `Completed` or `Failed`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phase: String,
}

/// One native volume snapshot of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VolumeSnapshot {
    /// What.
    pub spec: SnapshotSpec,
    /// How it went.
    pub status: SnapshotStatus,
}
