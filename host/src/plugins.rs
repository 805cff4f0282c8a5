//! The provider components a host can use: the embedded first-party ones and the `.wasm`
//! files added with `coffer plugin add`, which live in the data directory's `plugins/` or, for
//! a shared state, in the state itself ([`crate::plugin_store`]) so that every server sharing
//! it runs the same ones. A running server loads them again when they change
//! ([`Registry::refresh`]).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use thiserror::Error;

use crate::embedded;
use crate::plugin_store::{self, KeptPlugin, PluginStoreError};
use crate::state::State;
use crate::sandbox::{LoadError, ProviderComponent, ProviderKind, Sandbox, sha256_hex};

/// How often a server looks for plugins added, changed or removed while it runs (in its
/// plugin directory or, for a shared state, by any process sharing it).
pub const REFRESH_PERIOD: Duration = Duration::from_secs(2);

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
    /// An embedded provider cannot be replaced.
    #[error("{path}: provider {name:?} is compiled into Coffer and cannot be replaced")]
    Embedded {
        /// The file being added.
        path: String,
        /// The name.
        name: String,
    },
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

/// Every usable plugin: those of the last load, replaced whole when [`Registry::refresh`] finds
/// that the plugin directory or the shared state's plugins changed. A location's instance keeps
/// the component it was made from; the next one is made from the plugin loaded now.
pub struct Registry {
    dir: PathBuf,
    loaded: RwLock<Arc<Loaded>>,
    /// One load at a time: a refresh or an add.
    loading: tokio::sync::Mutex<()>,
}

/// One load of the plugins.
struct Loaded {
    /// Embedded first, then those of the shared state, then the directory's.
    plugins: Vec<Arc<Plugin>>,
    /// What they were loaded from.
    sources: Sources,
}

/// What plugins are loaded from, enough to tell that it changed without reading a component:
/// the shared state's records (file name, digest) and the plugin directory's `.wasm` files.
#[derive(Debug, Default, PartialEq, Eq)]
struct Sources {
    shared: Vec<KeptPlugin>,
    files: Vec<FileStamp>,
}

/// A component file as the directory lists it: a file rewritten, replaced or touched has
/// another stamp.
#[derive(Debug, PartialEq, Eq)]
struct FileStamp {
    path: PathBuf,
    inode: u64,
    size: u64,
    modified: Option<std::time::SystemTime>,
}

impl Sources {
    /// What `dir` and, for a shared state, `state` hold now.
    fn read(dir: &Path, state: &State) -> Result<Sources, PluginError> {
        use std::os::unix::fs::MetadataExt;
        let shared = if state.is_shared() { plugin_store::kept(state).map_err(PluginStoreError::from)? } else { Vec::new() };
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Sources { shared, files: Vec::new() }),
            Err(error) => return Err(PluginError::Io { path: dir.display().to_string(), error }),
        };
        let mut files: Vec<FileStamp> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            // A file gone since the listing is left to the next look.
            .filter_map(|path| {
                let meta = fs::metadata(&path).ok()?;
                Some(FileStamp { inode: meta.ino(), size: meta.len(), modified: meta.modified().ok(), path })
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Sources { shared, files })
    }
}

impl Loaded {
    /// The plugin loaded from `source` with digest `sha256`, if this load has it.
    fn reusable(&self, source: &PluginSource, sha256: &str) -> Option<Arc<Plugin>> {
        self.plugins.iter().find(|p| &p.source == source && p.component.sha256() == sha256).cloned()
    }
}

/// The plugin among `plugins` that has `component`'s name and kind, if one does: a name is
/// unique per kind (`velero.io/aws` is both an object store and a snapshotter).
fn same_name<'a>(plugins: &'a [Arc<Plugin>], component: &ProviderComponent) -> Option<&'a Arc<Plugin>> {
    plugins.iter().find(|p| p.name() == component.manifest().name && p.component.kind() == component.kind())
}

/// Loads component `wasm` from `source` and checks that none of `plugins` has its name.
async fn check(sandbox: &Sandbox, plugins: &[Arc<Plugin>], wasm: &[u8], source: PluginSource) -> Result<Arc<Plugin>, PluginError> {
    let shown = source.to_string();
    let component = sandbox.load(wasm).await.map_err(|error| PluginError::Invalid { path: shown.clone(), error })?;
    let plugin = unique(plugins, Arc::new(Plugin { component, source }))?;
    tracing::info!(plugin = plugin.name(), kind = %plugin.component.kind(), sha256 = plugin.component.sha256(), source = shown, "loaded plugin");
    Ok(plugin)
}

