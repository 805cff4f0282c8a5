//! The provider contract's conformance checks: what `coffer plugin test` runs on an author's
//! component against the author's own service, and what the first-party providers pass in
//! Coffer's own tests. One suite for both.
//!
//! The component is loaded and granted exactly as a location would have it (the same
//! [`grants_for`](crate::sandbox::grants_for), the same limits), and every check is named, so
//! that a failure says which rule of the contract the provider broke, what the contract
//! expected, and what the provider answered. Objects are written only under a fresh prefix,
//! and exactly those objects are deleted afterwards.

mod data;
mod manifest;
mod object_store;
mod record;
mod snapshotter;

use std::collections::BTreeMap;

use thiserror::Error;

use crate::sandbox::{ProviderComponent, ProviderKind, Sandbox};
use crate::secret::SecretBytes;

pub use object_store::OBJECT_STORE_CHECKS;
pub use record::{CheckResult, Outcome, Report, Tally};
pub use snapshotter::VOLUME_SNAPSHOTTER_CHECKS;

/// The component under test and the location it is tested as.
pub struct Subject {
    /// The runtime, with the limits a location's instances get.
    pub sandbox: Sandbox,
    /// The loaded component.
    pub component: ProviderComponent,
    /// The name its instances serve, for messages (e.g. `plugin test "mine.wasm"`).
    pub location: String,
    /// The location's config as the provider receives it (for an object store, with `bucket`
    /// and `prefix`, and `caCert` when there is one).
    pub config: BTreeMap<String, String>,
    /// The credential `init` receives.
    pub credential: Option<SecretBytes>,
}

/// What to test an object store on.
#[derive(Debug, Clone, Default)]
pub struct ObjectStoreTarget {
    /// The bucket.
    pub bucket: String,
    /// The prefix inside it (no leading or trailing `/`); the run writes beneath a fresh
    /// prefix under it.
    pub prefix: String,
    /// Also round-trip a 1 GiB object.
    pub large: bool,
    /// Run even when the prefix already holds objects (the run still deletes only its own).
    pub force: bool,
}

/// What to test a volume snapshotter on.
#[derive(Debug, Clone, Default)]
pub struct SnapshotterTarget {
    /// A volume to snapshot, and its availability zone: needed by the round-trip checks.
    pub volume: Option<(String, String)>,
    /// A PersistentVolume (JSON) of the kind the provider handles: needed by the volume-ID
    /// round trip.
    pub pv: Option<String>,
}

/// Why a run could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunError {
    /// The prefix holds objects already and `force` was not given.
    #[error(
        "bucket {bucket:?} prefix {prefix:?} already holds {count} object(s) (first: {first:?}); \
         run on an empty prefix, or pass --force (only the objects the run writes are deleted)"
    )]
    NotEmpty {
        /// The bucket.
        bucket: String,
        /// The prefix.
        prefix: String,
        /// How many objects it holds.
        count: usize,
        /// One of them.
        first: String,
    },
    /// The target given does not fit the component's kind.
    #[error("the component is {}: {what}", kind.with_article())]
    WrongTarget {
        /// The component's kind.
        kind: ProviderKind,
        /// What is missing.
        what: &'static str,
    },
}

/// What to run the checks on: one target per provider kind, the one of the component's kind
/// is used.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// For an object store; required when the component is one.
    pub object_store: Option<ObjectStoreTarget>,
    /// For a volume snapshotter.
    pub snapshotter: SnapshotterTarget,
}

/// Runs every check of the contract the component exports, handing each result to `on_check`
/// as it ends.
pub async fn run(subject: &Subject, targets: &Targets, on_check: &mut dyn FnMut(&CheckResult)) -> Result<Report, RunError> {
    match subject.component.kind() {
        ProviderKind::ObjectStore => {
            let target = targets
                .object_store
                .as_ref()
                .ok_or(RunError::WrongTarget { kind: ProviderKind::ObjectStore, what: "it needs a bucket to be tested in" })?;
            object_store::run(subject, target, on_check).await
        }
        ProviderKind::VolumeSnapshotter => Ok(snapshotter::run(subject, &targets.snapshotter, on_check).await),
    }
}
