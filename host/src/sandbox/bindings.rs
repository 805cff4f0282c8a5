//! Host bindings of the provider worlds in `wit/`, and of the worlds as released at 0.1.0 and
//! 0.2.0 (`wit/versions/`), whose components the host still loads.

use wasmtime::Store;

use super::error::ErrorKind;
use super::host_state::HostState;
use super::slot::Provider;

/// The `object-store-provider` world.
pub(crate) mod object_store {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "object-store-provider",
        exports: { default: async },
        with: { "wasi:io": wasmtime_wasi::p2::bindings::io },
    });
}

/// The `volume-snapshotter-provider` world.
pub(crate) mod volume_snapshotter {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "volume-snapshotter-provider",
        exports: { default: async },
        with: { "coffer:provider/digest": super::object_store::coffer::provider::digest },
    });
}

/// The `object-store-provider` world of contract 0.2.0: the same calls as today's.
pub(crate) mod object_store_0_2 {
    wasmtime::component::bindgen!({
        path: ["../wit", "../wit/versions/0.2.0"],
        world: "coffer:provider/object-store-provider@0.2.0",
        exports: { default: async },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "coffer:provider/types@0.2.0": super::object_store::coffer::provider::types,
        },
    });
}

/// The `volume-snapshotter-provider` world of contract 0.2.0: no `copy-snapshot`.
pub(crate) mod volume_snapshotter_0_2 {
    wasmtime::component::bindgen!({
        path: ["../wit", "../wit/versions/0.2.0"],
        world: "coffer:provider/volume-snapshotter-provider@0.2.0",
        exports: { default: async },
        with: {
            "coffer:provider/types@0.2.0": super::volume_snapshotter::coffer::provider::types,
            "coffer:provider/digest@0.2.0": super::object_store_0_2::coffer::provider0_2_0::digest,
        },
    });
}

/// The `object-store-provider` world of contract 0.1.0: no ranged reads, and listings without
/// sizes. Its types are the current ones (`types` did not change).
pub(crate) mod object_store_0_1 {
    wasmtime::component::bindgen!({
        path: ["../wit", "../wit/versions/0.1.0"],
        world: "coffer:provider/object-store-provider@0.1.0",
        exports: { default: async },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "coffer:provider/types@0.1.0": super::object_store::coffer::provider::types,
        },
    });
}

/// The `volume-snapshotter-provider` world of contract 0.1.0: the same calls as today's.
pub(crate) mod volume_snapshotter_0_1 {
    wasmtime::component::bindgen!({
        path: ["../wit", "../wit/versions/0.1.0"],
        world: "coffer:provider/volume-snapshotter-provider@0.1.0",
        exports: { default: async },
        with: {
            "coffer:provider/types@0.1.0": super::volume_snapshotter::coffer::provider::types,
            "coffer:provider/digest@0.1.0": super::object_store_0_1::coffer::provider0_1_0::digest,
        },
    });
}

// Where both versions are loaded the generator names the older one's accessors by version; these
// give them today's names, so that one call site serves both.
impl object_store_0_2::ObjectStoreProvider {
    pub(crate) fn coffer_provider_object_store(&self) -> &object_store_0_2::exports::coffer::provider0_2_0::object_store::Guest {
        self.coffer_provider0_2_0_object_store()
    }
}

impl volume_snapshotter_0_2::VolumeSnapshotterProvider {
    pub(crate) fn coffer_provider_volume_snapshotter(
        &self,
    ) -> &volume_snapshotter_0_2::exports::coffer::provider0_2_0::volume_snapshotter::Guest {
        self.coffer_provider0_2_0_volume_snapshotter()
    }
}

impl object_store_0_1::ObjectStoreProvider {
    pub(crate) fn coffer_provider_object_store(&self) -> &object_store_0_1::exports::coffer::provider0_1_0::object_store::Guest {
        self.coffer_provider0_1_0_object_store()
    }
}

impl volume_snapshotter_0_1::VolumeSnapshotterProvider {
    pub(crate) fn coffer_provider_volume_snapshotter(
        &self,
    ) -> &volume_snapshotter_0_1::exports::coffer::provider0_1_0::volume_snapshotter::Guest {
        self.coffer_provider0_1_0_volume_snapshotter()
    }
}

/// A provider world's bindings, at the contract version its component was built against.
pub(crate) enum Versioned<Current, V0_2, V0_1> {
    /// Built against `wit/`.
    Current(Current),
    /// Built against contract 0.2.0.
    V0_2(V0_2),
    /// Built against contract 0.1.0.
    V0_1(V0_1),
}

