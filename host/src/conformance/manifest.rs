//! The checks every provider kind shares: its description is stable, the config grants what
//! it asks for, and what it asks for is coherent with that config.

use std::collections::BTreeMap;

use super::Subject;
use super::record::{Failure, Recorder};
use crate::confine::PathRoot;
use crate::sandbox::{Endpoint, Grants, Manifest, grants_for};

/// Runs `describe-stable`, `grants` and `manifest-coherent`; the grants when they were made.
pub(super) async fn check_manifest(subject: &Subject, rec: &mut Recorder<'_>) -> Option<Grants> {
    let manifest = subject.component.manifest();
    rec.check("describe-stable", async {
        let again = subject.sandbox.describe_again(&subject.component).await.map_err(|e| Failure::new("describe to answer again", e))?;
        if &again == manifest {
            return Ok(());
        }
        let shown = |m: &Manifest| serde_json::to_string(m).unwrap_or_default();
        Err(Failure::new("the same manifest on every call", format!("{} and then {}", shown(manifest), shown(&again))))
    })
    .await;

    let mut grants = None;
    rec.check("grants", async {
        let made = grants_for(&subject.location, manifest, subject.config.clone(), subject.credential.clone(), &PathRoot::Anywhere)
            .map_err(|e| Failure::new("the config to grant every directory and endpoint the manifest asks for", e))?;
        grants = Some(made);
        Ok(())
    })
    .await;

    rec.check("manifest-coherent", async {
        incoherence(manifest, &subject.config, grants.as_ref()).map_or(Ok(()), |got| {
            Err(Failure::new(
                "distinct mount points, no key both a directory and an endpoint, well-formed templates, and a grant for every URL in the config",
                got,
            ))
        })
    })
    .await;
    grants
}

/// What in `manifest` does not fit together or with `config`, if anything.
fn incoherence(manifest: &Manifest, config: &BTreeMap<String, String>, grants: Option<&Grants>) -> Option<String> {
    let mut mounts = std::collections::BTreeSet::new();
    for d in &manifest.directories {
        if !mounts.insert(d.guest_path.as_str()) {
            return Some(format!("two directories are mounted at {}", d.guest_path));
        }
        if manifest.endpoint_keys.contains(&d.config_key) {
            return Some(format!("config key {:?} is both a directory and an endpoint", d.config_key));
        }
    }
    for template in &manifest.endpoint_templates {
        if let Some(bad) = malformed(template) {
            return Some(format!("endpoint template {template:?} {bad}"));
        }
    }
    // A URL the location configures that the manifest does not let the provider reach is a
    // location that cannot work.
    let grants = grants?;
    for (key, value) in config {
        let Some(endpoint) = url::Url::parse(value).ok().as_ref().and_then(Endpoint::of) else { continue };
        if !grants.endpoints.contains(&endpoint) {
            return Some(format!(
                "config key {key:?} holds the URL {value:?}, but the manifest grants no access to {endpoint} (add {key:?} to its endpoint keys)"
            ));
        }
    }
    None
}

/// What is wrong with the `{key}` placeholders of `template`, if anything.
fn malformed(template: &str) -> Option<&'static str> {
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Some("has a '}' without its '{'");
        }
        let Some(close) = rest[open..].find('}') else { return Some("has a '{' without its '}'") };
        let key = &rest[open + 1..open + close];
        if key.is_empty() || key.contains('{') {
            return Some("has a placeholder that names no key");
        }
        rest = &rest[open + close + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            name: "example.com/x".into(),
            description: String::new(),
            directories: Vec::new(),
            endpoint_keys: vec!["url".into()],
            endpoint_templates: vec!["https://{account}.example.com".into()],
        }
    }

    #[test]
    fn templates_must_name_their_keys() {
        assert_eq!(malformed("https://{a}.x/{b}"), None);
        assert!(malformed("https://{a.x").is_some());
        assert!(malformed("https://a}.x").is_some());
        assert!(malformed("https://{}.x").is_some());
        assert!(malformed("https://{{a}}.x").is_some());
    }

    #[test]
    fn a_url_in_the_config_must_be_granted() {
        let config: BTreeMap<String, String> =
            [("url", "http://127.0.0.1:9000"), ("other", "http://127.0.0.1:9001")].map(|(k, v)| (k.into(), v.into())).into();
        let grants = grants_for("l", &manifest(), config.clone(), None, &PathRoot::Anywhere).unwrap();
        let found = incoherence(&manifest(), &config, Some(&grants)).unwrap();
        assert!(found.contains("\"other\"") && found.contains("127.0.0.1:9001"), "{found}");
        let config: BTreeMap<String, String> = [("url".to_owned(), "http://127.0.0.1:9000".to_owned())].into();
        assert_eq!(incoherence(&manifest(), &config, Some(&grants)), None);
    }
}
