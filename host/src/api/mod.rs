//! The service layer: what a tenant can do ([`TenantApi`]), written once over the engine
//! ([`LocalTenant`], under the command line and the server's handlers) and once over HTTP
//! ([`RemoteTenant`], the command line's `--server` mode), with the wire types, routes, typed
//! errors and OpenAPI document both sides share. The operator's calls on tenants' tokens and
//! quotas are [`OperatorApi`], likewise.

mod client;
mod error;
mod local;
mod operator;
pub mod routes;
mod service;
mod wire;

pub use client::{Client, ClientError, RemoteTenant};
pub use error::{ApiError, Reason};
pub use local::{Host, LocalTenant};
pub use operator::{LocalOperator, OperatorApi};
pub use service::{Download, Sink, TenantApi, Watch};
pub use wire::{
    PasswordBody,
    BackupStorageLocationPatch, ChangeMeta, CreatedToken, NewToken, NotBase64, QuotaBody, SchedulePatch, SecretBody, SecretName,
    VolumeSnapshotLocationPatch,
};

/// The API's OpenAPI document, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn document() -> Value {
        serde_json::from_str(OPENAPI).expect("openapi.json is JSON")
    }

    /// The property names a schema documents, following a `$ref`.
    fn documented(doc: &Value, schema: &Value) -> BTreeSet<String> {
        let schema = match schema["$ref"].as_str() {
            Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
            None => schema,
        };
        schema["properties"].as_object().unwrap_or_else(|| panic!("no properties in {schema}")).keys().cloned().collect()
    }

    /// The fields a value of a shared type is sent with.
    fn sent(value: impl serde::Serialize) -> BTreeSet<String> {
        serde_json::to_value(value).unwrap().as_object().unwrap().keys().cloned().collect()
    }

    fn body(doc: &Value, route: &str, method: &str) -> Value {
        doc["paths"][route][method]["requestBody"]["content"]["application/json"]["schema"].clone()
    }

    #[test]
    fn the_document_lists_exactly_the_routes_served() {
        let doc = document();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                ["get", "post", "put", "patch", "delete"].into_iter().filter(|m| item.get(*m).is_some()).map(|m| (path.clone(), m.to_owned()))
            })
            .collect();
        let served: BTreeSet<(String, String)> = routes::TENANT_ROUTES
            .iter()
            .flat_map(|(path, methods)| methods.iter().map(|m| (path.to_string(), m.to_string())))
            .chain([("/healthz".into(), "get".into()), ("/openapi.json".into(), "get".into())])
            .collect();
        assert_eq!(documented, served);
    }

    #[test]
    fn the_documented_bodies_are_the_shared_types() {
        use crate::model::SecretKeySelector;
        let doc = document();
        let credential = SecretKeySelector { name: "s".into(), key: "k".into() };
        let version = || ChangeMeta { resource_version: Some("7".into()) };
        let bsl_patch = BackupStorageLocationPatch {
            metadata: version(),
            default: Some(true),
            credential: Some(credential.clone()),
            ca_cert: Some("AA==".into()),
            encryption_key: Some(credential.clone()),
        };
        let some = vec!["x".to_owned()];
        let filters = crate::model::ResourceFilters {
            included_namespaces: some.clone(),
            excluded_namespaces: some.clone(),
            included_resources: some.clone(),
            excluded_resources: some,
            label_selector: Some(crate::backup::parse_selector("a=b").unwrap()),
        };
        let restore_spec = crate::model::RestoreSpec { backup_name: "b".into(), filters: filters.clone(), restore_p_vs: Some(true), storage_location: "l".into(), volume_snapshot_locations: vec!["v".into()] };
        let backup_spec = crate::model::BackupSpec {
            filters,
            snapshot_volumes: Some(true),
            default_volumes_to_fs_backup: Some(true),
            ttl: Some(std::time::Duration::from_secs(60)),
            storage_location: "l".into(),
            volume_snapshot_locations: vec!["v".into()],
            copy_to: vec!["c".into()],
            copy_snapshots_to: vec!["w".into()],
        };
        let pairs: Vec<(Value, BTreeSet<String>)> = vec![
            (body(&doc, routes::BACKUP_STORAGE_LOCATION, "patch"), sent(bsl_patch)),
            (body(&doc, routes::VOLUME_SNAPSHOT_LOCATION, "patch"), sent(VolumeSnapshotLocationPatch { metadata: version(), credential })),
            (body(&doc, routes::SCHEDULE, "patch"), sent(SchedulePatch { metadata: version(), paused: true })),
            (body(&doc, routes::SECRETS, "post"), sent(SecretBody::new("s", vec![("k".into(), b"v".to_vec())]))),
            (body(&doc, routes::SECRET, "put"), sent(SecretBody::new("s", vec![("k".into(), b"v".to_vec())]))),
            (serde_json::json!({"$ref": "#/components/schemas/Error"}), sent(ApiError::bad_request("x").at("spec.provider"))),
            (serde_json::json!({"$ref": "#/components/schemas/BackupDetails"}), sent(crate::backup::BackupDetails::default())),
            (serde_json::json!({"$ref": "#/components/schemas/RestoreDetails"}), sent(crate::backup::RestoreDetails::default())),
            (serde_json::json!({"$ref": "#/components/schemas/RestoreSpec"}), sent(restore_spec)),
            (serde_json::json!({"$ref": "#/components/schemas/BackupSpec"}), sent(backup_spec)),
        ];
        for (schema, fields) in pairs {
            assert_eq!(documented(&doc, &schema), fields, "{schema}");
        }
        let reasons: BTreeSet<String> =
            doc["components"]["schemas"]["Error"]["properties"]["reason"]["enum"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect();
        for status in [400, 401, 404, 409, 422, 429, 500, 502, 503] {
            assert!(reasons.contains(serde_json::to_value(Reason::of_status(status)).unwrap().as_str().unwrap()), "{status}");
        }
        for reason in [Reason::AlreadyExists, Reason::Conflict] {
            assert!(reasons.contains(serde_json::to_value(reason).unwrap().as_str().unwrap()));
        }
    }
}
