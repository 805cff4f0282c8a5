//! `coffer:provider/digest`: hashing done by the host, at native speed, for providers that
//! must hash object data (SigV4 payload hashes). A pure function: it grants nothing.

use sha2::{Digest, Sha256};
use wasmtime::component::{HasSelf, Linker};

use super::bindings::object_store::coffer::provider::digest;
use super::host_state::HostState;

impl digest::Host for HostState {
    fn sha256(&mut self, data: Vec<u8>) -> Vec<u8> {
        // The guest's CPU-time limit counts this work as its own.
        let started = std::time::Instant::now();
        let digest = Sha256::digest(&data).to_vec();
        self.host_compute += started.elapsed();
        digest
    }
}

/// Adds the interface to `linker`; both provider worlds import it.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    digest::add_to_linker::<_, HasSelf<HostState>>(linker, |state| state)
}