impl<C: Clone, T: Clone, O: Clone> Clone for Versioned<C, T, O> {
    fn clone(&self) -> Self {
        match self {
            Versioned::Current(c) => Versioned::Current(c.clone()),
            Versioned::V0_2(t) => Versioned::V0_2(t.clone()),
            Versioned::V0_1(o) => Versioned::V0_1(o.clone()),
        }
    }
}

impl<C, T, O> Versioned<C, T, O> {
    /// The contract version, as `wit/` names it.
    pub(crate) fn contract(&self) -> &'static str {
        match self {
            Versioned::Current(_) => CONTRACT,
            Versioned::V0_2(_) => "0.2.0",
            Versioned::V0_1(_) => "0.1.0",
        }
    }

    /// Whether the contract is `version` or later: whether the calls `version` added are there.
    pub(crate) fn has(&self, version: &str) -> bool {
        let rank = |v: &str| RELEASES.iter().position(|r| *r == v);
        rank(self.contract()) >= rank(version)
    }
}

/// The version of the contract in `wit/`.
pub const CONTRACT: &str = "0.3.0";

/// Every contract release, oldest first.
const RELEASES: [&str; 3] = ["0.1.0", "0.2.0", CONTRACT];

impl<C: Provider, T: Provider, O: Provider> Provider for Versioned<C, T, O> {
    type Pre = Versioned<C::Pre, T::Pre, O::Pre>;

    async fn instantiate(pre: &Self::Pre, store: &mut Store<HostState>) -> wasmtime::Result<Self> {
        Ok(match pre {
            Versioned::Current(pre) => Versioned::Current(C::instantiate(pre, store).await?),
            Versioned::V0_2(pre) => Versioned::V0_2(T::instantiate(pre, store).await?),
            Versioned::V0_1(pre) => Versioned::V0_1(O::instantiate(pre, store).await?),
        })
    }

    async fn init(
        &self,
        store: &mut Store<HostState>,
        config: &Vec<(String, String)>,
        credential: Option<&[u8]>,
    ) -> wasmtime::Result<Result<(), ErrorKind>> {
        match self {
            Versioned::Current(b) => b.init(store, config, credential).await,
            Versioned::V0_2(b) => b.init(store, config, credential).await,
            Versioned::V0_1(b) => b.init(store, config, credential).await,
        }
    }
}

/// Implements [`Provider`] for one world's generated bindings.
macro_rules! provider {
    ($world:ident :: $bindings:ident, $pre:ident, $interface:ident) => {
        impl Provider for $world::$bindings {
            type Pre = $world::$pre<HostState>;

            async fn instantiate(pre: &Self::Pre, store: &mut Store<HostState>) -> wasmtime::Result<Self> {
                pre.instantiate_async(store).await
            }

            async fn init(
                &self,
                store: &mut Store<HostState>,
                config: &Vec<(String, String)>,
                credential: Option<&[u8]>,
            ) -> wasmtime::Result<Result<(), ErrorKind>> {
                Ok(self.$interface().call_init(store, config, credential).await?.map_err(Into::into))
            }
        }
    };
}

provider!(object_store::ObjectStoreProvider, ObjectStoreProviderPre, coffer_provider_object_store);
provider!(object_store_0_2::ObjectStoreProvider, ObjectStoreProviderPre, coffer_provider_object_store);
provider!(object_store_0_1::ObjectStoreProvider, ObjectStoreProviderPre, coffer_provider_object_store);
provider!(volume_snapshotter::VolumeSnapshotterProvider, VolumeSnapshotterProviderPre, coffer_provider_volume_snapshotter);
provider!(volume_snapshotter_0_2::VolumeSnapshotterProvider, VolumeSnapshotterProviderPre, coffer_provider_volume_snapshotter);
provider!(volume_snapshotter_0_1::VolumeSnapshotterProvider, VolumeSnapshotterProviderPre, coffer_provider_volume_snapshotter);

/// An object-store provider, at any contract version.
pub(crate) type ObjectStoreWorld =
    Versioned<object_store::ObjectStoreProvider, object_store_0_2::ObjectStoreProvider, object_store_0_1::ObjectStoreProvider>;

/// A volume-snapshotter provider, at any contract version.
pub(crate) type VolumeSnapshotterWorld = Versioned<
    volume_snapshotter::VolumeSnapshotterProvider,
    volume_snapshotter_0_2::VolumeSnapshotterProvider,
    volume_snapshotter_0_1::VolumeSnapshotterProvider,
>;
