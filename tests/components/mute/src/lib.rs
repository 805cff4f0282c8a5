//! An object store that never answers `describe`: it blocks on a clock for a day, using no
//! CPU, as a component waiting on something that never comes would. The host must refuse it
//! at `plugin add` and skip it at start instead of hanging.

use coffer_guest_sdk::streams::{InputStream, OutputStream};
use coffer_guest_sdk::{Credential, Error, Manifest, ObjectEntry, ObjectStore, Result};

struct Mute;

fn never() -> Error {
    Error::Unsupported("this component never gets this far".into())
}

impl ObjectStore for Mute {
    fn manifest() -> Manifest {
        wasip2::clocks::monotonic_clock::subscribe_duration(24 * 3600 * 1_000_000_000).block();
        Manifest::new("coffer.test/mute", "never answers describe")
    }

    fn init(_config: Vec<(String, String)>, _credential: Option<Credential>) -> Result<Self> {
        Err(never())
    }

    fn put_object(&self, _: &str, _: &str, _: InputStream) -> Result<u64> {
        Err(never())
    }

    fn object_exists(&self, _: &str, _: &str) -> Result<bool> {
        Err(never())
    }

    fn get_object(&self, _: &str, _: &str, _: OutputStream) -> Result<u64> {
        Err(never())
    }

    fn list_common_prefixes(&self, _: &str, _: &str, _: &str) -> Result<Vec<String>> {
        Err(never())
    }

    fn get_object_range(&self, _: &str, _: &str, _: u64, _: u64, _: OutputStream) -> Result<u64> {
        Err(never())
    }

    fn list_objects(&self, _: &str, _: &str) -> Result<Vec<ObjectEntry>> {
        Err(never())
    }

    fn delete_object(&self, _: &str, _: &str) -> Result<()> {
        Err(never())
    }

    fn create_signed_url(&self, _: &str, _: &str, _: std::time::Duration) -> Result<String> {
        Err(never())
    }
}

coffer_guest_sdk::export_object_store!(Mute);
