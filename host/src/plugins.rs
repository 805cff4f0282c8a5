//! The provider components a host can use: the embedded first-party ones and the `.wasm`
//! files added with `coffer plugin add`, which live in the data directory's `plugins/` or, for
//! a shared state, in the state itself ([`crate::plugin_store`]) so that every server sharing
//! it runs the same ones.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::embedded;
use crate::plugin_store::{self, PluginStoreError};
use crate::state::State;
use crate::sandbox::{LoadError, ProviderComponent, ProviderKind, Sandbox};

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// Compiled into `coffer`.
    Embedded,
    /// A file in the plugin directory.
    File(PathBuf),
    /// Kept in the shared state, under this file name.
    Shared(String),
}

impl std::fmt::Display for PluginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginSource::Embedded => f.write_str("embedded"),
            PluginSource::File(path) => write!(f, "{}", path.display()),
            PluginSource::Shared(name) => write!(f, "shared state: {name}"),
        }
    }
}

/// A usable provider component.
#[derive(Debug, Clone)]
pub struct Plugin {
    /// The loaded component.
    pub component: ProviderComponent,
    /// Where it came from.
    pub source: PluginSource,
}

impl Plugin {
    /// Its registered name.
    pub fn name(&self) -> &str {
        &self.component.manifest().name
    }
}

/// A plugin problem, naming the provider or file at fault.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PluginError {
    /// No plugin has that name.
    #[error("unknown provider {provider:?}{resolved}; installed {kind} providers: {known}", resolved = if provider == canonical { String::new() } else { format!(" (resolved as {canonical:?})") })]
    UnknownProvider {
        /// The name as given.
        provider: String,
        /// The name it resolves to.
        canonical: String,
        /// The kind wanted.
        kind: ProviderKind,
        /// What is installed, comma-separated.
        known: String,
    },
    /// The plugin exists but is of the other kind.
    #[error("provider {provider:?} is {}, not {}", is.with_article(), wanted.with_article())]
    WrongKind {
        /// The provider.
        provider: String,
        /// What it is.
        is: ProviderKind,
        /// What was wanted.
        wanted: ProviderKind,
    },
    /// A plugin file cannot be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        error: std::io::Error,
    },
    /// A component file is larger than Coffer loads.
    #[error("{path}: the component is over the {limit} bytes Coffer loads")]
    TooLarge {
        /// The file.
        path: String,
        /// The most it loads.
        limit: usize,
    },
    /// A file is not a usable provider.
    #[error("{path}: {error}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        error: LoadError,
    },
    /// The plugins kept in a shared state cannot be read or written.
    #[error("plugins in the shared state: {0}")]
    Store(#[from] PluginStoreError),
    /// Another plugin of the same kind already has the name.
    #[error("{path}: a provider named {name:?} of this kind is already installed ({existing})")]
    Duplicate {
        /// The file being added.
        path: String,
        /// The name.
        name: String,
        /// Where the installed one came from.
        existing: String,
    },
}

/// Velero's rule: a provider name without `/` means `velero.io/<name>`.
pub fn canonical_name(provider: &str) -> String {
    if provider.contains('/') { provider.to_owned() } else { format!("velero.io/{provider}") }
}

/// Every usable plugin.
pub struct Registry {
    dir: PathBuf,
    plugins: Vec<Plugin>,
}

impl Registry {
    /// Loads the embedded providers, every `.wasm` in `dir` and, for a shared state, every
    /// plugin `state` keeps. One that fails to load is reported in the log and left out.
    pub async fn load(sandbox: &Sandbox, dir: &Path, state: &State) -> Result<Registry, PluginError> {
        let mut plugins = Vec::new();
        for wasm in embedded::ALL {
            let component = sandbox
                .load(wasm)
                .await
                .map_err(|error| PluginError::Invalid { path: "<embedded>".into(), error })?;
            plugins.push(Plugin { component, source: PluginSource::Embedded });
        }
        let mut registry = Registry { dir: dir.to_path_buf(), plugins };
        if state.is_shared() {
            for (name, wasm) in plugin_store::all(state).map_err(PluginStoreError::from)? {
                let loaded = match wasm {
                    Ok(wasm) => registry.check(sandbox, &wasm, PluginSource::Shared(name)).await,
                    Err(e) => Err(e.into()),
                };
                match loaded {
                    Ok(plugin) => registry.plugins.push(plugin),
                    Err(e) => tracing::warn!("skipping plugin: {e}"),
                }
            }
        }
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(registry),
            Err(error) => return Err(PluginError::Io { path: dir.display().to_string(), error }),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        files.sort();
        for path in files {
            match registry.load_file(sandbox, &path).await {
                Ok(plugin) => registry.plugins.push(plugin),
                Err(e) => tracing::warn!("skipping plugin: {e}"),
            }
        }
        Ok(registry)
    }

