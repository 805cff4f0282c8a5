//! Reading the objects to back up from a directory of Kubernetes manifests.

use std::path::{Path, PathBuf};

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

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            files_under(&path, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json") {
            out.push(path);
        }
    }
    Ok(())
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

/// Reads every object from the YAML and JSON files under `dir` (recursively, in path order).
pub fn read_manifests(dir: &Path) -> Result<Vec<Item>, ManifestError> {
    let err = |path: &Path, reason: String| ManifestError { path: path.display().to_string(), reason };
    let mut files = Vec::new();
    files_under(dir, &mut files).map_err(|e| err(dir, e.to_string()))?;
    files.sort();
    let mut items = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| err(&file, e.to_string()))?;
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
