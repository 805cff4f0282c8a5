//! Backup storage locations.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;

use crate::coffer::Coffer;
use crate::model::{
    API_VERSION, AccessMode, BackupStorageLocation, BackupStorageLocationSpec, LocationStatus, ObjectMeta,
    ObjectStorage, SecretKeySelector, now,
};
use crate::object::{ObjectError, validate_name};
use crate::sandbox::{ObjectStoreHandle, ProviderKind};

use super::location::{self, Location};
use super::{encryption_key, location_grants};
use super::{LocationError, delete_named, get_named};
use crate::state::expect_version;

const KIND: &str = BackupStorageLocation::NOUN;

/// How often a location is validated when it does not say (Velero's `--store-validation-frequency`).
pub const DEFAULT_VALIDATION_FREQUENCY: Duration = Duration::from_secs(60);

/// The only top-level directories Velero allows under a location's prefix.
const VALID_TOP_LEVEL: [&str; 6] = ["backups", "restores", "restic", "metadata", "plugins", "kopia"];

/// What `backup-location create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewBackupStorageLocation {
    /// Name.
    pub name: String,
    /// Provider name.
    pub provider: String,
    /// Bucket.
    pub bucket: String,
    /// Prefix inside the bucket.
    pub prefix: String,
    /// Provider config.
    pub config: BTreeMap<String, String>,
    /// Its own credential.
    pub credential: Option<SecretKeySelector>,
    /// Make it the default.
    pub default: bool,
    /// ReadWrite or ReadOnly.
    pub access_mode: AccessMode,
    /// Validation frequency, if set.
    pub validation_frequency: Option<Duration>,
    /// Backup sync period, if set.
    pub backup_sync_period: Option<Duration>,
    /// PEM CA bundle.
    pub ca_cert: Option<Vec<u8>>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The secret key holding its encryption key (age identities).
    pub encryption_key: Option<SecretKeySelector>,
}

fn trim_slashes(s: &str) -> String {
    s.trim_matches('/').to_owned()
}

impl NewBackupStorageLocation {
    /// The request a BackupStorageLocation object (as an API client sends it) makes; its
    /// namespace and status are ignored.
    pub fn from_object(bsl: BackupStorageLocation) -> Result<Self, LocationError> {
        let spec = bsl.spec;
        let ca_cert = spec
            .object_storage
            .ca_cert
            .map(|ca| STANDARD.decode(ca))
            .transpose()
            .map_err(|e| LocationError::InvalidField { field: "spec.objectStorage.caCert".into(), reason: format!("is not base64: {e}") })?;
        Ok(NewBackupStorageLocation {
            name: bsl.metadata.name,
            provider: spec.provider,
            bucket: spec.object_storage.bucket,
            prefix: spec.object_storage.prefix,
            config: spec.config,
            credential: spec.credential,
            default: spec.default,
            access_mode: spec.access_mode,
            validation_frequency: spec.validation_frequency,
            backup_sync_period: spec.backup_sync_period,
            ca_cert,
            labels: bsl.metadata.labels,
            encryption_key: spec.encryption_key,
        })
    }

    /// The object this describes, with its fields checked.
    pub fn build(self, namespace: &str) -> Result<BackupStorageLocation, LocationError> {
        validate_name(KIND, &self.name)?;
        let field = |field: &str, reason: &str| LocationError::InvalidField { field: field.into(), reason: reason.into() };
        if self.provider.is_empty() {
            return Err(field("spec.provider", "is required"));
        }
        let bucket = trim_slashes(&self.bucket);
        if bucket.is_empty() {
            return Err(field("spec.objectStorage.bucket", "is required"));
        }
        if bucket.contains('/') {
            return Err(field(
                "spec.objectStorage.bucket",
                &format!("bucket name {bucket:?} must not contain a '/' (if using a prefix, put it in spec.objectStorage.prefix instead)"),
            ));
        }
        let mut metadata = ObjectMeta::new(namespace, &self.name);
        metadata.labels = self.labels;
        Ok(BackupStorageLocation {
            api_version: API_VERSION.into(),
            kind: "BackupStorageLocation".into(),
            metadata,
            spec: BackupStorageLocationSpec {
                provider: self.provider,
                object_storage: ObjectStorage {
                    bucket,
                    prefix: trim_slashes(&self.prefix),
                    ca_cert: self.ca_cert.map(|pem| STANDARD.encode(pem)),
                },
                config: self.config,
                credential: self.credential,
                default: self.default,
                access_mode: self.access_mode,
                backup_sync_period: self.backup_sync_period,
                validation_frequency: self.validation_frequency,
                encryption_key: self.encryption_key,
            },
            status: LocationStatus::default(),
        })
    }
}

