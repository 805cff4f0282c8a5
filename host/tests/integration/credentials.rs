//! Which credential reaches which location's provider.

use coffer::coffer::Coffer;
use coffer::locations::{self, NewBackupStorageLocation};
use coffer::model::SecretKeySelector;
use coffer::sandbox::Limits;
use coffer::secrets;

use crate::common::{s, test_component};

async fn credential_seen_by(coffer: &Coffer, name: &str) -> Vec<u8> {
    let bsl = locations::get_backup_storage_locations(coffer, "velero", &[name.to_owned()], false).unwrap().remove(0);
    let mut store = locations::object_store_for(coffer, &bsl).await.unwrap();
    store.get_bytes("b", "credential", 16 << 20).await.unwrap()
}

fn probe_bsl(name: &str, credential: Option<(&str, &str)>) -> NewBackupStorageLocation {
    NewBackupStorageLocation {
        name: name.into(),
        provider: "coffer.test/probe".into(),
        bucket: "b".into(),
        credential: credential.map(|(n, k)| SecretKeySelector { name: n.into(), key: k.into() }),
        ..Default::default()
    }
}

#[tokio::test]
async fn each_location_gets_its_own_or_the_default_credential() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = tmp.path().join("probe.wasm");
    std::fs::write(&wasm, test_component("probe")).unwrap();
    let coffer = Coffer::open(&tmp.path().join("data"), Limits::default()).await.unwrap();
    let sandbox = coffer.sandbox.clone();
    coffer.registry.add(&sandbox, &wasm, &coffer.state).await.unwrap();
    assert!(s(&wasm).ends_with("probe.wasm"));

    locations::create_backup_storage_location(&coffer, "velero", probe_bsl("nocred", None)).await.unwrap();
    assert_eq!(credential_seen_by(&coffer, "nocred").await, b"<none>", "no default credential yet");

    secrets::create_secret(&coffer, "velero", "cloud-credentials", vec![("cloud".into(), b"DEFAULT".to_vec())]).unwrap();
    secrets::create_secret(&coffer, "velero", "team-a", vec![("bsl".into(), b"A".to_vec()), ("other".into(), b"X".to_vec())]).unwrap();
    secrets::create_secret(&coffer, "velero", "team-b", vec![("bsl".into(), b"B".to_vec())]).unwrap();
    locations::create_backup_storage_location(&coffer, "velero", probe_bsl("a", Some(("team-a", "bsl")))).await.unwrap();
    locations::create_backup_storage_location(&coffer, "velero", probe_bsl("b", Some(("team-b", "bsl")))).await.unwrap();

    assert_eq!(credential_seen_by(&coffer, "a").await, b"A", "only its own key, not the secret's other keys");
    assert_eq!(credential_seen_by(&coffer, "b").await, b"B");
    assert_eq!(credential_seen_by(&coffer, "nocred").await, b"DEFAULT");

    // Another namespace (tenant) sees neither the locations nor the secrets.
    assert!(locations::get_backup_storage_locations(&coffer, "other", &[], false).unwrap().is_empty());
    let err = locations::create_backup_storage_location(&coffer, "other", probe_bsl("a", Some(("team-a", "bsl"))))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("secret \"team-a\" not found"), "{err}");
}
