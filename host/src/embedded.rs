//! The first-party providers compiled into the `coffer` binary.

/// `velero.io/filesystem`: the default object store.
pub const FILESYSTEM: &[u8] = include_bytes!(env!("COFFER_FILESYSTEM_WASM"));

/// `velero.io/local`: the default volume snapshotter.
pub const LOCAL: &[u8] = include_bytes!(env!("COFFER_LOCAL_WASM"));

/// `velero.io/aws`: S3 and S3-compatible object storage.
pub const AWS: &[u8] = include_bytes!(env!("COFFER_AWS_WASM"));

/// `velero.io/aws`: EBS volume snapshots.
pub const AWS_EBS: &[u8] = include_bytes!(env!("COFFER_AWS_EBS_WASM"));

/// `velero.io/azure`: Azure Blob Storage.
pub const AZURE: &[u8] = include_bytes!(env!("COFFER_AZURE_WASM"));

/// `velero.io/gcp`: Google Cloud Storage.
pub const GCP: &[u8] = include_bytes!(env!("COFFER_GCP_WASM"));

/// Every embedded component.
pub const ALL: &[&[u8]] = &[FILESYSTEM, LOCAL, AWS, AWS_EBS, AZURE, GCP];
