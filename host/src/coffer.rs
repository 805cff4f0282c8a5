//! Everything a command works with, opened from one data directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::fs::Dir;

use thiserror::Error;

use crate::confine::{PathError, PathRoot};
use crate::disk::SpaceReserve;
use crate::keyring::{Keyring, KeyringError};
use crate::plugins::{PluginError, Registry};
use crate::sandbox::{CallGates, Limits, Reach, Sandbox, SandboxError};
use crate::state::{State, StateError, StateLocation};
use crate::tenant::Tenant;

/// How long a backup is kept when its TTL is unset or zero: Velero's default
/// `--default-backup-ttl` (a server may set another, [`Coffer::default_backup_ttl`]).
pub const DEFAULT_BACKUP_TTL: std::time::Duration = std::time::Duration::from_secs(720 * 3600);

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
    /// On a shared host, the directory holding one directory per tenant (held open): the
    /// only place that tenant's locations, backup sources and restore targets may be.
    pub tenant_root: Option<(PathBuf, Arc<Dir>)>,
    /// Which addresses locations' providers may connect to: anywhere for a single user,
    /// public addresses (and the operator's exceptions) on a shared host.
    pub reach: Reach,
    /// On a shared host, the most live provider instances one tenant may hold at once
    /// (`None`: no cap, for a single user).
    pub tenant_instances: Option<u32>,
    /// The TTL of backups that set none or zero (Velero's `--default-backup-ttl`, 720h).
    pub default_backup_ttl: std::time::Duration,
    /// On a shared host, the free space locations' writes must leave on the data disk for the
    /// state (`None`: no reserve).
    pub space_reserve: Option<Arc<SpaceReserve>>,
}

impl Coffer {
    /// Opens (creating if needed) the data directory `data_dir`, with its embedded state.
    pub async fn open(data_dir: &Path, limits: Limits) -> Result<Coffer, OpenError> {
        Coffer::open_with(data_dir, limits, &StateLocation::Embedded, None).await
    }

    /// Opens (creating if needed) the data directory `data_dir`, with the state kept where
    /// `state` says and secrets sealed with the master key in `master_key` (else the data
    /// directory's own, created on first use). A master key that is not the one the state's
    /// secrets are sealed with is refused.
    pub async fn open_with(data_dir: &Path, limits: Limits, state: &StateLocation, master_key: Option<&Path>) -> Result<Coffer, OpenError> {
        let state = State::open_at(data_dir, state)?;
        let keyring = match master_key {
            Some(file) => Keyring::open_file(file)?,
            None => Keyring::open(data_dir)?,
        };
        keyring.check(&state)?;
        let sandbox = Sandbox::new(Some(&data_dir.join("cache")), limits)?;
        let registry = Registry::load(&sandbox, &data_dir.join("plugins"), &state).await?;
        Ok(Coffer { data_dir: data_dir.to_path_buf(), state, keyring, sandbox, registry, call_gates: CallGates::default(), tenant_root: None, reach: Reach::Any, tenant_instances: None, default_backup_ttl: DEFAULT_BACKUP_TTL, space_reserve: None })
    }
}

impl Coffer {
    /// Confines every tenant to `<root>/<tenant>` (created owner-only as needed): locations'
    /// directories, backup sources and restore targets resolve beneath it.
    pub fn confine_tenants(&mut self, root: &Path) -> std::io::Result<()> {
        crate::state::create_private_dir(root)?;
        let path = root.canonicalize()?;
        let dir = Dir::open_ambient_dir(&path, cap_std::ambient_authority())?;
        self.tenant_root = Some((path, Arc::new(dir)));
        Ok(())
    }

    /// Keeps `bytes` of the data disk for the state: locations' writes there are refused below
    /// it, and a file of that size is held for the state to give up when the disk is full.
    pub fn keep_state_reserve(&mut self, bytes: u64) -> std::io::Result<()> {
        self.state.keep_reserve(bytes);
        self.space_reserve = (bytes > 0).then(|| SpaceReserve::new(&self.data_dir, bytes).map(Arc::new)).transpose()?;
        Ok(())
    }

    /// The tenant `namespace`: its paths resolve beneath its own tree on a shared host (created
    /// if missing), anywhere on a single user's host.
    pub fn tenant(&self, namespace: &str) -> Result<Tenant, PathError> {
        let paths = match &self.tenant_root {
            None => PathRoot::Anywhere,
            Some((path, dir)) => PathRoot::tenant(dir, path, namespace)
                .map_err(|error| PathError::Io { field: "the tenant's directory".into(), path: namespace.into(), error })?,
        };
        Ok(Tenant::new(namespace, paths))
    }
}
