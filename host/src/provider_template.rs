//! `coffer plugin new`: a provider crate to start from, which builds for `wasm32-wasip2` and
//! answers `unsupported` to every call until its author writes it.

use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use thiserror::Error;

use crate::sandbox::ProviderKind;

const CARGO_TOML: &str = include_str!("../templates/provider/Cargo.toml.in");
const CARGO_CONFIG: &str = include_str!("../templates/provider/cargo-config.toml.in");
const README: &str = include_str!("../templates/provider/README.md.in");
const OBJECT_STORE: &str = include_str!("../templates/provider/object_store.rs.in");
const VOLUME_SNAPSHOTTER: &str = include_str!("../templates/provider/volume_snapshotter.rs.in");

/// Why the crate could not be written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The name cannot be a crate's.
    #[error("provider name {name:?} {reason}")]
    Name {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The guest SDK is not where it was said to be.
    #[error("the guest SDK {path:?} is not a coffer-guest-sdk crate directory: {reason}")]
    Sdk {
        /// The path given or assumed.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Creating the directory or a file failed.
    #[error("{path}: {source}")]
    Write {
        /// The directory or file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The files of a new provider crate named `name` of `kind`, depending on the guest SDK at
/// `sdk` (an absolute path), as (relative path, content).
pub fn provider_crate(name: &str, kind: ProviderKind, sdk: &Path) -> Result<Vec<(&'static str, String)>, TemplateError> {
    check_name(name)?;
    // The contract's interface, which names its file in `wit/` too.
    let (interface, source) = match kind {
        ProviderKind::ObjectStore => ("object-store", OBJECT_STORE),
        ProviderKind::VolumeSnapshotter => ("volume-snapshotter", VOLUME_SNAPSHOTTER),
    };
    let file = name.replace('-', "_");
    let test = match kind {
        ProviderKind::ObjectStore => format!(
            "```sh\ncoffer plugin test target/wasm32-wasip2/release/{file}.wasm --bucket BUCKET [--prefix PREFIX] \\\n    \
             --config key=value,... [--credential-file FILE] [--cacert FILE] [--large]\n```\n\n\
             The run writes only under a fresh prefix beneath `--prefix`, deletes exactly what it wrote, and refuses a \
             prefix that already holds objects unless `--force`."
        ),
        ProviderKind::VolumeSnapshotter => format!(
            "```sh\ncoffer plugin test target/wasm32-wasip2/release/{file}.wasm --config key=value,... \\\n    \
             [--credential-file FILE] --volume-id VOLUME --volume-az ZONE --pv pv.json\n```\n\n\
             The run snapshots `--volume-id`, creates a volume from the snapshot and deletes the snapshot; the contract \
             has no call to delete a volume, so the run names the one it created for you to delete."
        ),
    };
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{interface}}", interface)
            .replace("{{file}}", &file)
            .replace("{{sdk}}", &sdk.display().to_string())
            .replace("{{test}}", &test)
    };
    Ok(vec![
        ("Cargo.toml", fill(CARGO_TOML)),
        (".cargo/config.toml", fill(CARGO_CONFIG)),
        ("README.md", fill(README)),
        ("src/lib.rs", fill(source)),
    ])
}

/// Writes a new provider crate into `dir`, which must not exist yet. `sdk` is the guest
/// SDK's directory.
pub fn write_provider_crate(dir: &Path, name: &str, kind: ProviderKind, sdk: &Path) -> Result<(), TemplateError> {
    let sdk = check_sdk(sdk)?;
    let files = provider_crate(name, kind, &sdk)?;
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TemplateError::Write { path, source }
    };
    // Created here, never reused: nothing that was there is overwritten.
    std::fs::create_dir(dir).map_err(failed(dir))?;
    let root = Dir::open_ambient_dir(dir, ambient_authority()).map_err(failed(dir))?;
    for (path, content) in files {
        let parent = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(parent) = parent {
            root.create_dir_all(parent).map_err(failed(&dir.join(parent)))?;
        }
        root.write(path, content).map_err(failed(&dir.join(path)))?;
    }
    Ok(())
}

/// The SDK's absolute path, once it is seen to be the SDK.
fn check_sdk(sdk: &Path) -> Result<PathBuf, TemplateError> {
    let bad = |reason: String| TemplateError::Sdk { path: sdk.to_path_buf(), reason };
    let sdk = sdk.canonicalize().map_err(|e| bad(e.to_string()))?;
    let manifest = std::fs::read_to_string(sdk.join("Cargo.toml")).map_err(|e| bad(format!("Cargo.toml: {e}")))?;
    if !manifest.contains("name = \"coffer-guest-sdk\"") {
        return Err(bad("its Cargo.toml is another crate's".into()));
    }
    Ok(sdk)
}

fn check_name(name: &str) -> Result<(), TemplateError> {
    let bad = |reason| Err(TemplateError::Name { name: name.into(), reason });
    match name.chars().next() {
        None => bad("is empty"),
        Some(first) if !first.is_ascii_lowercase() => bad("must start with a lowercase letter"),
        _ if name.len() > 64 => bad("is longer than 64 characters"),
        _ if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') => {
            bad("may hold only lowercase letters, digits, '-' and '_'")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled() {
        for kind in [ProviderKind::ObjectStore, ProviderKind::VolumeSnapshotter] {
            for (path, content) in provider_crate("my-store", kind, Path::new("/sdk")).unwrap() {
                assert!(!content.contains("{{"), "{path} has a placeholder left");
            }
        }
        let files = provider_crate("my-store", ProviderKind::ObjectStore, Path::new("/sdk")).unwrap();
        let readme = &files.iter().find(|(p, _)| *p == "README.md").unwrap().1;
        assert!(readme.contains("target/wasm32-wasip2/release/my_store.wasm --bucket"), "{readme}");
    }

    #[test]
    fn a_name_that_cannot_be_a_crate_is_refused_naming_it() {
        for name in ["", "My", "1x", "a b", "a/../b"] {
            let err = provider_crate(name, ProviderKind::ObjectStore, Path::new("/sdk")).unwrap_err().to_string();
            assert!(err.contains(&format!("{name:?}")), "{err}");
        }
    }

    #[test]
    fn an_existing_directory_is_not_written_into() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("keep"), "mine").unwrap();
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
        let err = write_provider_crate(tmp.path(), "x", ProviderKind::ObjectStore, &sdk).unwrap_err();
        assert!(matches!(err, TemplateError::Write { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(tmp.path().join("keep")).unwrap(), "mine");
        assert!(!tmp.path().join("Cargo.toml").exists());
    }
}
