//! Strict parsing of a location's config map.

use std::collections::BTreeMap;

use crate::Error;

/// Keys the host injects into every object store's config (as Velero does).
pub const OBJECT_STORE_INJECTED_KEYS: &[&str] = &["bucket", "prefix", "caCert"];

/// A location's config, checked against the keys a provider accepts.
///
/// Unknown keys, duplicate keys and missing required keys are errors naming the key, so a typo
/// such as `regoin=us-east-1` fails loudly instead of being ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    entries: BTreeMap<String, String>,
}

impl Config {
    /// Parses `entries`, accepting only `valid_keys`.
    pub fn parse(entries: Vec<(String, String)>, valid_keys: &[&str]) -> Result<Self, Error> {
        let mut map = BTreeMap::new();
        for (key, value) in entries {
            if !valid_keys.contains(&key.as_str()) {
                let mut valid: Vec<&str> = valid_keys.to_vec();
                valid.sort_unstable();
                return Err(Error::invalid_config(
                    &key,
                    format!("unknown key; valid keys are [{}]", valid.join(", ")),
                ));
            }
            if map.contains_key(&key) {
                return Err(Error::invalid_config(&key, "given more than once"));
            }
            map.insert(key, value);
        }
        Ok(Config { entries: map })
    }

    /// A config already checked elsewhere, taken as it is: the source location's config that
    /// `copy-snapshot` passes, which that location's own instance checked when it started. A
    /// key given twice keeps its last value.
    pub fn from_checked(entries: Vec<(String, String)>) -> Self {
        Config { entries: entries.into_iter().collect() }
    }

    /// Parses an object store's config: `valid_keys` plus the injected `bucket`, `prefix` and
    /// `caCert`.
    pub fn parse_object_store(entries: Vec<(String, String)>, valid_keys: &[&str]) -> Result<Self, Error> {
        let keys: Vec<&str> = valid_keys.iter().chain(OBJECT_STORE_INJECTED_KEYS).copied().collect();
        Self::parse(entries, &keys)
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// The value of `key`, or an error naming it.
    pub fn require(&self, key: &str) -> Result<&str, Error> {
        match self.get(key) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(Error::invalid_config(key, "required but not set")),
        }
    }

    /// `key` as a boolean (`true`/`false`), `None` when unset.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, Error> {
        self.get(key)
            .map(|v| match v {
                "true" | "True" | "TRUE" | "1" => Ok(true),
                "false" | "False" | "FALSE" | "0" => Ok(false),
                other => Err(Error::invalid_config(key, format!("expected true or false, got {other:?}"))),
            })
            .transpose()
    }

    /// `key` parsed as `T`, `None` when unset.
    pub fn parsed<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, Error>
    where
        T::Err: std::fmt::Display,
    {
        self.get(key)
            .map(|v| v.parse::<T>().map_err(|e| Error::invalid_config(key, format!("{v:?}: {e}"))))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn unknown_key_is_named_with_the_valid_ones() {
        let err = Config::parse(entries(&[("regoin", "x")]), &["region", "profile"]).unwrap_err();
        assert_eq!(
            err,
            Error::invalid_config("regoin", "unknown key; valid keys are [profile, region]")
        );
    }

    #[test]
    fn object_store_accepts_injected_keys() {
        let c = Config::parse_object_store(entries(&[("bucket", "b"), ("prefix", "p"), ("root", "/r")]), &["root"])
            .unwrap();
        assert_eq!(c.get("bucket"), Some("b"));
        assert_eq!(c.require("root").unwrap(), "/r");
    }

    #[test]
    fn duplicate_and_missing_keys_are_named() {
        let err = Config::parse(entries(&[("a", "1"), ("a", "2")]), &["a"]).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { ref key, .. } if key == "a"));
        let c = Config::parse(vec![], &["a"]).unwrap();
        assert_eq!(c.require("a").unwrap_err(), Error::invalid_config("a", "required but not set"));
    }

    #[test]
    fn bools_and_numbers_name_the_key_on_bad_values() {
        let c = Config::parse(entries(&[("flag", "yes"), ("n", "x")]), &["flag", "n"]).unwrap();
        assert!(matches!(c.bool("flag"), Err(Error::InvalidConfig { ref key, .. }) if key == "flag"));
        assert!(matches!(c.parsed::<u64>("n"), Err(Error::InvalidConfig { ref key, .. }) if key == "n"));
        assert_eq!(c.bool("missing").unwrap(), None);
    }
}
