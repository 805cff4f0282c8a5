//! Everything a command works with, opened from one data directory.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::keyring::{Keyring, KeyringError};
use crate::plugins::{PluginError, Registry};
use crate::sandbox::{Limits, Sandbox, SandboxError};
use crate::state::{State, StateError};
use crate::tenants::CallGates;

/// The data directory could not be opened.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The state file.
    #[error(transparent)]
    State(#[from] StateError),
    /// The master key.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// The WebAssembly runtime.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The plugins.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// The state, keyring, sandbox and plugins of one data directory.
pub struct Coffer {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Locations, secrets and everything else.
    pub state: State,
    /// Encryption of secrets at rest.
    pub keyring: Keyring,
    /// The WebAssembly runtime.
    pub sandbox: Sandbox,
    /// The provider components.
    pub registry: Registry,
    /// The tenants' caps on provider calls in flight.
    pub call_gates: CallGates,
}

impl Coffer {
    /// Opens (creating if needed) the data directory `data_dir`.
    pub async fn open(data_dir: &Path, limits: Limits) -> Result<Coffer, OpenError> {
        let state = State::open(data_dir)?;
        let keyring = Keyring::open(data_dir)?;
        let sandbox = Sandbox::new(Some(&data_dir.join("cache")), limits)?;
        let registry = Registry::load(&sandbox, &data_dir.join("plugins")).await?;
        Ok(Coffer { data_dir: data_dir.to_path_buf(), state, keyring, sandbox, registry, call_gates: CallGates::default() })
    }
}