/// Creates a location after validating it (see [`location::create`]); a second default is
/// refused.
pub async fn create_backup_storage_location(
    coffer: &Coffer,
    namespace: &str,
    new: NewBackupStorageLocation,
) -> Result<BackupStorageLocation, LocationError> {
    let bsl = new.build(namespace)?;
    encryption_key(coffer, &bsl)?;
    location::create(coffer, bsl).await
}

/// What `backup-location set` changes.
#[derive(Debug, Clone, Default)]
pub struct BackupStorageLocationChange {
    /// The version it was made against: given, it applies only to that version.
    pub resource_version: Option<String>,
    /// Make it the default (moving the default from another location) or not.
    pub default: Option<bool>,
    /// Its own credential.
    pub credential: Option<SecretKeySelector>,
    /// A new PEM CA bundle.
    pub ca_cert: Option<Vec<u8>>,
    /// A new encryption key (the next backups encrypt with its first identity).
    pub encryption_key: Option<SecretKeySelector>,
}

/// Changes a location. Making it the default unsets the previous default in the same
/// transaction. A changed credential or CA bundle is validated at once.
pub async fn set_backup_storage_location(
    coffer: &Coffer,
    namespace: &str,
    name: &str,
    change: BackupStorageLocationChange,
) -> Result<BackupStorageLocation, LocationError> {
    let revalidate = change.credential.is_some() || change.ca_cert.is_some();
    if let Some(selector) = &change.encryption_key {
        // Checked before anything changes: the key must resolve and parse.
        let mut probe = coffer.state.read()?.get::<BackupStorageLocation>(namespace, name)?.ok_or_else(|| ObjectError::not_found(KIND, name))?;
        probe.spec.encryption_key = Some(selector.clone());
        encryption_key(coffer, &probe)?;
    }
    let bsl = coffer.state.write(|txn| {
        let mut bsl = txn
            .get::<BackupStorageLocation>(namespace, name)?
            .ok_or_else(|| ObjectError::not_found(KIND, name))?;
        expect_version(&bsl, change.resource_version.as_deref())?;
        if change.default == Some(true) {
            for mut other in txn.list::<BackupStorageLocation>(namespace)? {
                if other.spec.default && other.metadata.name != name {
                    other.spec.default = false;
                    txn.put(&mut other)?;
                }
            }
        }
        if let Some(default) = change.default {
            bsl.spec.default = default;
        }
        if let Some(credential) = change.credential.clone() {
            location::set_credential(txn, coffer, &mut bsl, credential)?;
        }
        if let Some(selector) = &change.encryption_key {
            bsl.spec.encryption_key = Some(selector.clone());
        }
        if let Some(pem) = &change.ca_cert {
            bsl.spec.object_storage.ca_cert = Some(STANDARD.encode(pem));
        }
        txn.put(&mut bsl)?;
        Ok::<_, LocationError>(bsl)
    })?;
    if revalidate { location::record_validation(coffer, bsl).await } else { Ok(bsl) }
}

/// Deletes a location. Nothing in object storage is touched.
pub fn delete_backup_storage_location(coffer: &Coffer, namespace: &str, name: &str) -> Result<(), LocationError> {
    delete_named::<BackupStorageLocation>(coffer, namespace, name, KIND)
}

/// The named locations (all when `names` is empty), or only the default.
pub fn get_backup_storage_locations(
    coffer: &Coffer,
    namespace: &str,
    names: &[String],
    default_only: bool,
) -> Result<Vec<BackupStorageLocation>, LocationError> {
    let mut out: Vec<BackupStorageLocation> = get_named(coffer, namespace, names, KIND)?;
    if default_only {
        out.retain(|b| b.spec.default);
    }
    Ok(out)
}

/// Whether `bsl` is due for validation at `at`: never validated, or its frequency (the
/// default when unset; `0s` never) has passed since the last validation.
pub fn validation_due(bsl: &BackupStorageLocation, at: OffsetDateTime) -> bool {
    let Some(last) = bsl.status.last_validation_time else { return true };
    let frequency = bsl.spec.validation_frequency.unwrap_or(DEFAULT_VALIDATION_FREQUENCY);
    !frequency.is_zero() && at >= last + frequency
}

