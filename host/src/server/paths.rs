//! Paths a tenant names (backup sources, restore targets) are relative to the tenant's own
//! directory on the server and may not leave it, through `..` or through symbolic links.

use std::path::{Component, Path, PathBuf};

use super::error::ApiError;

/// `relative` inside `root` (canonical). The deepest part that exists must resolve inside
/// `root`; what does not exist yet is made of plain names.
pub fn within(root: &Path, field: &str, relative: &str) -> Result<PathBuf, ApiError> {
    let rel = Path::new(relative);
    let outside = || ApiError::bad_request(format!("{field} {relative:?} must be a path inside the tenant's directory (relative, without '..')"));
    if rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(outside());
    }
    let path = root.join(rel);
    let mut existing = path.as_path();
    while !existing.exists() {
        existing = existing.parent().ok_or_else(outside)?;
    }
    let resolved = existing.canonicalize().map_err(|e| ApiError::bad_request(format!("{field} {relative:?}: {e}")))?;
    if !resolved.starts_with(root) {
        return Err(outside());
    }
    Ok(resolved.join(path.strip_prefix(existing).unwrap_or(Path::new(""))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_tenant_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("src")).unwrap();
        assert_eq!(within(&root, "source", "src").unwrap(), root.join("src"));
        assert_eq!(within(&root, "target", "out/new").unwrap(), root.join("out/new"));
        for bad in ["/etc", "../other", "src/../../x", ""] {
            if bad.is_empty() {
                assert_eq!(within(&root, "source", bad).unwrap(), root);
                continue;
            }
            let err = within(&root, "source", bad).unwrap_err();
            assert!(err.message.contains("inside the tenant's directory"), "{bad}: {}", err.message);
        }
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        assert!(within(&root, "source", "escape").is_err());
        assert!(within(&root, "target", "escape/new").is_err());
    }
}
