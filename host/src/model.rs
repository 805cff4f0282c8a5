//! Coffer's objects, shaped as Velero's custom resources (`velero.io/v1`) so that `-o yaml`
//! output and stored documents read like Velero's.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::state::Resource;

/// `apiVersion` of every object.
pub const API_VERSION: &str = "velero.io/v1";

/// The metadata every object has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Name, unique per kind in its namespace.
    pub name: String,
    /// The namespace (tenant); an API client may leave it out (its token decides).
    #[serde(default)]
    pub namespace: String,
    /// When it was created; set by the host on create.
    #[serde(with = "time::serde::rfc3339", default = "now")]
    pub creation_timestamp: OffsetDateTime,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The version of the object the state holds, set by the state on every write (opaque:
    /// compare it only for equality). An update that gives one applies only to that version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
}

impl ObjectMeta {
    /// Metadata for a new object created now.
    pub fn new(namespace: &str, name: &str) -> Self {
        ObjectMeta {
            name: name.into(),
            namespace: namespace.into(),
            creation_timestamp: now(),
            labels: BTreeMap::new(),
            resource_version: String::new(),
        }
    }
}

/// The current time, to the second (as Kubernetes stores timestamps).
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap_or(t)
}

/// A reference to one key of a secret (Kubernetes' `SecretKeySelector`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretKeySelector {
    /// The secret's name.
    pub name: String,
    /// The key within it.
    pub key: String,
}

impl fmt::Display for SecretKeySelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.key)
    }
}

/// Whether backups may be written to a location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum AccessMode {
    /// Backups are written and deleted.
    #[default]
    ReadWrite,
    /// Only read: for restores and sync.
    ReadOnly,
}

impl fmt::Display for AccessMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AccessMode::ReadWrite => "ReadWrite",
            AccessMode::ReadOnly => "ReadOnly",
        })
    }
}

/// A location's validation phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LocationPhase {
    /// The last validation succeeded.
    Available,
    /// The last validation failed; `message` says why.
    Unavailable,
}

impl fmt::Display for LocationPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LocationPhase::Available => "Available",
            LocationPhase::Unavailable => "Unavailable",
        })
    }
}

/// Where a backup storage location keeps its objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStorage {
    /// The bucket.
    pub bucket: String,
    /// A prefix inside the bucket under which everything is kept.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// PEM CA bundle for the provider to trust, base64-encoded as in Velero's CRD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
}

/// A backup storage location's desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageLocationSpec {
    /// The provider, e.g. `aws` or `velero.io/filesystem`.
    pub provider: String,
    /// Bucket, prefix and CA certificate.
    pub object_storage: ObjectStorage,
    /// Provider-specific settings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// The secret key holding this location's credential; the default credential otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<SecretKeySelector>,
    /// Whether backups go here when none is named.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// ReadWrite or ReadOnly.
    #[serde(default)]
    pub access_mode: AccessMode,
    /// How often backups are synced from the bucket (`0s` disables); the server default if unset.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "go_duration::option")]
    pub backup_sync_period: Option<Duration>,
    /// How often the location is validated (`0s` disables); the server default if unset.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "go_duration::option")]
    pub validation_frequency: Option<Duration>,
    /// The secret key holding the age identities every object Coffer writes here is encrypted
    /// with (the first encrypts, all decrypt), except `velero-backup.json` (Coffer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<SecretKeySelector>,
}

/// A location's observed state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LocationStatus {
    /// Available or Unavailable; unset until first validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<LocationPhase>,
    /// When it was last validated.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub last_validation_time: Option<OffsetDateTime>,
    /// Why it is Unavailable.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When backups were last synced from it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub last_synced_time: Option<OffsetDateTime>,
}

/// A BackupStorageLocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageLocation {
    /// `velero.io/v1`.
    pub api_version: String,
    /// `BackupStorageLocation`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// Desired state.
    pub spec: BackupStorageLocationSpec,
    /// Observed state.
    #[serde(default)]
    pub status: LocationStatus,
}

/// A volume snapshot location's desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotLocationSpec {
    /// The provider, e.g. `aws` or `velero.io/local`.
    pub provider: String,
    /// Provider-specific settings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// The secret key holding this location's credential; the default credential otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<SecretKeySelector>,
}

