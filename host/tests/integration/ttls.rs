//! Velero's TTL rules through the CLI and the API: a TTL of zero means the default, and a
//! TTL too long for a Go duration is refused at the boundary, naming the field.

use serde_json::json;

use crate::common::{Cli, dir, s};
use crate::server_api::Tenancy;
use crate::servers::http;

fn hours_between(backup: &serde_json::Value) -> i64 {
    let at = |field: &str| {
        let text = backup["status"][field].as_str().unwrap_or_else(|| panic!("{field} in {backup}"));
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    };
    (at("expiration") - at("startTimestamp")).whole_hours()
}

#[test]
fn a_zero_ttl_is_the_default_and_an_overlong_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(&tmp.path().join("data"));
    let src = dir(tmp.path(), "src");
    std::fs::write(src.join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n").unwrap();
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&dir(tmp.path(), "store"))), "--default"]);
    cli.ok(&["backup", "create", "zero", "--source", &s(&src), "--ttl", "0s", "--wait"]);
    let zero = cli.json(&["backup", "get", "zero"]);
    assert_eq!(zero["spec"]["ttl"], "720h0m0s", "{zero}");
    assert_eq!(hours_between(&zero), 720);
    let err = cli.fails(&["backup", "create", "long", "--source", &s(&src), "--ttl", "87600000h"]);
    assert!(err.contains("--ttl") && err.contains("longer than the largest allowed, 2562047h47m16"), "{err}");
    let err = cli.fails(&["schedule", "create", "long", "--schedule", "@daily", "--source", &s(&src), "--ttl", "87600000h"]);
    assert!(err.contains("--ttl"), "{err}");
}

#[test]
fn the_server_applies_its_default_ttl_and_refuses_overlong_ones_with_422() {
    let tmp = tempfile::tempdir().unwrap();
    let Tenancy { cli, home, server, token, .. } = Tenancy::start(tmp.path(), &["--default-backup-ttl", "24h"]);
    let src = dir(&home, "src");
    std::fs::write(src.join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n").unwrap();
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&dir(&home, "store"))), "--default"]);
    cli.ok(&["backup", "create", "zero", "--source", "src", "--ttl", "0s", "--wait"]);
    let zero = cli.json(&["backup", "get", "zero"]);
    assert_eq!(hours_between(&zero), 24);
    assert_eq!(zero["metadata"]["annotations"]["coffer.io/source-directory"], "src", "no host path shown to the tenant: {zero}");
    let url = &server.server.url;
    for (path, object) in [
        ("/v1/backups", json!({"metadata": {"name": "long", "annotations": {"coffer.io/source-directory": "src"}}, "spec": {"ttl": "87600000h"}})),
        ("/v1/schedules", json!({"metadata": {"name": "long", "annotations": {"coffer.io/source-directory": "src"}}, "spec": {"schedule": "@daily", "template": {"ttl": "87600000h"}}})),
    ] {
        let (status, body) = http("POST", &format!("{url}{path}"), Some(&token), Some(&object));
        assert!(status == 422 && body.contains("ttl") && body.contains("longer than the largest allowed"), "{path}: {status} {body}");
    }
    let (status, _) = http("GET", &format!("{url}/healthz"), None, None);
    assert_eq!(status, 200);
}

#[test]
fn a_controller_period_shorter_than_the_tick_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["server", "--listen", "127.0.0.1:0", "--metrics-listen", "off", "--controller-tick", "1s", "--garbage-collection-frequency", "500ms"])
        .env("COFFER_DATA_DIR", tmp.path().join("data"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--garbage-collection-frequency 500ms is shorter than --controller-tick 1s"), "{err}");
}
