//! The on-disk cache of compiled components, so each component is compiled once per engine
//! configuration instead of at every start.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled components under one directory, keyed by the component's SHA-256 and the engine's
/// compatibility hash.
pub(crate) struct ComponentCache {
    dir: Option<PathBuf>,
    engine_hash: u64,
}

/// The hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl ComponentCache {
    /// A cache in `dir` (created if missing), or none.
    pub(crate) fn new(engine: &Engine, dir: Option<&Path>) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ComponentCache { dir: dir.map(Path::to_path_buf), engine_hash: hasher.finish() }
    }

    /// The compiled form of `wasm`, from the cache when present, compiled and stored otherwise.
    pub(crate) fn load(&self, engine: &Engine, wasm: &[u8], sha256: &str) -> wasmtime::Result<Component> {
        let Some(dir) = &self.dir else { return Component::new(engine, wasm) };
        let path = dir.join(format!("{sha256}-{:016x}.cwasm", self.engine_hash));
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the same
            // compatibility hash, into the operator's data directory, which no provider or
            // tenant can write to. A damaged file fails deserialisation and is rebuilt below.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(e) => tracing::warn!(path = %path.display(), "recompiling a cached component: {e}"),
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = store_atomically(dir, &path, &component.serialize()?) {
            tracing::warn!(path = %path.display(), "could not cache a compiled component: {e}");
        }
        Ok(component)
    }
}

fn store_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut temp = tempfile_in(dir)?;
    temp.1.write_all(bytes)?;
    temp.1.sync_all()?;
    fs::rename(&temp.0, path)
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, fs::File)> {
    let path = dir.join(format!(".tmp-{}-{}", std::process::id(), rand::random::<u64>()));
    let file = fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
    Ok((path, file))
}
