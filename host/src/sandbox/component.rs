//! Loading a provider component: compile (or fetch from the cache), check that its imports are
//! ones the host can grant, find which provider world it exports, and ask for its manifest.

use std::fmt;

use thiserror::Error;
use wasmtime::Store;

use super::bindings::{ObjectStoreWorld, Versioned, VolumeSnapshotterWorld};
use super::bindings::{
    object_store as os, object_store_0_1 as os_0_1, object_store_0_2 as os_0_2, volume_snapshotter as vs,
    volume_snapshotter_0_1 as vs_0_1, volume_snapshotter_0_2 as vs_0_2,
};
use super::cache::sha256_hex;
use super::grants::Grants;
use super::host_state::HostState;
use super::manifest::Manifest;
use super::{Limits, STARTUP_DEADLINE, Sandbox, slot};

/// Which provider world a component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ProviderKind {
    /// `object-store-provider`.
    ObjectStore,
    /// `volume-snapshotter-provider`.
    VolumeSnapshotter,
}

impl ProviderKind {
    /// The kind with its article, for sentences: "an object store".
    pub fn with_article(self) -> &'static str {
        match self {
            ProviderKind::ObjectStore => "an object store",
            ProviderKind::VolumeSnapshotter => "a volume snapshotter",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProviderKind::ObjectStore => "ObjectStore",
            ProviderKind::VolumeSnapshotter => "VolumeSnapshotter",
        })
    }
}

/// A component that is not a usable provider.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Not valid WebAssembly, or not a component.
    #[error("not a valid WebAssembly component: {0}")]
    Compile(String),
    /// It imports something the host does not grant.
    #[error("imports something Coffer does not provide (only WASI 0.2 is available): {0}")]
    Imports(String),
    /// It exports neither provider world.
    #[error("exports neither coffer:provider/object-store nor coffer:provider/volume-snapshotter (contract 0.1.0, 0.2.0 or 0.3.0)")]
    NotAProvider,
    /// Its `describe` call failed.
    #[error("describing itself failed: {0}")]
    Describe(String),
    /// Its manifest is unusable.
    #[error("its manifest is invalid: {0}")]
    Manifest(String),
}

#[derive(Clone)]
pub(crate) enum Pre {
    ObjectStore(<ObjectStoreWorld as slot::Provider>::Pre),
    VolumeSnapshotter(<VolumeSnapshotterWorld as slot::Provider>::Pre),
}

/// A compiled, checked provider component, ready to be instantiated for locations.
#[derive(Clone)]
pub struct ProviderComponent {
    pub(crate) pre: Pre,
    manifest: Manifest,
    sha256: String,
}

impl fmt::Debug for ProviderComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderComponent").field("name", &self.manifest.name).field("sha256", &self.sha256).finish()
    }
}

impl ProviderComponent {
    /// What the component says it is.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Which provider world it exports.
    pub fn kind(&self) -> ProviderKind {
        match self.pre {
            Pre::ObjectStore(_) => ProviderKind::ObjectStore,
            Pre::VolumeSnapshotter(_) => ProviderKind::VolumeSnapshotter,
        }
    }

    /// The version of the contract (`wit/`) it was built against.
    pub fn contract(&self) -> &'static str {
        match &self.pre {
            Pre::ObjectStore(p) => p.contract(),
            Pre::VolumeSnapshotter(p) => p.contract(),
        }
    }

    /// The SHA-256 of the component's bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

fn check_manifest(m: &Manifest) -> Result<(), LoadError> {
    let bad = |s: String| Err(LoadError::Manifest(s));
    if m.name.is_empty() || m.name.chars().any(|c| c.is_whitespace()) {
        return bad(format!("name {:?} must be non-empty and without spaces", m.name));
    }
    for d in &m.directories {
        if !d.guest_path.starts_with('/') || d.guest_path == "/" {
            return bad(format!("directory for key {:?} must mount at an absolute path other than /", d.config_key));
        }
    }
    Ok(())
}

