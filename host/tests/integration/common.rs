//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use coffer::sandbox::{Grants, Limits, ProviderComponent, Sandbox, grants_for};
use coffer::secret::SecretBytes;

/// A test component built from `tests/components/<name>`.
pub fn test_component(name: &str) -> Vec<u8> {
    let path = Path::new(env!("COFFER_TEST_COMPONENTS_DIR")).join(format!("coffer_test_{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A sandbox without a component cache.
pub fn sandbox(limits: Limits) -> Sandbox {
    Sandbox::new(None, limits).expect("sandbox starts")
}

/// Loads a component.
pub async fn load(sandbox: &Sandbox, wasm: &[u8]) -> ProviderComponent {
    sandbox.load(wasm).await.expect("component loads")
}

/// Grants for a location with `config` and an optional credential.
pub fn grants(location: &str, component: &ProviderComponent, config: &[(&str, &str)], credential: Option<&str>) -> Grants {
    let config: BTreeMap<String, String> = config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    grants_for(location, component.manifest(), config, credential.map(|c| SecretBytes::new(c.as_bytes().to_vec())))
        .expect("grants")
}

/// A path as a string.
pub fn s(path: &Path) -> String {
    path.to_str().expect("utf-8 path").to_owned()
}

/// A fresh directory under `parent`.
pub fn dir(parent: &Path, name: &str) -> PathBuf {
    let d = parent.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}
