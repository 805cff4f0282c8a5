//! Confinement in the library, with no server in front: a hostile tenant names paths outside
//! its tree, through `..`, absolute paths and symbolic links it planted inside its tree, as a
//! backup source, a restore target, a location's directory and a download file. Each is
//! refused, nothing outside the tree changes, and the tenant's own work goes on.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use coffer::api::{ApiError, Host, LocalTenant, TenantApi};
use coffer::backup::{SOURCE_ANNOTATION, TARGET_ANNOTATION};
use coffer::coffer::Coffer;
use coffer::model::{API_VERSION, Backup, BackupMeta, ObjectMeta, Phase, Restore, RestoreSpec};
use coffer::sandbox::Limits;

use crate::common::{dir, filesystem_bsl, s};
use crate::host_hardening::tree;

fn meta(name: &str, key: &str, path: &str) -> BackupMeta {
    BackupMeta { meta: ObjectMeta::new("acme", name), annotations: BTreeMap::from([(key.to_owned(), path.to_owned())]) }
}

fn backup(name: &str, source: &str) -> Backup {
    Backup { api_version: API_VERSION.into(), kind: "Backup".into(), metadata: meta(name, SOURCE_ANNOTATION, source), spec: Default::default(), status: Default::default() }
}

fn restore(name: &str, target: &str) -> Restore {
    let spec = RestoreSpec { backup_name: "good".into(), ..Default::default() };
    Restore { api_version: API_VERSION.into(), kind: "Restore".into(), metadata: meta(name, TARGET_ANNOTATION, target), spec, status: Default::default() }
}

fn refused_as_outside(what: &str, result: Result<impl std::fmt::Debug, ApiError>) {
    let err = result.expect_err(what);
    assert!(err.message.contains("outside") || err.message.contains("inside the tenant's directory"), "{what}: {err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_handle_refuses_every_path_outside_its_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let mut coffer = Coffer::open(&tmp.path().join("data"), Limits::default()).await.unwrap();
    coffer.confine_tenants(&tmp.path().join("tenants")).unwrap();
    let coffer = Arc::new(coffer);
    let tenant = coffer.tenant("acme").unwrap();
    let home = tmp.path().join("tenants/acme").canonicalize().unwrap();
    let api = LocalTenant::new(coffer.clone(), tenant.clone(), BTreeMap::new(), Host::Command);

    // What lies outside: another tenant's tree, with manifests and a store worth stealing.
    let outside = tmp.path().join("tenants/globex");
    std::fs::write(dir(&outside, "manifests").join("secret.yaml"), "apiVersion: v1\nkind: Secret\nmetadata: {name: crown-jewels}\n").unwrap();
    dir(&outside, "store");
    dir(&outside, "restored");
    // The links the attacker plants inside its own tree.
    std::os::unix::fs::symlink(outside.join("manifests"), home.join("to-manifests")).unwrap();
    std::os::unix::fs::symlink(&outside, home.join("to-globex")).unwrap();
    std::os::unix::fs::symlink("../globex/restored", home.join("relative-out")).unwrap();
    let before = tree(&outside);

    // Its own work goes through the same handle.
    let store = dir(&home, "store");
    api.create_backup_storage_location(filesystem_bsl("default", &store).build("acme").unwrap()).await.unwrap();
    std::fs::write(dir(&home, "src").join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n").unwrap();
    let good = api.create_backup(backup("good", "src"), None).await.unwrap();
    assert_eq!(good.status.phase, Some(Phase::Completed), "{good:?}");

    // Backup sources.
    let out_abs = s(&outside.join("manifests"));
    for (name, source) in [("dots", "../globex/manifests"), ("abs", out_abs.as_str()), ("link", "to-manifests"), ("link-below", "to-globex/manifests")] {
        refused_as_outside(&format!("source {source}"), api.create_backup(backup(name, source), None).await);
    }
    // Restore targets: refused, or failed validation naming the target; never written.
    let out_restored = s(&outside.join("restored"));
    for (name, target) in [("r-dots", "../globex/restored"), ("r-abs", out_restored.as_str()), ("r-link", "relative-out"), ("r-link-below", "to-globex/restored/x")] {
        match api.create_restore(restore(name, target), None).await {
            Err(e) => assert!(e.message.contains("outside"), "target {target}: {e:?}"),
            Ok(r) => assert!(
                r.status.phase == Some(Phase::FailedValidation) && r.status.validation_errors.iter().any(|e| e.contains("outside")),
                "target {target}: {r:?}"
            ),
        }
    }
    // Location directories.
    for (name, root) in [("l-abs", outside.join("store")), ("l-link", home.join("to-globex/store")), ("l-dots", home.join("../globex/store"))] {
        let object = coffer::locations::NewBackupStorageLocation { default: false, ..filesystem_bsl(name, &root) }.build("acme").unwrap();
        let err = api.create_backup_storage_location(object).await.expect_err(name);
        assert!(err.message.contains("outside"), "{name}: {err:?}");
    }
    // Download files.
    for path in ["../globex/stolen.tar.gz", "to-globex/stolen.tar.gz", &s(&outside.join("stolen.tar.gz"))] {
        let err = tenant.paths().create_file("the download file", Path::new(path), true).expect_err(path);
        assert!(err.to_string().contains("outside"), "{path}: {err}");
    }

    assert_eq!(tree(&outside), before, "nothing outside the tenant's tree changed");
    // Inside, all of it works.
    let restored = api.create_restore(restore("inside", "out"), None).await.unwrap();
    assert_eq!(restored.status.phase, Some(Phase::Completed), "{restored:?}");
    assert!(home.join("out/resources/configmaps/namespaces/shop/c.json").exists());
    tenant.paths().create_file("the download file", Path::new("good.tar.gz"), false).unwrap();
    assert!(home.join("good.tar.gz").exists());
}
