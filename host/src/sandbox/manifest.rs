//! A provider's self-description, as the host keeps it.

use serde::{Deserialize, Serialize};

/// A directory a provider may be granted (see `directory-request` in `wit/types.wit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryRequest {
    /// The config key holding the host path.
    pub config_key: String,
    /// Where the guest sees it.
    pub guest_path: String,
    /// Whether the provider may write there.
    pub writable: bool,
    /// Whether a location may leave the key out.
    pub optional: bool,
}

/// What a provider is and what its location's config may grant it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Registered name, e.g. `velero.io/filesystem`.
    pub name: String,
    /// One line for `coffer plugin get`.
    pub description: String,
    /// Directories it may be granted.
    pub directories: Vec<DirectoryRequest>,
    /// Config keys holding URLs it may reach.
    pub endpoint_keys: Vec<String>,
    /// Endpoint templates with `{key}` placeholders.
    pub endpoint_templates: Vec<String>,
}

macro_rules! from_wit_manifest {
    ($($types:tt)*) => {
        impl From<$($types)*::Manifest> for Manifest {
            fn from(m: $($types)*::Manifest) -> Self {
                use $($types)*::Access;
                Manifest {
                    name: m.name,
                    description: m.description,
                    directories: m
                        .directories
                        .into_iter()
                        .map(|d| DirectoryRequest {
                            config_key: d.config_key,
                            guest_path: d.guest_path,
                            writable: matches!(d.access, Access::ReadWrite),
                            optional: d.optional,
                        })
                        .collect(),
                    endpoint_keys: m.endpoint_keys,
                    endpoint_templates: m.endpoint_templates,
                }
            }
        }
    };
}

from_wit_manifest!(super::bindings::object_store::coffer::provider::types);
from_wit_manifest!(super::bindings::volume_snapshotter::coffer::provider::types);
