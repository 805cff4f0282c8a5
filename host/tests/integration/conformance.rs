//! The provider contract's conformance suite, `coffer::conformance` (what `coffer plugin test`
//! runs), as the first-party providers' tests run it.

use std::collections::BTreeMap;

use coffer::conformance::{self, ObjectStoreTarget, Outcome, Report, Subject, Targets};
use coffer::locations::object_store_config;
use coffer::sandbox::{ProviderComponent, Sandbox};
use coffer::secret::SecretBytes;

/// Whether the suite round-trips 1 GiB (unless `COFFER_CONFORMANCE_LARGE=0`).
pub fn large() -> bool {
    std::env::var("COFFER_CONFORMANCE_LARGE").map_or(true, |v| v != "0")
}

/// Runs every object-store check on `component` with `config` and `credential` in `bucket`
/// (with the 1 GiB round trip if `large`), and asserts that none failed and that the checks
/// skipped were the 1 GiB one (when not `large`) and `skips`.
pub async fn object_store_conformance(
    sandbox: &Sandbox,
    component: &ProviderComponent,
    config: &[(&str, &str)],
    credential: Option<&str>,
    bucket: &str,
    large: bool,
    skips: &[&str],
) -> Report {
    let config: BTreeMap<String, String> = config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let config = object_store_config(config, bucket, "", None);
    let subject = Subject {
        sandbox: sandbox.clone(),
        component: component.clone(),
        location: format!("conformance of {}", component.manifest().name),
        config,
        credential: credential.map(|c| SecretBytes::new(c.as_bytes().to_vec())),
    };
    let target = ObjectStoreTarget { bucket: bucket.into(), prefix: String::new(), large, force: false };
    let targets = Targets { object_store: Some(target), ..Targets::default() };
    let report = conformance::run(&subject, &targets, &mut |_| {}).await.expect("the suite runs");
    let failed: Vec<_> = report.checks.iter().filter(|c| matches!(c.outcome, Outcome::Fail { .. })).collect();
    assert!(failed.is_empty(), "{} failed: {failed:#?}", component.manifest().name);
    let skipped: Vec<&str> = report.checks.iter().filter(|c| matches!(c.outcome, Outcome::Skip { .. })).map(|c| c.name).collect();
    let mut expected: Vec<&str> = if large { Vec::new() } else { vec!["round-trip-1GiB"] };
    expected.extend(skips);
    assert_eq!(skipped, expected, "{}: {:#?}", component.manifest().name, report.checks);
    report
}
