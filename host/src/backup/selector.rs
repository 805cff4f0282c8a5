//! Label selectors: parsing `--selector` and matching items.

use crate::model::{LabelSelector, LabelSelectorRequirement};

/// Parses `app=web,tier!=db,env in (a,b),!legacy,owner` into a selector.
pub fn parse_selector(text: &str) -> Result<LabelSelector, String> {
    let mut selector = LabelSelector::default();
    let mut parts = Vec::new();
    let (mut depth, mut current) = (0, String::new());
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let req = |key: &str, operator: &str, values: Vec<String>| LabelSelectorRequirement {
            key: key.trim().to_owned(),
            operator: operator.to_owned(),
            values,
        };
        let set_values = |rest: &str| -> Result<Vec<String>, String> {
            let inner = rest.trim().strip_prefix('(').and_then(|r| r.strip_suffix(')')).ok_or_else(|| format!("{part:?}: expected (values)"))?;
            Ok(inner.split(',').map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).collect())
        };
        if let Some((k, v)) = part.split_once("!=") {
            selector.match_expressions.push(req(k, "NotIn", vec![v.trim().to_owned()]));
        } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            selector.match_labels.insert(k.trim().to_owned(), v.trim().to_owned());
        } else if let Some((k, rest)) = part.split_once(" notin ") {
            selector.match_expressions.push(req(k, "NotIn", set_values(rest)?));
        } else if let Some((k, rest)) = part.split_once(" in ") {
            selector.match_expressions.push(req(k, "In", set_values(rest)?));
        } else if let Some(k) = part.strip_prefix('!') {
            selector.match_expressions.push(req(k, "DoesNotExist", vec![]));
        } else if part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/')) {
            selector.match_expressions.push(req(part, "Exists", vec![]));
        } else {
            return Err(format!("{part:?} is not a label selector requirement"));
        }
    }
    Ok(selector)
}

/// Whether labels `labels` satisfy `selector`.
pub fn matches<'a>(selector: &LabelSelector, labels: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> bool {
    let get = |key: &str| labels.clone().find(|(k, _)| *k == key).map(|(_, v)| v);
    selector.match_labels.iter().all(|(k, v)| get(k) == Some(v.as_str()))
        && selector.match_expressions.iter().all(|r| {
            let value = get(&r.key);
            match r.operator.as_str() {
                "In" => value.is_some_and(|v| r.values.iter().any(|x| x == v)),
                "NotIn" => value.is_none_or(|v| !r.values.iter().any(|x| x == v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let s = parse_selector("app=web,tier!=db,env in (prod, staging),!legacy,owner").unwrap();
        let labels = [("app", "web"), ("env", "prod"), ("owner", "me")];
        assert!(matches(&s, labels.iter().copied()));
        assert!(!matches(&s, [("app", "web"), ("env", "dev"), ("owner", "me")].iter().copied()));
        assert!(!matches(&s, [("app", "web"), ("env", "prod"), ("owner", "me"), ("legacy", "1")].iter().copied()));
        assert!(!matches(&s, [("app", "web"), ("env", "prod")].iter().copied()));
        assert!(parse_selector("a in b").is_err());
    }
}
