//! Host bindings of the two provider worlds in `wit/`.

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