/// A VolumeSnapshotLocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotLocation {
    /// `velero.io/v1`.
    pub api_version: String,
    /// `VolumeSnapshotLocation`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// Desired state.
    pub spec: VolumeSnapshotLocationSpec,
    /// Observed state (Coffer validates snapshot locations too).
    #[serde(default)]
    pub status: LocationStatus,
}

/// A named set of secret values, each encrypted at rest with the data directory's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// `v1`.
    pub api_version: String,
    /// `Secret`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// Key → sealed value (see [`crate::keyring::Keyring`]).
    pub sealed_data: BTreeMap<String, String>,
}

macro_rules! resource {
    ($ty:ty, $kind:literal) => {
        impl Resource for $ty {
            const KIND: &'static str = $kind;
            fn namespace(&self) -> &str {
                &self.metadata.namespace
            }
            fn name(&self) -> &str {
                &self.metadata.name
            }
            fn resource_version(&self) -> Option<&str> {
                Some(&self.metadata.resource_version)
            }
            fn resource_version_mut(&mut self) -> Option<&mut String> {
                Some(&mut self.metadata.resource_version)
            }
        }
    };
}

resource!(BackupStorageLocation, "BackupStorageLocation");
resource!(VolumeSnapshotLocation, "VolumeSnapshotLocation");
resource!(Secret, "Secret");

/// Go's `time.Duration` text form (`1m0s`, `720h0m0s`), as Kubernetes serialises durations.
pub mod go_duration {
    use std::time::Duration;

    /// Formats like Go's `Duration.String()` for whole seconds and milliseconds.
    pub fn format(d: Duration) -> String {
        let total = d.as_secs();
        let millis = d.subsec_millis();
        let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
        let secs = if millis == 0 {
            format!("{s}s")
        } else {
            format!("{s}.{}s", format!("{millis:03}").trim_end_matches('0'))
        };
        match (h, m) {
            (0, 0) if total == 0 && millis > 0 => format!("{millis}ms"),
            (0, 0) => secs,
            (0, _) => format!("{m}m{secs}"),
            _ => format!("{h}h{m}m{secs}"),
        }
    }

    /// The largest duration Go (and so Kubernetes and Velero) can hold: 2562047h47m16.854775807s.
    pub const MAX: Duration = Duration::new(9_223_372_036, 854_775_807);

    /// Parses `1h30m`, `90s`, `1m0s`, `500ms`, `0` (Go syntax; also accepts `1d`), at most
    /// [`MAX`].
    pub fn parse(text: &str) -> Result<Duration, String> {
        if text == "0" {
            return Ok(Duration::ZERO);
        }
        let d = humantime::parse_duration(text).map_err(|e| format!("invalid duration {text:?}: {e}"))?;
        if d > MAX {
            return Err(format!("duration {text:?} is longer than the largest allowed, {}", format(MAX)));
        }
        Ok(d)
    }

    /// Serde for `Option<Duration>` as Go duration text.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use std::time::Duration;

        /// Serialises.
        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_str(&super::format(*d)),
                None => s.serialize_none(),
            }
        }

        /// Deserialises.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Option::<String>::deserialize(d)?.map(|t| super::parse(&t).map_err(serde::de::Error::custom)).transpose()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn formats_like_go() {
            assert_eq!(format(Duration::ZERO), "0s");
            assert_eq!(format(Duration::from_secs(60)), "1m0s");
            assert_eq!(format(Duration::from_secs(720 * 3600)), "720h0m0s");
            assert_eq!(format(Duration::from_secs(90)), "1m30s");
            assert_eq!(format(Duration::from_millis(1500)), "1.5s");
            assert_eq!(format(Duration::from_millis(250)), "250ms");
            assert_eq!(parse("1m0s").unwrap(), Duration::from_secs(60));
            assert_eq!(parse("0s").unwrap(), Duration::ZERO);
            assert_eq!(parse("0").unwrap(), Duration::ZERO);
            assert!(parse("soon").unwrap_err().contains("soon"));
        }
    }
}

