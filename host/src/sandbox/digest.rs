//! `coffer:provider/digest`: hashing done by the host, at native speed, for providers that
//! must hash object data (SigV4 payload hashes). A pure function: it grants nothing.

use sha2::{Digest, Sha256};
use wasmtime::component::{HasSelf, Linker};

use super::bindings::object_store::coffer::provider::digest;
use super::bindings::object_store_0_1::coffer::provider0_1_0::digest as digest_0_1;
use super::bindings::object_store_0_2::coffer::provider0_2_0::digest as digest_0_2;
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

impl digest_0_2::Host for HostState {
    fn sha256(&mut self, data: Vec<u8>) -> Vec<u8> {
        digest::Host::sha256(self, data)
    }
}

impl digest_0_1::Host for HostState {
    fn sha256(&mut self, data: Vec<u8>) -> Vec<u8> {
        digest::Host::sha256(self, data)
    }
}

/// Adds the interface, as every contract version names it, to `linker`; every provider world
/// imports it.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    digest::add_to_linker::<_, HasSelf<HostState>>(linker, |state| state)?;
    digest_0_2::add_to_linker::<_, HasSelf<HostState>>(linker, |state| state)?;
    digest_0_1::add_to_linker::<_, HasSelf<HostState>>(linker, |state| state)
}