/// `plugin`, unless one of `plugins` has its name and kind.
fn unique(plugins: &[Arc<Plugin>], plugin: Arc<Plugin>) -> Result<Arc<Plugin>, PluginError> {
    match same_name(plugins, &plugin.component) {
        Some(existing) => Err(PluginError::Duplicate { path: plugin.source.to_string(), name: plugin.name().to_owned(), existing: existing.source.to_string() }),
        None => Ok(plugin),
    }
}

impl Registry {
    /// Loads the embedded providers, every `.wasm` in `dir` and, for a shared state, every
    /// plugin `state` keeps. One that fails to load is reported in the log and left out.
    pub async fn load(sandbox: &Sandbox, dir: &Path, state: &State) -> Result<Registry, PluginError> {
        let mut plugins = Vec::new();
        for wasm in embedded::ALL {
            let component = sandbox.load(wasm).await.map_err(|error| PluginError::Invalid { path: "<embedded>".into(), error })?;
            plugins.push(Arc::new(Plugin { component, source: PluginSource::Embedded }));
        }
        let embedded = Loaded { plugins, sources: Sources::default() };
        let loaded = Registry::load_from(sandbox, dir, state, &embedded).await?;
        Ok(Registry { dir: dir.to_path_buf(), loaded: RwLock::new(Arc::new(loaded)), loading: tokio::sync::Mutex::new(()) })
    }

    /// Loads the plugins of `dir` and `state` beside `previous`'s embedded ones, reusing
    /// `previous`'s component for a source whose digest is unchanged.
    async fn load_from(sandbox: &Sandbox, dir: &Path, state: &State, previous: &Loaded) -> Result<Loaded, PluginError> {
        let sources = Sources::read(dir, state)?;
        let mut plugins: Vec<Arc<Plugin>> = previous.plugins.iter().filter(|p| p.source == PluginSource::Embedded).cloned().collect();
        for kept in &sources.shared {
            let source = PluginSource::Shared(kept.name.clone());
            let plugin = match previous.reusable(&source, &kept.sha256) {
                Some(plugin) => unique(&plugins, plugin),
                None => match plugin_store::component(state, &kept.name) {
                    Ok(wasm) => check(sandbox, &plugins, &wasm, source).await,
                    Err(e) => Err(e.into()),
                },
            };
            match plugin {
                Ok(plugin) => plugins.push(plugin),
                Err(e) => tracing::warn!("skipping plugin: {e}"),
            }
        }
        for file in &sources.files {
            let source = PluginSource::File(file.path.clone());
            let plugin = match read_component(&file.path) {
                Ok(wasm) => match previous.reusable(&source, &sha256_hex(&wasm)) {
                    Some(plugin) => unique(&plugins, plugin),
                    None => check(sandbox, &plugins, &wasm, source).await,
                },
                Err(e) => Err(e),
            };
            match plugin {
                Ok(plugin) => plugins.push(plugin),
                Err(e) => tracing::warn!("skipping plugin: {e}"),
            }
        }
        Ok(Loaded { plugins, sources })
    }

