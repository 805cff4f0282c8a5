//! Generated bindings of the two provider worlds, and their conversions from the SDK's types.
//!
//! Provider authors never use this module directly: they implement [`crate::ObjectStore`] or
//! [`crate::VolumeSnapshotter`] and call the matching export macro.

/// Conversions shared by both worlds' generated `coffer:provider/types`.
macro_rules! type_conversions {
    () => {
        pub use self::coffer::provider::types as wit;

        impl From<$crate::Error> for wit::Error {
            fn from(err: $crate::Error) -> Self {
                use $crate::Error as E;
                match err {
                    E::NotFound(m) => wit::Error::NotFound(m),
                    E::AlreadyExists(m) => wit::Error::AlreadyExists(m),
                    E::PermissionDenied(m) => wit::Error::PermissionDenied(m),
                    E::Unauthenticated(m) => wit::Error::Unauthenticated(m),
                    E::InvalidConfig { key, reason } => {
                        wit::Error::InvalidConfig(wit::InvalidConfig { key, reason })
                    }
                    E::InvalidArgument(m) => wit::Error::InvalidArgument(m),
                    E::Unavailable(m) => wit::Error::Unavailable(m),
                    E::Unsupported(m) => wit::Error::Unsupported(m),
                    E::Other(m) => wit::Error::Other(m),
                }
            }
        }

        impl From<$crate::Manifest> for wit::Manifest {
            fn from(m: $crate::Manifest) -> Self {
                wit::Manifest {
                    name: m.name,
                    description: m.description,
                    directories: m
                        .directories
                        .into_iter()
                        .map(|d| wit::DirectoryRequest {
                            config_key: d.config_key,
                            guest_path: d.guest_path,
                            access: if d.writable { wit::Access::ReadWrite } else { wit::Access::ReadOnly },
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

/// The `host-services` world: what Coffer offers every provider besides WASI.
#[allow(missing_docs, reason = "generated from wit/")]
pub mod host {
    wit_bindgen::generate!({ path: "../wit", world: "host-services" });
}

/// The `object-store-provider` world.
#[allow(missing_docs, reason = "generated from wit/")]
pub mod object_store {
    wit_bindgen::generate!({
        path: "../wit",
        world: "object-store-provider",
        with: {
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "coffer:provider/digest@0.3.0": crate::bindings::host::coffer::provider::digest,
        },
        pub_export_macro: true,
        export_macro_name: "export_object_store_world",
        default_bindings_module: "coffer_guest_sdk::bindings::object_store",
    });
    type_conversions!();
    pub use self::exports::coffer::provider::object_store::ObjectEntry;
}

/// The `volume-snapshotter-provider` world.
#[allow(missing_docs, reason = "generated from wit/")]
pub mod volume_snapshotter {
    wit_bindgen::generate!({
        path: "../wit",
        world: "volume-snapshotter-provider",
        with: { "coffer:provider/digest@0.3.0": crate::bindings::host::coffer::provider::digest },
        pub_export_macro: true,
        export_macro_name: "export_volume_snapshotter_world",
        default_bindings_module: "coffer_guest_sdk::bindings::volume_snapshotter",
    });
    type_conversions!();
}
