//! Which items a backup includes or a restore writes: namespaces, resources and labels, as
//! Velero filters them.

use std::collections::HashSet;

use serde_json::Value;

use super::item::Item;
use super::selector;
use crate::model::ResourceFilters;

/// `*` matches any run of characters; everything else literally.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            text.starts_with(head) && (0..=text.len() - head.len()).any(|i| glob(rest, &text[head.len() + i..]))
        }
    }
}

fn all(list: &[String]) -> bool {
    list.is_empty() || list.iter().any(|x| x == "*")
}

/// Checks Velero's rules for an include/exclude pair; the problem, if any.
fn check_lists(what: &str, included: &[String], excluded: &[String]) -> Option<String> {
    if included.len() > 1 && included.iter().any(|x| x == "*") {
        return Some(format!("Invalid included/excluded {what} lists: includes list must either contain '*' only, or a non-empty list of items"));
    }
    if excluded.iter().any(|x| x == "*") {
        return Some(format!("Invalid included/excluded {what} lists: excludes list cannot contain '*'"));
    }
    excluded.iter().find(|x| included.contains(x)).map(|x| {
        format!("Invalid included/excluded {what} lists: excludes list cannot contain an item in the includes list: {x}")
    })
}

/// The validation errors of a spec's filters.
pub fn validate_filters(spec: &ResourceFilters) -> Vec<String> {
    let mut errors = Vec::new();
    errors.extend(check_lists("resource", &spec.included_resources, &spec.excluded_resources));
    errors.extend(check_lists("namespace", &spec.included_namespaces, &spec.excluded_namespaces));
    errors
}

/// Whether `pattern` names `item`'s resource: plural, `plural.group`, kind or `kind.group`.
fn names_resource(pattern: &str, item: &Item) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let kind = item.kind.to_ascii_lowercase();
    let with_group = |s: &str| if item.group.is_empty() { s.to_owned() } else { format!("{s}.{}", item.group) };
    [item.resource.clone(), item.group_resource(), kind.clone(), with_group(&kind)].iter().any(|n| glob(&pattern, n))
}

/// A spec's filters, ready to apply.
pub struct Filter<'a> {
    spec: &'a ResourceFilters,
}

impl<'a> Filter<'a> {
    /// The filters of `spec` (assumed valid).
    pub fn new(spec: &'a ResourceFilters) -> Self {
        Filter { spec }
    }

    /// Whether namespace `ns` is included.
    pub fn namespace(&self, ns: &str) -> bool {
        let s = self.spec;
        (all(&s.included_namespaces) || s.included_namespaces.iter().any(|p| glob(p, ns)))
            && !s.excluded_namespaces.iter().any(|p| glob(p, ns))
    }

    fn resource(&self, item: &Item) -> bool {
        let s = self.spec;
        (all(&s.included_resources) || s.included_resources.iter().any(|p| names_resource(p, item)))
            && !s.excluded_resources.iter().any(|p| names_resource(p, item))
    }

    fn labels(&self, item: &Item) -> bool {
        self.spec.label_selector.as_ref().is_none_or(|sel| selector::matches(sel, item.labels()))
    }

    /// The PersistentVolume that `item` binds, when it is an included PersistentVolumeClaim.
    pub fn claimed_volume(&self, item: &Item) -> Option<String> {
        let included = item.kind == "PersistentVolumeClaim"
            && self.resource(item)
            && self.labels(item)
            && item.namespace.as_deref().is_some_and(|ns| self.namespace(ns));
        included.then(|| item.object.pointer("/spec/volumeName").and_then(Value::as_str).map(str::to_owned)).flatten()
    }

    /// Whether `item` is included. Cluster-scoped items are included when every namespace
    /// is; otherwise only namespaces that are included, and PersistentVolumes claimed from
    /// one ([`Inclusion::IfClaimed`]), as Velero does.
    pub fn inclusion(&self, item: &Item) -> Inclusion {
        if !self.resource(item) || (item.kind != "Namespace" && !self.labels(item)) {
            return Inclusion::No;
        }
        let all_namespaces = all(&self.spec.included_namespaces) && self.spec.excluded_namespaces.is_empty();
        let in_scope = match (&item.namespace, item.kind.as_str()) {
            (Some(ns), _) => self.namespace(ns),
            (None, "Namespace") => self.namespace(&item.name),
            (None, "PersistentVolume") if !all_namespaces => return Inclusion::IfClaimed,
            (None, _) => all_namespaces,
        };
        if in_scope { Inclusion::Yes } else { Inclusion::No }
    }

