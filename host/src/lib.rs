//! Coffer: a backup engine in the spirit of Velero whose storage and snapshot providers are
//! sandboxed WebAssembly components.

pub mod embedded;
pub mod sandbox;
pub mod secret;