impl Sandbox {
    /// Compiles and checks `wasm`, and asks it for its manifest on an instance granted nothing.
    pub async fn load(&self, wasm: &[u8]) -> Result<ProviderComponent, LoadError> {
        let inner = &self.inner;
        let sha256 = sha256_hex(wasm);
        let component =
            inner.cache.load(&inner.engine, wasm, &sha256).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        let instance_pre =
            inner.linker.instantiate_pre(&component).map_err(|e| LoadError::Imports(format!("{e:#}")))?;
        let pre = if let Ok(p) = os::ObjectStoreProviderPre::new(instance_pre.clone()) {
            Pre::ObjectStore(Versioned::Current(p))
        } else if let Ok(p) = os_0_2::ObjectStoreProviderPre::new(instance_pre.clone()) {
            Pre::ObjectStore(Versioned::V0_2(p))
        } else if let Ok(p) = os_0_1::ObjectStoreProviderPre::new(instance_pre.clone()) {
            Pre::ObjectStore(Versioned::V0_1(p))
        } else if let Ok(p) = vs::VolumeSnapshotterProviderPre::new(instance_pre.clone()) {
            Pre::VolumeSnapshotter(Versioned::Current(p))
        } else if let Ok(p) = vs_0_2::VolumeSnapshotterProviderPre::new(instance_pre.clone()) {
            Pre::VolumeSnapshotter(Versioned::V0_2(p))
        } else if let Ok(p) = vs_0_1::VolumeSnapshotterProviderPre::new(instance_pre) {
            Pre::VolumeSnapshotter(Versioned::V0_1(p))
        } else {
            return Err(LoadError::NotAProvider);
        };
        let manifest = self.describe(&pre).await?;
        check_manifest(&manifest)?;
        Ok(ProviderComponent { pre, manifest, sha256 })
    }

    /// Asks `component` for its manifest again, on a fresh instance granted nothing: a
    /// provider's description must not change between calls (`coffer plugin test` checks).
    pub async fn describe_again(&self, component: &ProviderComponent) -> Result<Manifest, LoadError> {
        self.describe(&component.pre).await
    }

    /// The manifest `pre` gives on an instance granted nothing, within [`STARTUP_DEADLINE`].
    async fn describe(&self, pre: &Pre) -> Result<Manifest, LoadError> {
        let describe_err = |e: wasmtime::Error| LoadError::Describe(format!("{e:#}"));
        let grants = Grants::none("describe");
        let limits = Limits { cpu_per_call: self.inner.limits.cpu_per_call.min(STARTUP_DEADLINE), ..self.inner.limits.clone() };
        let mut store: Store<HostState> = slot::new_store(self, &grants, &limits).map_err(describe_err)?;
        // A component that does not answer (blocked on a clock, say) is refused, not waited on.
        let describe = async {
            Ok::<Manifest, wasmtime::Error>(match pre {
                Pre::ObjectStore(Versioned::Current(p)) => {
                    let b = p.instantiate_async(&mut store).await?;
                    b.coffer_provider_object_store().call_describe(&mut store).await?.into()
                }
                Pre::ObjectStore(Versioned::V0_2(p)) => {
                    let b = p.instantiate_async(&mut store).await?;
                    b.coffer_provider_object_store().call_describe(&mut store).await?.into()
                }
                Pre::ObjectStore(Versioned::V0_1(p)) => {
                    let b = p.instantiate_async(&mut store).await?;
                    b.coffer_provider_object_store().call_describe(&mut store).await?.into()
                }
                Pre::VolumeSnapshotter(Versioned::Current(p)) => {
                    let b = p.instantiate_async(&mut store).await?;
                    b.coffer_provider_volume_snapshotter().call_describe(&mut store).await?.into()
                }
                Pre::VolumeSnapshotter(Versioned::V0_2(p)) => {
                    let b = p.instantiate_async(&mut store).await?;
                    b.coffer_provider_volume_snapshotter().call_describe(&mut store).await?.into()
                }
                Pre::VolumeSnapshotter(Versioned::V0_1(p)) => {
                    let b = p.instantiate_async(&mut store).await?;
                    b.coffer_provider_volume_snapshotter().call_describe(&mut store).await?.into()
                }
            })
        };
        tokio::time::timeout(STARTUP_DEADLINE, describe)
            .await
            .map_err(|_| LoadError::Describe(format!("it did not describe itself within {STARTUP_DEADLINE:?}")))?
            .map_err(describe_err)
    }
}