/// A label selector (Kubernetes' `LabelSelector`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// `key: value` pairs that must all match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Expressions that must all match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One expression of a [`LabelSelector`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    /// The label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// The values for `In` and `NotIn`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// Which items a backup takes or a restore writes, in the fields of Velero's `BackupSpec`
/// and `RestoreSpec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResourceFilters {
    /// Namespaces to include (`*` for all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_namespaces: Vec<String>,
    /// Namespaces to exclude.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_namespaces: Vec<String>,
    /// Resources to include (`*` for all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_resources: Vec<String>,
    /// Resources to exclude.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_resources: Vec<String>,
    /// Only items with matching labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
}

/// A backup's desired state (the fields of Velero's `BackupSpec` that Coffer uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// Which items it takes.
    #[serde(flatten)]
    pub filters: ResourceFilters,
    /// Whether to snapshot volumes; unset means yes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_volumes: Option<bool>,
    /// Whether every pod volume is backed up with file-system backup unless the pod opts it
    /// out (`backup.velero.io/backup-volumes-excludes`); unset or false means only the volumes
    /// a pod opts in (`backup.velero.io/backup-volumes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_volumes_to_fs_backup: Option<bool>,
    /// How long to keep the backup.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "go_duration::option")]
    pub ttl: Option<Duration>,
    /// The backup storage location.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub storage_location: String,
    /// The volume snapshot locations, at most one per provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_snapshot_locations: Vec<String>,
    /// Other backup storage locations that each receive a copy of the backup, in the same
    /// layout (Coffer's: Velero sends a backup to one location).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copy_to: Vec<String>,
    /// Other volume snapshot locations that each receive a copy of every snapshot taken
    /// through a location of their provider (Coffer's: Velero keeps a snapshot where it was
    /// taken).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copy_snapshots_to: Vec<String>,
}

/// Where a backup or restore is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Accepted, not yet started.
    New,
    /// Refused: see `validationErrors`.
    FailedValidation,
    /// Running.
    InProgress,
    /// Done without errors.
    Completed,
    /// Done, with errors on some items or volumes.
    PartiallyFailed,
    /// Stopped by a fatal error.
    Failed,
    /// Being deleted.
    Deleting,
}

impl Phase {
    /// Whether its work has not ended: `New` or `InProgress`. (A phase not yet set is `New`:
    /// `phase.is_none_or(Phase::is_running)`.)
    pub fn is_running(self) -> bool {
        matches!(self, Phase::New | Phase::InProgress)
    }

    /// Whether a backup in it holds data: `Completed` or `PartiallyFailed`, so it can be
    /// restored, downloaded and described.
    pub fn is_usable(self) -> bool {
        matches!(self, Phase::Completed | Phase::PartiallyFailed)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Items counted during a backup (and reported while a restore runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Items to process.
    #[serde(default)]
    pub total_items: u64,
    /// Items processed so far.
    #[serde(default)]
    pub items_backed_up: u64,
    /// Pod volume data read (or written) so far, while file-system backups (or restores) run;
    /// Coffer's, absent from Velero's record and from the record once the run ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_volume_data: Option<DataProgress>,
}

/// Bytes of pod volume data (Velero's `DataProgress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DataProgress {
    /// Bytes in all, as far as counted.
    pub total_bytes: u64,
    /// Bytes done so far.
    pub bytes_done: u64,
}

impl Progress {
    /// How far along, 0–100 (100 when there is nothing to do).
    pub fn percent(&self) -> u64 {
        (self.items_backed_up * 100).checked_div(self.total_items).unwrap_or(100)
    }

    /// Whether every item and every counted byte of pod volume data is done.
    pub fn all_done(&self) -> bool {
        self.items_backed_up >= self.total_items && self.pod_volume_data.is_none_or(|d| d.bytes_done >= d.total_bytes)
    }
}

/// A backup's observed state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// Deprecated backup version, always 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Format of the tarball (`1.1.0`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub format_version: String,
    /// When it expires.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub expiration: Option<OffsetDateTime>,
    /// The phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Why it failed validation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<String>,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub start_timestamp: Option<OffsetDateTime>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub completion_timestamp: Option<OffsetDateTime>,
    /// Snapshots attempted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub volume_snapshots_attempted: u64,
    /// Snapshots completed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub volume_snapshots_completed: u64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub failure_reason: String,
    /// Error-level log entries.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors: u64,
    /// Warning-level log entries.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warnings: u64,
    /// Items counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// How each copy in another storage location (`spec.copyTo`) came out (Coffer's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<BackupCopy>,
    /// How the backup's objects are encrypted, when its location has an encryption key
    /// (Coffer's): every object but `velero-backup.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<BackupEncryption>,
}