    fn current(&self) -> Arc<Loaded> {
        self.loaded.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Loads the plugins again if the plugin directory or the shared state's plugins changed
    /// since the last load (components whose digest is unchanged are kept, not compiled again);
    /// returns whether they had.
    pub async fn refresh(&self, sandbox: &Sandbox, state: &State) -> Result<bool, PluginError> {
        let _loading = self.loading.lock().await;
        let current = self.current();
        if Sources::read(&self.dir, state)? == current.sources {
            return Ok(false);
        }
        let loaded = Registry::load_from(sandbox, &self.dir, state, &current).await?;
        *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
        Ok(true)
    }

    /// Every plugin, embedded first.
    pub fn list(&self) -> Vec<Arc<Plugin>> {
        self.current().plugins.clone()
    }

    /// The `kind` plugin for provider name `provider` (Velero's naming rule applies).
    pub fn resolve(&self, provider: &str, kind: ProviderKind) -> Result<Arc<Plugin>, PluginError> {
        let loaded = self.current();
        let canonical = canonical_name(provider);
        let mut named = loaded.plugins.iter().filter(|p| p.name() == canonical);
        let first = named.clone().next();
        match (named.find(|p| p.component.kind() == kind), first) {
            (Some(p), _) => Ok(p.clone()),
            (None, Some(p)) => Err(PluginError::WrongKind { provider: provider.into(), is: p.component.kind(), wanted: kind }),
            (None, None) => Err(PluginError::UnknownProvider {
                provider: provider.into(),
                canonical,
                kind,
                known: loaded.plugins.iter().filter(|p| p.component.kind() == kind).map(|p| p.name()).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// Checks `file` and installs a copy: in a shared `state`, where every server sharing it
    /// picks it up within [`REFRESH_PERIOD`], else in the plugin directory. One with the name
    /// and kind of a plugin installed is refused.
    pub async fn add(&self, sandbox: &Sandbox, file: &Path, state: &State) -> Result<Arc<Plugin>, PluginError> {
        self.install(sandbox, file, state, false).await
    }

    /// As [`Registry::add`], but a plugin installed with the same name and kind (not an
    /// embedded one) is replaced where it is kept. Servers pick the new one up as they do an
    /// added one; runs already going keep the old one.
    pub async fn replace(&self, sandbox: &Sandbox, file: &Path, state: &State) -> Result<Arc<Plugin>, PluginError> {
        self.install(sandbox, file, state, true).await
    }

    async fn install(&self, sandbox: &Sandbox, file: &Path, state: &State, replace: bool) -> Result<Arc<Plugin>, PluginError> {
        let _loading = self.loading.lock().await;
        let current = self.current();
        // Read once: the bytes checked are the bytes installed, whatever happens to `file`.
        let wasm = read_component(file)?;
        let shown = file.display().to_string();
        let component = sandbox.load(&wasm).await.map_err(|error| PluginError::Invalid { path: shown.clone(), error })?;
        let name = component.manifest().name.clone();
        let file_name = format!("{}-{}.wasm", name.replace('/', "_"), component.kind());
        let source = match same_name(&current.plugins, &component) {
            Some(existing) if replace => existing.source.clone(),
            Some(existing) => return Err(PluginError::Duplicate { path: shown, name, existing: existing.source.to_string() }),
            None if state.is_shared() => PluginSource::Shared(file_name),
            None => PluginSource::File(self.dir.join(file_name)),
        };
        match &source {
            PluginSource::Shared(file_name) => drop(plugin_store::put(state, file_name, &wasm)?),
            PluginSource::File(target) => write_whole(target, &wasm)?,
            PluginSource::Embedded => return Err(PluginError::Embedded { path: shown, name }),
        }
        let installed = Arc::new(Plugin { component, source });
        // Loaded again with the installed component at hand, so that it is not compiled twice.
        let mut with_installed = Loaded { plugins: current.plugins.clone(), sources: Sources::default() };
        with_installed.plugins.push(installed.clone());
        let reloaded = Registry::load_from(sandbox, &self.dir, state, &with_installed).await?;
        *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(reloaded);
        Ok(installed)
    }
}

/// Writes `wasm` to `target` (its directory created if missing) through a file beside it
/// renamed over it, so that a reader never sees part of it.
fn write_whole(target: &Path, wasm: &[u8]) -> Result<(), PluginError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |error| PluginError::Io { path, error }
    };
    let dir = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    let temp = dir.join(format!(".{}.tmp", target.file_name().unwrap_or_default().to_string_lossy()));
    fs::write(&temp, wasm).map_err(io(&temp))?;
    fs::File::open(&temp).and_then(|f| f.sync_all()).map_err(io(&temp))?;
    fs::rename(&temp, target).map_err(io(target))
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

    /// `wasm` with an empty custom section `v` more: the same component, another digest.
    fn rebuilt(wasm: &[u8]) -> Vec<u8> {
        [wasm, &[0, 2, 1, b'v']].concat()
    }

    /// A data directory (its plugin directory not made yet), its sandbox, state and plugins.
    async fn host() -> (tempfile::TempDir, Sandbox, State, Registry) {
        let tmp = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::new(None, crate::sandbox::Limits::default()).unwrap();
        let state = State::open(tmp.path()).unwrap();
        let registry = Registry::load(&sandbox, &tmp.path().join("plugins"), &state).await.unwrap();
        (tmp, sandbox, state, registry)
    }

    fn probe_wasm() -> Vec<u8> {
        fs::read(Path::new(env!("COFFER_TEST_COMPONENTS_DIR")).join("coffer_test_probe.wasm")).unwrap()
    }

    #[tokio::test]
    async fn a_plugin_added_again_is_refused_and_replaced_where_it_is_kept_only_when_asked() {
        let (tmp, sandbox, state, registry) = host().await;
        let dir = tmp.path().join("plugins");
        let (first, second) = (tmp.path().join("probe.wasm"), tmp.path().join("probe-2.wasm"));
        fs::write(&first, probe_wasm()).unwrap();
        fs::write(&second, rebuilt(&probe_wasm())).unwrap();

        let added = registry.add(&sandbox, &first, &state).await.unwrap();
        let err = registry.add(&sandbox, &second, &state).await.unwrap_err();
        assert!(matches!(err, PluginError::Duplicate { .. }) && err.to_string().contains("probe-2.wasm"), "{err}");
        let replaced = registry.replace(&sandbox, &second, &state).await.unwrap();
        assert_eq!(replaced.source, added.source, "kept where the replaced one was");
        let in_use = registry.resolve("coffer.test/probe", ProviderKind::ObjectStore).unwrap();
        assert_eq!(in_use.component.sha256(), sha256_hex(&rebuilt(&probe_wasm())));
        let files: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        let PluginSource::File(kept) = &added.source else { panic!("{:?}", added.source) };
        assert_eq!(files, std::slice::from_ref(kept), "one file, no temporary left");
        assert_eq!(fs::read(kept).unwrap(), rebuilt(&probe_wasm()));
        assert!(!registry.refresh(&sandbox, &state).await.unwrap(), "the registry already holds what the directory does");
    }

    #[tokio::test]
    async fn plugins_dropped_in_replaced_or_removed_are_picked_up_by_a_refresh_and_unchanged_ones_are_not_loaded_again() {
        let (tmp, sandbox, state, registry) = host().await;
        let dir = tmp.path().join("plugins");
        let probe = || registry.resolve("coffer.test/probe", ProviderKind::ObjectStore);
        assert!(matches!(probe(), Err(PluginError::UnknownProvider { .. })));
        assert!(!registry.refresh(&sandbox, &state).await.unwrap(), "nothing changed");

        let wasm = probe_wasm();
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("probe.wasm"), &wasm).unwrap();
        assert!(registry.refresh(&sandbox, &state).await.unwrap());
        let first = probe().unwrap();
        assert_eq!(first.component.sha256(), sha256_hex(&wasm));
        assert!(!registry.refresh(&sandbox, &state).await.unwrap(), "nothing changed since");
        assert!(Arc::ptr_eq(&first, &probe().unwrap()), "the same load");

        // A file that is no component beside it: skipped, and the rest stay.
        fs::write(dir.join("broken.wasm"), b"\0asm-not-really").unwrap();
        assert!(registry.refresh(&sandbox, &state).await.unwrap());
        assert!(Arc::ptr_eq(&first, &probe().unwrap()), "an unchanged file is not loaded again");

        // Replaced by another build, as an operator would (a rename over it).
        let changed = rebuilt(&wasm);
        fs::write(dir.join(".probe.wasm.new"), &changed).unwrap();
        fs::rename(dir.join(".probe.wasm.new"), dir.join("probe.wasm")).unwrap();
        assert!(registry.refresh(&sandbox, &state).await.unwrap());
        assert_eq!(probe().unwrap().component.sha256(), sha256_hex(&changed));
        assert_eq!(first.component.sha256(), sha256_hex(&wasm), "what holds the old load keeps it");

        fs::remove_file(dir.join("probe.wasm")).unwrap();
        assert!(registry.refresh(&sandbox, &state).await.unwrap());
        assert!(matches!(probe(), Err(PluginError::UnknownProvider { .. })));
        assert!(registry.resolve("velero.io/filesystem", ProviderKind::ObjectStore).is_ok(), "the embedded ones stay");
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
