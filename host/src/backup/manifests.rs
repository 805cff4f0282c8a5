//! Reading the objects to back up from a directory of Kubernetes manifests.

use std::io::Read;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use serde::Deserialize;
use serde_json::Value;

use super::item::Item;

/// A manifest that cannot be read, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ManifestError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// The largest manifest file read (Kubernetes objects are at most ~1.5 MB each).
const MAX_FILE: u64 = 64 << 20;

/// The manifest files under `dir`, as paths relative to the source. Symbolic links are not
/// followed (an entry's type is its own, not its target's).
fn files_under(root: &Dir, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let entries = if dir.as_os_str().is_empty() { root.entries()? } else { root.read_dir(dir)? };
    for entry in entries {
        let entry = entry?;
        let path = dir.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            files_under(root, &path, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads `path` beneath `root` without following a symbolic link in its last component,
/// within [`MAX_FILE`].
fn read_file(root: &Dir, path: &Path) -> std::io::Result<String> {
    use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
    let mut options = cap_std::fs::OpenOptions::new();
    options.read(true).follow(FollowSymlinks::No);
    let file = root.open_with(path, &options)?;
    let mut text = String::new();
    file.take(MAX_FILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other(format!("larger than {} MiB", MAX_FILE >> 20)));
    }
    Ok(text)
}

/// Every document of `text`: JSON values one after another for `.json` files, YAML documents
/// separated by `---` otherwise.
fn documents(text: &str, json: bool) -> Result<Vec<Value>, String> {
    if json {
        return serde_json::Deserializer::from_str(text).into_iter::<Value>().collect::<Result<_, _>>().map_err(|e| e.to_string());
    }
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|e| e.to_string())?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

/// Flattens `List` kinds (`v1/List`, `PodList`, ...) into their items.
fn flatten(value: Value, out: &mut Vec<Value>) {
    let is_list = value.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array);
    if is_list {
        if let Some(Value::Array(items)) = value.get("items").cloned() {
            for item in items {
                flatten(item, out);
            }
        }
    } else {
        out.push(value);
    }
}

/// Reads every object from the YAML and JSON files under the open directory `dir`
/// (recursively, in path order); `shown` is how errors name it.
pub fn read_manifests(dir: &Dir, shown: &Path) -> Result<Vec<Item>, ManifestError> {
    let err = |path: &Path, reason: String| ManifestError { path: shown.join(path).display().to_string(), reason };
    let mut files = Vec::new();
    files_under(dir, Path::new(""), &mut files).map_err(|e| err(Path::new(""), e.to_string()))?;
    files.sort();
    let mut items = Vec::new();
    for file in files {
        let text = read_file(dir, &file).map_err(|e| err(&file, e.to_string()))?;
        let mut values = Vec::new();
        let json = file.extension().is_some_and(|e| e == "json");
        for doc in documents(&text, json).map_err(|e| err(&file, e))? {
            flatten(doc, &mut values);
        }
        for value in values {
            items.push(Item::from_object(value).map_err(|e| err(&file, e.0))?);
        }
    }
    Ok(items)
}
