//! A Kubernetes object being backed up or restored, and how Velero names its resource.

use serde_json::Value;

/// Kinds whose objects have no namespace.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace", "Node", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding",
    "CustomResourceDefinition", "PriorityClass", "VolumeSnapshotClass", "VolumeSnapshotContent", "CSIDriver",
    "CSINode", "IngressClass", "RuntimeClass", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "APIService",
];

/// Plurals that do not follow the English rules below.
const IRREGULAR_PLURALS: &[(&str, &str)] = &[("Endpoints", "endpoints"), ("PodSecurityPolicy", "podsecuritypolicies")];

/// The lower-case plural resource name of `kind`, as the API server names it.
pub fn plural(kind: &str) -> String {
    if let Some((_, p)) = IRREGULAR_PLURALS.iter().find(|(k, _)| *k == kind) {
        return (*p).to_owned();
    }
    let lower = kind.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix('y').filter(|s| !s.ends_with(['a', 'e', 'i', 'o', 'u'])) {
        format!("{stem}ies")
    } else if lower.ends_with('s') || lower.ends_with('x') || lower.ends_with("ch") || lower.ends_with("sh") {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    }
}

/// One object with everything needed to place it in a backup.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// `group/version`, or `version` for the core group.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// The API group (empty for core).
    pub group: String,
    /// The version.
    pub version: String,
    /// The plural resource name, e.g. `deployments`.
    pub resource: String,
    /// The namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
    /// The whole object.
    pub object: Value,
}

/// Why a document is not a usable object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ItemError(pub String);

/// A name that is safe as one path segment: a DNS subdomain or label, as Kubernetes requires.
pub fn safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s != "."
        && s != ".."
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
}

impl Item {
    /// Reads an object's identity. Namespaced kinds without a namespace get `default`, as the
    /// API server would give them.
    pub fn from_object(object: Value) -> Result<Item, ItemError> {
        let field = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
        let api_version = field("/apiVersion").ok_or_else(|| ItemError("an object has no apiVersion".into()))?;
        let kind = field("/kind").ok_or_else(|| ItemError(format!("an object of {api_version} has no kind")))?;
        let name = field("/metadata/name").ok_or_else(|| ItemError(format!("a {kind} has no metadata.name")))?;
        if !safe_segment(&name) {
            return Err(ItemError(format!("{kind} name {name:?} is not a valid Kubernetes name")));
        }
        // Every part of an object's identity becomes a path segment (in the tarball and in a
        // restore's target), so each must be one safe name.
        if kind.is_empty() || kind.len() > 63 || !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ItemError(format!("kind {kind:?} of {api_version} is not a valid Kubernetes kind")));
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), api_version.clone()),
        };
        if !(group.is_empty() || safe_segment(&group)) || !safe_segment(&version) || version.contains('.') {
            return Err(ItemError(format!("{kind} {name}: apiVersion {api_version:?} is not a valid group/version")));
        }
        let namespace = if CLUSTER_SCOPED.contains(&kind.as_str()) {
            None
        } else {
            let ns = field("/metadata/namespace").unwrap_or_else(|| "default".into());
            if !safe_segment(&ns) {
                return Err(ItemError(format!("{kind} {name}: namespace {ns:?} is not a valid Kubernetes name")));
            }
            Some(ns)
        };
        Ok(Item { resource: plural(&kind), api_version, kind, group, version, namespace, name, object })
    }

    /// `resource.group`, or `resource` for the core group: Velero's directory name.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() { self.resource.clone() } else { format!("{}.{}", self.resource, self.group) }
    }

    /// The object's labels.
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.object
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
    }

    /// `ns/name` or `name`, as in Velero's resource list.
    pub fn qualified_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plurals_and_groups() {
        assert_eq!(plural("Pod"), "pods");
        assert_eq!(plural("Ingress"), "ingresses");
        assert_eq!(plural("NetworkPolicy"), "networkpolicies");
        assert_eq!(plural("Gateway"), "gateways");
        assert_eq!(plural("Endpoints"), "endpoints");
        let d = Item::from_object(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}})).unwrap();
        assert_eq!((d.group_resource().as_str(), d.namespace.as_deref()), ("deployments.apps", Some("default")));
        let pv = Item::from_object(json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1", "namespace": "x"}})).unwrap();
        assert_eq!((pv.group_resource().as_str(), pv.namespace), ("persistentvolumes", None));
        for hostile in [
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "../x"}}),
            json!({"apiVersion": "v1", "kind": "../../escaped", "metadata": {"name": "x"}}),
            json!({"apiVersion": "v1", "kind": "Pod/x", "metadata": {"name": "x"}}),
            json!({"apiVersion": "../v1", "kind": "Pod", "metadata": {"name": "x"}}),
            json!({"apiVersion": "a/b/c", "kind": "Pod", "metadata": {"name": "x"}}),
            json!({"apiVersion": "..", "kind": "Pod", "metadata": {"name": "x"}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": ".."}}),
        ] {
            assert!(Item::from_object(hostile.clone()).is_err(), "{hostile}");
        }
    }
}