    /// The included items of `items`.
    pub fn apply(&self, items: Vec<Item>) -> Vec<Item> {
        let claimed: HashSet<String> = items.iter().filter_map(|i| self.claimed_volume(i)).collect();
        items.into_iter().filter(|item| self.inclusion(item).given(&claimed, &item.name)).collect()
    }
}

/// Whether an item is included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inclusion {
    /// It is.
    Yes,
    /// It is not.
    No,
    /// A PersistentVolume, included when an included claim binds it.
    IfClaimed,
}

impl Inclusion {
    /// Whether the item named `name` is included, given the volumes that included claims bind.
    pub fn given(self, claimed: &HashSet<String>, name: &str) -> bool {
        match self {
            Inclusion::Yes => true,
            Inclusion::No => false,
            Inclusion::IfClaimed => claimed.contains(name),
        }
    }
}

/// Resources a restore never writes, added to every restore's excluded resources as Velero
/// does (`pkg/controller/restore_controller.go`, `nonRestorableResources`).
pub const NON_RESTORABLE: &[&str] = &[
    "nodes",
    "events",
    "events.events.k8s.io",
    "backups.velero.io",
    "restores.velero.io",
    "resticrepositories.velero.io",
    "csinodes.storage.k8s.io",
    "volumeattachments.storage.k8s.io",
    "backuprepositories.velero.io",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(api: &str, kind: &str, ns: Option<&str>, name: &str, labels: Value) -> Item {
        let mut meta = json!({"name": name, "labels": labels});
        if let Some(ns) = ns {
            meta["namespace"] = json!(ns);
        }
        Item::from_object(json!({"apiVersion": api, "kind": kind, "metadata": meta})).unwrap()
    }

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("kube-*", "kube-system"));
        assert!(!glob("kube-*", "default"));
        assert!(glob("a*c*e", "abcde"));
    }

    #[test]
    fn namespaces_resources_and_labels() {
        let items = vec![
            item("v1", "Pod", Some("a"), "p1", json!({"app": "web"})),
            item("v1", "Pod", Some("b"), "p2", json!({"app": "db"})),
            item("apps/v1", "Deployment", Some("a"), "d1", json!({"app": "web"})),
            item("v1", "Namespace", None, "a", json!({})),
            item("storage.k8s.io/v1", "StorageClass", None, "fast", json!({})),
        ];
        let names = |spec: &ResourceFilters| -> Vec<String> { Filter::new(spec).apply(items.clone()).iter().map(|i| i.qualified_name()).collect() };
        assert_eq!(names(&ResourceFilters::default()).len(), 5);
        let spec = ResourceFilters { included_namespaces: vec!["a".into()], ..Default::default() };
        assert_eq!(names(&spec), ["a/p1", "a/d1", "a"], "cluster-scoped items only with all namespaces");
        let spec = ResourceFilters { included_resources: vec!["deployments.apps".into()], ..Default::default() };
        assert_eq!(names(&spec), ["a/d1"]);
        let spec = ResourceFilters { excluded_resources: vec!["pods".into(), "storageclasses.storage.k8s.io".into()], ..Default::default() };
        assert_eq!(names(&spec), ["a/d1", "a"]);
        let spec = ResourceFilters { label_selector: Some(selector::parse_selector("app=web").unwrap()), ..Default::default() };
        assert_eq!(names(&spec), ["a/p1", "a/d1", "a"]);
        let bad = ResourceFilters { included_namespaces: vec!["a".into()], excluded_namespaces: vec!["a".into()], ..Default::default() };
        assert_eq!(
            validate_filters(&bad),
            ["Invalid included/excluded namespace lists: excludes list cannot contain an item in the includes list: a"]
        );
    }
}
