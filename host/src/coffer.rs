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
    /// On a shared host, the directory holding one directory per tenant: the only place
    /// that tenant's locations, backup sources and restore targets may be.
    pub tenant_root: Option<PathBuf>,
}

impl Coffer {
    /// Opens (creating if needed) the data directory `data_dir`.
    pub async fn open(data_dir: &Path, limits: Limits) -> Result<Coffer, OpenError> {
        let state = State::open(data_dir)?;
        let keyring = Keyring::open(data_dir)?;
        let sandbox = Sandbox::new(Some(&data_dir.join("cache")), limits)?;
        let registry = Registry::load(&sandbox, &data_dir.join("plugins")).await?;
        Ok(Coffer { data_dir: data_dir.to_path_buf(), state, keyring, sandbox, registry, call_gates: CallGates::default(), tenant_root: None })
    }
}

impl Coffer {
    /// Confines every tenant to `<root>/<tenant>` (created as needed): locations' directories,
    /// backup sources and restore targets must lie inside.
    pub fn confine_tenants(&mut self, root: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(root)?;
        self.tenant_root = Some(root.canonicalize()?);
        Ok(())
    }

    /// The directory tree `tenant` is confined to, created if missing; `None` when tenants are
    /// not confined (a single-user host).
    pub fn tenant_dir(&self, tenant: &str) -> std::io::Result<Option<PathBuf>> {
        let Some(root) = &self.tenant_root else { return Ok(None) };
        let dir = root.join(tenant);
        std::fs::create_dir_all(&dir)?;
        Ok(Some(dir))
    }
}