/// How a backup's objects are encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackupEncryption {
    /// The age recipient (`age1…`) they are encrypted to: a key holding its identity reads them.
    pub recipient: String,
}

/// A copy of a backup in another backup storage location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackupCopy {
    /// The location holding it.
    pub storage_location: String,
    /// `Completed`, or `Failed` (then the location holds nothing of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Object metadata with annotations, as backups and restores carry them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupMeta {
    /// Name, namespace, creation time and labels.
    #[serde(flatten)]
    pub meta: ObjectMeta,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A Backup, as stored in `backups/<name>/velero-backup.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    /// `velero.io/v1`.
    pub api_version: String,
    /// `Backup`.
    pub kind: String,
    /// Name, namespace, labels, annotations.
    pub metadata: BackupMeta,
    /// What to back up.
    pub spec: BackupSpec,
    /// How it went.
    #[serde(default)]
    pub status: BackupStatus,
}

/// A restore's desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    /// The backup to restore.
    pub backup_name: String,
    /// Which of its items to write.
    #[serde(flatten)]
    pub filters: ResourceFilters,
    /// Whether to recreate volumes from snapshots; unset means yes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_p_vs: Option<bool>,
    /// The backup storage location to read the backup from: its own or one holding a copy
    /// (Coffer's). Unset: its own when that is not Unavailable, else the first copy's that is not.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub storage_location: String,
    /// The volume snapshot locations to recreate volumes from, in order of preference: each
    /// volume from its snapshot (or a copy of it) in the first of these that holds one
    /// (Coffer's). Unset: the snapshot's own location when that is not Unavailable, else the
    /// first copy's that is not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_snapshot_locations: Vec<String>,
}

/// Items counted during a restore (Velero's `RestoreProgress`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RestoreProgress {
    /// Items to restore.
    #[serde(default)]
    pub total_items: u64,
    /// Items restored so far.
    #[serde(default)]
    pub items_restored: u64,
    /// Pod volume data written so far, while file-system restores run (Coffer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_volume_data: Option<DataProgress>,
}

impl From<&Progress> for RestoreProgress {
    fn from(p: &Progress) -> Self {
        RestoreProgress { total_items: p.total_items, items_restored: p.items_backed_up, pod_volume_data: p.pod_volume_data }
    }
}

impl From<&RestoreProgress> for Progress {
    fn from(p: &RestoreProgress) -> Self {
        Progress { total_items: p.total_items, items_backed_up: p.items_restored, pod_volume_data: p.pod_volume_data }
    }
}

/// A restore's observed state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    /// The phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Why it failed validation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<String>,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub start_timestamp: Option<OffsetDateTime>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub completion_timestamp: Option<OffsetDateTime>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub failure_reason: String,
    /// Error-level log entries.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors: u64,
    /// Warning-level log entries.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warnings: u64,
    /// Items counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<RestoreProgress>,
}

/// A Restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restore {
    /// `velero.io/v1`.
    pub api_version: String,
    /// `Restore`.
    pub kind: String,
    /// Name, namespace, labels, annotations.
    pub metadata: BackupMeta,
    /// What to restore.
    pub spec: RestoreSpec,
    /// How it went.
    #[serde(default)]
    pub status: RestoreStatus,
}

macro_rules! annotated_resource {
    ($ty:ty, $kind:literal) => {
        impl Resource for $ty {
            const KIND: &'static str = $kind;
            fn namespace(&self) -> &str {
                &self.metadata.meta.namespace
            }
            fn name(&self) -> &str {
                &self.metadata.meta.name
            }
            fn resource_version(&self) -> Option<&str> {
                Some(&self.metadata.meta.resource_version)
            }
            fn resource_version_mut(&mut self) -> Option<&mut String> {
                Some(&mut self.metadata.meta.resource_version)
            }
        }
    };
}

annotated_resource!(Backup, "Backup");
annotated_resource!(Restore, "Restore");