    async fn load_file(&self, sandbox: &Sandbox, path: &Path) -> Result<Plugin, PluginError> {
        let wasm = read_component(path)?;
        self.check(sandbox, &wasm, PluginSource::File(path.to_path_buf())).await
    }

    /// Loads component `wasm` from `source`, and checks that no plugin of its kind has its name.
    async fn check(&self, sandbox: &Sandbox, wasm: &[u8], source: PluginSource) -> Result<Plugin, PluginError> {
        let shown = source.to_string();
        let component = sandbox.load(wasm).await.map_err(|error| PluginError::Invalid { path: shown.clone(), error })?;
        let name = &component.manifest().name;
        // A name is unique per kind: `velero.io/aws` is both an object store and a snapshotter.
        if let Some(existing) = self.plugins.iter().find(|p| p.name() == name && p.component.kind() == component.kind()) {
            return Err(PluginError::Duplicate {
                path: shown,
                name: name.clone(),
                existing: existing.source.to_string(),
            });
        }
        Ok(Plugin { component, source })
    }

    /// Every plugin, embedded first.
    pub fn list(&self) -> &[Plugin] {
        &self.plugins
    }

    /// The `kind` plugin for provider name `provider` (Velero's naming rule applies).
    pub fn resolve(&self, provider: &str, kind: ProviderKind) -> Result<&Plugin, PluginError> {
        let canonical = canonical_name(provider);
        let mut named = self.plugins.iter().filter(|p| p.name() == canonical);
        let first = named.clone().next();
        match (named.find(|p| p.component.kind() == kind), first) {
            (Some(p), _) => Ok(p),
            (None, Some(p)) => Err(PluginError::WrongKind { provider: provider.into(), is: p.component.kind(), wanted: kind }),
            (None, None) => Err(PluginError::UnknownProvider {
                provider: provider.into(),
                canonical,
                kind,
                known: self
                    .plugins
                    .iter()
                    .filter(|p| p.component.kind() == kind)
                    .map(Plugin::name)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Checks `file` and installs a copy: in a shared `state`, which every server sharing it
    /// loads when it starts, else in the plugin directory.
    pub async fn add(&mut self, sandbox: &Sandbox, file: &Path, state: &State) -> Result<&Plugin, PluginError> {
        // Read once: the bytes checked are the bytes installed, whatever happens to `file`.
        let wasm = read_component(file)?;
        let loaded = self.check(sandbox, &wasm, PluginSource::File(file.to_path_buf())).await?;
        let file_name = format!("{}-{}.wasm", loaded.name().replace('/', "_"), loaded.component.kind());
        let source = if state.is_shared() {
            plugin_store::put(state, &file_name, &wasm)?;
            PluginSource::Shared(file_name)
        } else {
            let io = |path: &Path| {
                let path = path.display().to_string();
                move |error| PluginError::Io { path, error }
            };
            fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
            let target = self.dir.join(&file_name);
            let temp = self.dir.join(format!(".{file_name}.tmp"));
            fs::write(&temp, &wasm).map_err(io(&temp))?;
            fs::File::open(&temp).and_then(|f| f.sync_all()).map_err(io(&temp))?;
            fs::rename(&temp, &target).map_err(io(&target))?;
            PluginSource::File(target)
        };
        self.plugins.push(Plugin { component: loaded.component, source });
        Ok(self.plugins.last().expect("just pushed"))
    }
}

/// The bytes of the component file at `path`, refused beyond [`plugin_store::MAX_SIZE`]:
/// the bound holds before the bytes are in memory, not after.
fn read_component(path: &Path) -> Result<Vec<u8>, PluginError> {
    let mut wasm = Vec::new();
    fs::File::open(path)
        .and_then(|file| file.take(plugin_store::MAX_SIZE as u64 + 1).read_to_end(&mut wasm))
        .map_err(|error| PluginError::Io { path: path.display().to_string(), error })?;
    if wasm.len() > plugin_store::MAX_SIZE {
        return Err(PluginError::TooLarge { path: path.display().to_string(), limit: plugin_store::MAX_SIZE });
    }
    Ok(wasm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_are_velero_names() {
        assert_eq!(canonical_name("aws"), "velero.io/aws");
        assert_eq!(canonical_name("example.com/thing"), "example.com/thing");
    }

    #[test]
    fn a_component_file_over_the_limit_is_refused_by_name_and_one_at_it_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (at, over) = (dir.path().join("at.wasm"), dir.path().join("over.wasm"));
        // Sparse: the sizes cost no disk.
        fs::File::create(&at).unwrap().set_len(plugin_store::MAX_SIZE as u64).unwrap();
        fs::File::create(&over).unwrap().set_len(plugin_store::MAX_SIZE as u64 + 1).unwrap();
        assert_eq!(read_component(&at).unwrap().len(), plugin_store::MAX_SIZE);
        let err = read_component(&over).unwrap_err().to_string();
        assert!(err.contains("over.wasm") && err.contains(&plugin_store::MAX_SIZE.to_string()), "{err}");
    }
}
