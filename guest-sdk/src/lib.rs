//! # Writing a Coffer provider
//!
//! A provider is a WebAssembly component that serves one location: an object store (where
//! backups are kept) or a volume snapshotter. Implement [`ObjectStore`] or
//! [`VolumeSnapshotter`] for a type, call the matching export macro, and build the crate as a
//! `cdylib` for `wasm32-wasip2`:
//!
//! ```no_run
//! use coffer_guest_sdk::{Config, Credential, Error, Manifest, ObjectStore, Result};
//! use coffer_guest_sdk::streams::{InputStream, OutputStream};
//!
//! struct Mine { root: String }
//!
//! impl ObjectStore for Mine {
//!     fn manifest() -> Manifest {
//!         Manifest::new("example.com/mine", "my object store").directory("root", "/data", true, false)
//!     }
//!     fn init(config: Vec<(String, String)>, _credential: Option<Credential>) -> Result<Self> {
//!         let config = Config::parse_object_store(config, &["root"])?;
//!         Ok(Mine { root: config.require("root")?.to_owned() })
//!     }
//!     // ... the other calls
//! #   fn put_object(&self, _: &str, _: &str, _: InputStream) -> Result<u64> { todo!() }
//! #   fn object_exists(&self, _: &str, _: &str) -> Result<bool> { todo!() }
//! #   fn get_object(&self, _: &str, _: &str, _: OutputStream) -> Result<u64> { todo!() }
//! #   fn list_common_prefixes(&self, _: &str, _: &str, _: &str) -> Result<Vec<String>> { todo!() }
//! #   fn get_object_range(&self, _: &str, _: &str, _: u64, _: u64, _: OutputStream) -> Result<u64> { todo!() }
//! #   fn list_objects(&self, _: &str, _: &str) -> Result<Vec<coffer_guest_sdk::ObjectEntry>> { todo!() }
//! #   fn delete_object(&self, _: &str, _: &str) -> Result<()> { todo!() }
//! #   fn create_signed_url(&self, _: &str, _: &str, _: std::time::Duration) -> Result<String> { todo!() }
//! }
//!
//! coffer_guest_sdk::export_object_store!(Mine);
//! ```
//!
//! The host grants the instance nothing but what the [`Manifest`] asks for *and* the location's
//! config names: the directories in the listed config keys, the endpoints in the listed URL
//! keys and templates, and the location's credential through `init`. There is no environment,
//! no arguments, no sockets and no other file.
//!
//! An HTTP object store is mostly its service's own pieces: a signer, one function that
//! fetches a page of a listing ([`paging`]), and the calls of a multipart upload
//! ([`upload::Parts`]). The rest is shared: the status codes every cloud gives the same
//! meaning ([`Error::from_status`]), the contract's rules for missing objects ([`deleted`],
//! [`exists`]), percent-encoding ([`uri`]) and requests over `wasi:http` ([`http`]).

pub mod bindings;
mod config;
mod credential;
mod error;
mod export;
pub mod fs;
pub mod http;
pub mod sigv4;
mod manifest;
pub mod paging;
pub mod streams;
pub mod upload;
pub mod uri;
pub mod xml;

pub use config::{Config, OBJECT_STORE_INJECTED_KEYS};
pub use credential::Credential;
pub use error::{Error, Result, deleted, exists};
pub use export::{ObjectEntry, ObjectStore, SnapshotCopy, VolumeInfo, VolumeSnapshotter};
#[doc(hidden)]
pub use export::{ObjectStoreExport, VolumeSnapshotterExport};
pub use manifest::{DirectoryRequest, Manifest};