/// Validates each location that is due (or all, with `force`) and records the outcome.
pub async fn refresh_backup_storage_locations(
    coffer: &Coffer,
    locations: Vec<BackupStorageLocation>,
    force: bool,
) -> Result<Vec<BackupStorageLocation>, LocationError> {
    let at = now();
    let mut out = Vec::with_capacity(locations.len());
    for bsl in locations {
        out.push(if force || validation_due(&bsl, at) { location::record_validation(coffer, bsl).await? } else { bsl });
    }
    Ok(out)
}

/// What an object store's provider receives as its config, like Velero's: the location's
/// `config` plus the injected `bucket`, `prefix` and (when there is one) the CA bundle `caCert`.
pub fn object_store_config(mut config: BTreeMap<String, String>, bucket: &str, prefix: &str, ca_pem: Option<&[u8]>) -> BTreeMap<String, String> {
    config.insert("bucket".into(), bucket.into());
    config.insert("prefix".into(), prefix.into());
    if let Some(pem) = ca_pem {
        config.insert("caCert".into(), String::from_utf8_lossy(pem).into_owned());
    }
    config
}

/// A handle on the location's object store, with its credential and only its grants.
pub async fn object_store_for(coffer: &Coffer, bsl: &BackupStorageLocation) -> Result<ObjectStoreHandle, LocationError> {
    let location = location::label(bsl);
    let plugin = coffer
        .registry
        .resolve(&bsl.spec.provider, ProviderKind::ObjectStore)
        .map_err(|error| LocationError::Plugin { location: location.clone(), error })?;
    let storage = &bsl.spec.object_storage;
    let ca_pem = match &storage.ca_cert {
        Some(ca) => Some(
            STANDARD
                .decode(ca)
                .map_err(|e| LocationError::InvalidField { field: "objectStorage.caCert".into(), reason: e.to_string() })?,
        ),
        None => None,
    };
    let config = object_store_config(bsl.spec.config.clone(), &storage.bucket, &storage.prefix, ca_pem.as_deref());
    let grants = location_grants(coffer, &bsl.metadata.namespace, &location, &plugin, config, bsl.spec.credential.as_ref())?;
    Ok(ObjectStoreHandle::new(&coffer.sandbox, &plugin.component, grants).await?)
}

/// Velero's `IsValid`: every top-level directory under the prefix must be one Velero knows.
async fn check_layout(store: &mut ObjectStoreHandle, bsl: &BackupStorageLocation) -> Result<(), LocationError> {
    let storage = &bsl.spec.object_storage;
    let root = if storage.prefix.is_empty() { String::new() } else { format!("{}/", storage.prefix) };
    let dirs = store.list_common_prefixes(&storage.bucket, &root, "/").await?;
    let mut invalid: Vec<String> = dirs
        .iter()
        .map(|d| d.strip_prefix(&root).unwrap_or(d).trim_end_matches('/').to_owned())
        .filter(|d| !VALID_TOP_LEVEL.contains(&d.as_str()))
        .collect();
    match invalid.len() {
        0 => Ok(()),
        n if n > 3 => {
            invalid.truncate(3);
            invalid.push("...".into());
            Err(LocationError::Layout(format!(
                "Backup store contains {n} invalid top-level directories: [{}]",
                invalid.join(" ")
            )))
        }
        _ => Err(LocationError::Layout(format!(
            "Backup store contains invalid top-level directories: [{}]",
            invalid.join(" ")
        ))),
    }
}

/// The longest a validation may take; an endpoint that does not answer within it makes the
/// location Unavailable.
pub const VALIDATION_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Validates a location: its provider must initialise with its config and credential, and
/// its bucket and prefix must hold only Velero's top-level directories, within
/// [`VALIDATION_DEADLINE`].
pub async fn validate_backup_storage_location(coffer: &Coffer, bsl: &BackupStorageLocation) -> Result<(), LocationError> {
    let validate = async {
        let mut store = object_store_for(coffer, bsl).await?;
        check_layout(&mut store, bsl).await
    };
    tokio::time::timeout(VALIDATION_DEADLINE, validate).await.map_err(|_| LocationError::TimedOut(VALIDATION_DEADLINE.as_secs()))?
}
