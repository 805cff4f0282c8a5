//! Plugins kept in a shared state (etcd), so that every server sharing it runs the same
//! providers. A component is kept in chunks (etcd bounds what one request carries), each named
//! by the component's digest, and a record written last names them: a reader sees a plugin
//! whole or not at all, and checks its digest before using it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::sandbox::sha256_hex;
use crate::state::{Resource, State, StateError, Txn};

/// The namespace of plugins' objects: none a tenant can have (names are never empty).
const NAMESPACE: &str = "";
/// Bytes of a component per chunk: with base64, well within etcd's 1.5 MiB per request.
const CHUNK: usize = 512 * 1024;
/// The largest component kept: 64 MiB.
pub const MAX_SIZE: usize = 64 << 20;

/// A plugin kept in the state: its file name and the chunks that hold it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SharedPlugin {
    /// The file name it is installed as (`<provider>-<kind>.wasm`).
    name: String,
    /// The component's SHA-256, hex.
    sha256: String,
    /// Its size in bytes.
    size: usize,
    /// How many chunks hold it.
    chunks: usize,
}

impl Resource for SharedPlugin {
    const KIND: &'static str = "SharedPlugin";
    fn namespace(&self) -> &str {
        NAMESPACE
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// One chunk of a component: `<sha256>.<index>`.
#[derive(Debug, Serialize, Deserialize)]
struct PluginChunk {
    name: String,
    /// The bytes, base64.
    data: String,
}

impl Resource for PluginChunk {
    const KIND: &'static str = "PluginChunk";
    fn namespace(&self) -> &str {
        NAMESPACE
    }
    fn name(&self) -> &str {
        &self.name
    }
}

fn chunk_name(sha256: &str, index: usize) -> String {
    format!("{sha256}.{index}")
}

/// A problem with the plugins kept in the state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginStoreError {
    /// The state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A component over [`MAX_SIZE`].
    #[error("plugin {name}: {size} bytes is over the {MAX_SIZE} a shared state keeps")]
    TooLarge {
        /// Its file name.
        name: String,
        /// Its size.
        size: usize,
    },
    /// The plugin was removed while it was being read.
    #[error("plugin {name} is no longer kept in the shared state")]
    Gone {
        /// Its file name.
        name: String,
    },
    /// A kept component is not whole, or not what its record says.
    #[error("plugin {name} in the shared state is damaged ({why}): add it again")]
    Damaged {
        /// Its file name.
        name: String,
        /// What is wrong.
        why: String,
    },
}

/// Keeps component `wasm` as plugin file `name`, replacing the one of that name; returns its
/// digest.
pub fn put(state: &State, name: &str, wasm: &[u8]) -> Result<String, PluginStoreError> {
    if wasm.len() > MAX_SIZE {
        return Err(PluginStoreError::TooLarge { name: name.to_owned(), size: wasm.len() });
    }
    let sha256 = sha256_hex(wasm);
    // The chunks first, one to a transaction; they are named by content, so writing one again
    // is harmless.
    for (index, bytes) in wasm.chunks(CHUNK).enumerate() {
        let mut chunk = PluginChunk { name: chunk_name(&sha256, index), data: STANDARD.encode(bytes) };
        state.write(|txn| txn.put(&mut chunk))?;
    }
    let chunks = wasm.len().div_ceil(CHUNK);
    state.write(|txn| {
        let replaced = txn.get::<SharedPlugin>(NAMESPACE, name)?;
        let mut record = SharedPlugin { name: name.to_owned(), sha256: sha256.clone(), size: wasm.len(), chunks };
        txn.put(&mut record)?;
        // The replaced component's chunks go, unless another record still names them.
        if let Some(old) = replaced.filter(|old| old.sha256 != sha256) {
            let others = txn.list::<SharedPlugin>(NAMESPACE)?;
            if !others.iter().any(|p| p.sha256 == old.sha256 && p.name != name) {
                for index in 0..old.chunks {
                    txn.delete::<PluginChunk>(NAMESPACE, &chunk_name(&old.sha256, index))?;
                }
            }
        }
        Ok::<_, StateError>(())
    })?;
    Ok(sha256)
}

/// A plugin kept, as its record names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptPlugin {
    /// Its file name (`<provider>-<kind>.wasm`).
    pub name: String,
    /// The component's SHA-256, hex.
    pub sha256: String,
}

/// Every plugin kept, by file name: the records alone, without reading a component.
pub fn kept(state: &State) -> Result<Vec<KeptPlugin>, StateError> {
    let records = state.read()?.list::<SharedPlugin>(NAMESPACE)?;
    Ok(records.into_iter().map(|p| KeptPlugin { name: p.name, sha256: p.sha256 }).collect())
}

/// The component kept as plugin file `name`, read whole and checked against its digest.
pub fn component(state: &State, name: &str) -> Result<Vec<u8>, PluginStoreError> {
    let txn = state.read()?;
    let plugin = txn.get::<SharedPlugin>(NAMESPACE, name)?.ok_or_else(|| PluginStoreError::Gone { name: name.to_owned() })?;
    read_whole(&txn, &plugin)
}

fn read_whole(txn: &Txn<'_>, plugin: &SharedPlugin) -> Result<Vec<u8>, PluginStoreError> {
    let damaged = |why: String| PluginStoreError::Damaged { name: plugin.name.clone(), why };
    if plugin.size > MAX_SIZE {
        return Err(damaged(format!("its record says {} bytes", plugin.size)));
    }
    let mut wasm = Vec::with_capacity(plugin.size);
    for index in 0..plugin.chunks {
        let chunk = txn
            .get::<PluginChunk>(NAMESPACE, &chunk_name(&plugin.sha256, index))?
            .ok_or_else(|| damaged(format!("chunk {index} of {} is missing", plugin.chunks)))?;
        let bytes = STANDARD.decode(&chunk.data).map_err(|e| damaged(format!("chunk {index}: {e}")))?;
        wasm.extend_from_slice(&bytes);
        if wasm.len() > plugin.size {
            return Err(damaged(format!("its chunks hold more than the {} bytes its record says", plugin.size)));
        }
    }
    if sha256_hex(&wasm) != plugin.sha256 {
        return Err(damaged("its bytes do not have the digest its record says".into()));
    }
    Ok(wasm)
}
