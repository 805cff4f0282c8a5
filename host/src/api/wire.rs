//! The API's wire types: the bodies the server takes and its clients send, declared once so
//! that the two cannot drift apart (the objects themselves are [`crate::model`]'s).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::locations::BackupStorageLocationChange;
use crate::model::{SecretKeySelector, go_duration};

/// A body field that does not decode, naming it.
#[derive(Debug, Error)]
#[error("{field} is not base64: {reason}")]
pub struct NotBase64 {
    /// The field, e.g. `caCert` or `data.key`.
    pub field: String,
    /// Why.
    pub reason: String,
}

fn decode(field: impl Into<String>, text: &str) -> Result<Vec<u8>, NotBase64> {
    STANDARD.decode(text).map_err(|e| NotBase64 { field: field.into(), reason: e.to_string() })
}

/// A change's `metadata`: the `resourceVersion` of the object it was made against. Given, the
/// change applies only while the object is still at that version (`409 Conflict` otherwise),
/// as a Kubernetes update does; absent, it applies to whatever is stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeMeta {
    /// The version the change was made against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

impl ChangeMeta {
    /// Whether it says nothing (and so is not sent).
    pub fn is_empty(&self) -> bool {
        self.resource_version.is_none()
    }
}

/// `PATCH /v1/backup-storage-locations/{name}`: what may change. Absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupStorageLocationPatch {
    /// The version it applies to.
    #[serde(default, skip_serializing_if = "ChangeMeta::is_empty")]
    pub metadata: ChangeMeta,
    /// Make it the default (moving the default from another location) or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    /// Its own credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<SecretKeySelector>,
    /// A PEM CA bundle, base64, as in `spec.objectStorage.caCert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
    /// A new encryption key: the secret key holding age identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<SecretKeySelector>,
}

impl From<BackupStorageLocationChange> for BackupStorageLocationPatch {
    fn from(change: BackupStorageLocationChange) -> Self {
        BackupStorageLocationPatch {
            metadata: ChangeMeta { resource_version: change.resource_version },
            default: change.default,
            credential: change.credential,
            ca_cert: change.ca_cert.map(|pem| STANDARD.encode(pem)),
            encryption_key: change.encryption_key,
        }
    }
}

impl TryFrom<BackupStorageLocationPatch> for BackupStorageLocationChange {
    type Error = NotBase64;

    fn try_from(patch: BackupStorageLocationPatch) -> Result<Self, NotBase64> {
        let ca_cert = patch.ca_cert.map(|c| decode("caCert", &c)).transpose()?;
        Ok(BackupStorageLocationChange {
            resource_version: patch.metadata.resource_version,
            default: patch.default,
            credential: patch.credential,
            ca_cert,
            encryption_key: patch.encryption_key,
        })
    }
}

/// `PATCH /v1/volume-snapshot-locations/{name}`: its new credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeSnapshotLocationPatch {
    /// The version it applies to.
    #[serde(default, skip_serializing_if = "ChangeMeta::is_empty")]
    pub metadata: ChangeMeta,
    /// The secret key holding the credential.
    pub credential: SecretKeySelector,
}

/// `PATCH /v1/schedules/{name}`: pause or unpause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchedulePatch {
    /// The version it applies to.
    #[serde(default, skip_serializing_if = "ChangeMeta::is_empty")]
    pub metadata: ChangeMeta,
    /// Whether the schedule is paused.
    pub paused: bool,
}

/// `POST /v1/secrets` and `PUT /v1/secrets/{name}`: a secret as a client sends it (values go
/// in, as a Kubernetes Secret's `data`, and never come out).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretBody {
    /// `{"name": ...}`.
    pub metadata: SecretName,
    /// Key → base64 value.
    pub data: BTreeMap<String, String>,
}

/// A secret's metadata as a client sends it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretName {
    /// The secret's name.
    pub name: String,
    /// Replacing: the version replaced (see [`ChangeMeta`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

impl SecretBody {
    /// The body for secret `name` holding `values`.
    pub fn new(name: &str, values: Vec<(String, Vec<u8>)>) -> Self {
        SecretBody { metadata: SecretName { name: name.to_owned(), resource_version: None }, data: values.into_iter().map(|(k, v)| (k, STANDARD.encode(v))).collect() }
    }

    /// The values, decoded.
    pub fn values(self) -> Result<Vec<(String, Vec<u8>)>, NotBase64> {
        self.data.into_iter().map(|(k, v)| decode(format!("data.{k}"), &v).map(|bytes| (k, bytes))).collect()
    }
}

/// `POST /admin/tenants/{tenant}/tokens`: a token to create.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Its name.
    pub name: String,
}

/// A created token: shown this once.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedToken {
    /// The token.
    pub token: String,
}

/// `GET /v1/backup-repositories/{name}/password`: the password that opens a repository.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    /// The password.
    pub password: String,
}

/// `PUT /admin/tenants/{tenant}/quota`: a tenant's quota (absent fields: the host's default).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaBody {
    /// Provider calls in flight at once.
    pub concurrent_calls: Option<u32>,
    /// Memory per instance, bytes.
    pub memory_bytes: Option<u64>,
    /// Longest provider call.
    #[serde(default, with = "go_duration::option")]
    pub call_deadline: Option<std::time::Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_client_sends_is_what_the_server_reads() {
        let change = BackupStorageLocationChange {
            resource_version: Some("12".into()),
            default: Some(true),
            credential: Some(SecretKeySelector { name: "creds".into(), key: "cloud".into() }),
            ca_cert: Some(b"-----BEGIN CERTIFICATE-----".to_vec()),
            encryption_key: Some(SecretKeySelector { name: "keys".into(), key: "age".into() }),
        };
        let wire = serde_json::to_string(&BackupStorageLocationPatch::from(change.clone())).unwrap();
        let read: BackupStorageLocationPatch = serde_json::from_str(&wire).unwrap();
        let back = BackupStorageLocationChange::try_from(read).unwrap();
        assert_eq!((back.default, back.credential, back.ca_cert), (change.default, change.credential, change.ca_cert));
        assert_eq!(back.resource_version.as_deref(), Some("12"));
        assert!(wire.contains(r#""metadata":{"resourceVersion":"12"}"#), "{wire}");
        // An absent field stays absent, and is not sent as null.
        assert_eq!(serde_json::to_string(&BackupStorageLocationPatch { default: Some(false), ..Default::default() }).unwrap(), r#"{"default":false}"#);
        let err = serde_json::from_str::<BackupStorageLocationPatch>(r#"{"bucket":"x"}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `bucket`"), "{err}");
        let err = BackupStorageLocationChange::try_from(BackupStorageLocationPatch { ca_cert: Some("%%".into()), ..Default::default() }).unwrap_err();
        assert_eq!(err.field, "caCert");

        let body = SecretBody::new("s", vec![("k".into(), b"v\x00".to_vec())]);
        let read: SecretBody = serde_json::from_str(&serde_json::to_string(&body).unwrap()).unwrap();
        assert_eq!(read.values().unwrap(), vec![("k".to_owned(), b"v\x00".to_vec())]);
    }
}
