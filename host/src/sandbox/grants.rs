//! Turning a location into the capabilities of its provider instance. Everything a provider
//! instance may touch is decided here, by [`grants_for`], and nowhere else.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::fs::Dir;

use thiserror::Error;
use url::Url;

use super::manifest::Manifest;
use super::network::Reach;
use super::quota::Quota;
use super::tls::TlsOptions;
use crate::confine::{PathError, PathRoot};
use crate::disk::SpaceReserve;
use crate::secret::SecretBytes;

/// A directory of the host mounted into the instance: opened once, when the grants are
/// made, and mounted from that handle, so that renaming or replacing the path afterwards
/// changes nothing the instance sees.
#[derive(Debug, Clone)]
pub struct DirectoryGrant {
    /// The host directory as configured (for messages).
    pub host: PathBuf,
    /// The directory, open.
    pub dir: Arc<Dir>,
    /// Where the instance sees it.
    pub guest: String,
    /// Whether the instance may write there.
    pub writable: bool,
}

/// An HTTP origin the instance may send requests to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: String,
    /// Host name or IP literal, lower case, IPv6 in brackets.
    pub host: String,
    /// Port, explicit or the scheme's default.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

impl Endpoint {
    /// The origin of `url`, if it is an http(s) URL with a host.
    pub fn of(url: &Url) -> Option<Endpoint> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        Some(Endpoint {
            scheme: scheme.to_owned(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }
}

/// Everything one provider instance is granted. Built only by [`grants_for`].
#[derive(Debug, Clone)]
pub struct Grants {
    /// Who the instance serves, for messages and logs, e.g. `backup-location "default"`.
    pub location: String,
    /// The config delivered through `init`.
    pub config: BTreeMap<String, String>,
    /// The credential delivered through `init`.
    pub credential: Option<SecretBytes>,
    /// Host directories mounted into the instance.
    pub directories: Vec<DirectoryGrant>,
    /// HTTP origins the instance may reach.
    pub endpoints: Vec<Endpoint>,
    /// How its HTTPS is verified.
    pub tls: TlsOptions,
    /// Its tenant's limits and call cap.
    pub quota: Quota,
    /// Which addresses its connections may reach.
    pub reach: Reach,
    /// The free space its writes must leave on the host's data disk, when one of its
    /// directories is there.
    pub space: Option<Arc<SpaceReserve>>,
}

impl Grants {
    /// Grants nothing at all: used to ask a component for its manifest.
    pub(crate) fn none(location: impl Into<String>) -> Grants {
        Grants {
            location: location.into(),
            config: BTreeMap::new(),
            credential: None,
            directories: Vec::new(),
            endpoints: Vec::new(),
            tls: TlsOptions::default(),
            quota: Quota::default(),
            reach: Reach::default(),
            space: None,
        }
    }
}

/// Where a `copy-snapshot` call sees the source location's directories.
pub const SOURCE_MOUNT: &str = "/source";

impl Grants {
    /// These grants, plus `source`'s directories mounted read-only under [`SOURCE_MOUNT`], for
    /// an instance that copies snapshots taken through the source location (as the contract's
    /// `copy-snapshot` describes). Nothing else of the source is granted.
    pub fn with_source_directories(mut self, source: &Grants) -> Grants {
        self.directories.extend(source.directories.iter().map(|d| DirectoryGrant {
            host: d.host.clone(),
            dir: d.dir.clone(),
            guest: format!("{SOURCE_MOUNT}{}", d.guest),
            writable: false,
        }));
        self
    }
}

/// Why a location cannot be turned into capabilities. Each names the location and the key.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GrantError {
    /// A configured directory is outside the tenant's directory tree, or cannot be opened.
    #[error("{location}: config key {error}")]
    Directory {
        /// The location.
        location: String,
        /// What is wrong, naming the key and the path.
        error: PathError,
    },
    /// A directory the provider needs is not configured.
    #[error("{location}: config key {key:?} is required by provider {provider} (a directory)")]
    MissingDirectory {
        /// The location.
        location: String,
        /// The provider.
        provider: String,
        /// The config key.
        key: String,
    },
    /// A configured directory is not an absolute path to an existing directory.
    #[error("{location}: config key {key:?}: {path:?} {reason}")]
    BadDirectory {
        /// The location.
        location: String,
        /// The config key.
        key: String,
        /// Its value.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Two grants would mount different directories at one guest path.
    #[error("{location}: provider {provider} asks for two directories at {guest}")]
    DuplicateMount {
        /// The location.
        location: String,
        /// The provider.
        provider: String,
        /// The guest path.
        guest: String,
    },
    /// A configured endpoint is not an http(s) URL.
    #[error("{location}: config key {key:?}: {value:?} is not an http(s) URL with a host")]
    BadEndpoint {
        /// The location.
        location: String,
        /// The config key (or template).
        key: String,
        /// Its value.
        value: String,
    },
    /// `caCert` holds no usable certificate.
    #[error("{location}: caCert {reason}")]
    BadCaCert {
        /// The location.
        location: String,
        /// What is wrong.
        reason: String,
    },
}

/// Substitutes `{key}` placeholders in `template` from `config`; `None` when a placeholder's
/// key is unset.
fn fill_template(template: &str, config: &BTreeMap<String, String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}')? + open;
        out.push_str(&rest[..open]);
        out.push_str(config.get(&rest[open + 1..close]).filter(|v| !v.is_empty())?);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The one function that decides what a provider instance may touch.
///
/// A provider gets only: the directories named by the config keys its manifest lists, the HTTP
/// origins named by its URL keys and endpoint templates (over TLS verified with the public
/// roots plus `caCert`, or not at all with `insecureSkipTLSVerify=true`), and `credential` (the location's own
/// secret key or the default credential, resolved by the caller). Directories are opened
/// here, beneath `paths` (the tenant's tree on a shared host), and mounted from the handles. It never gets environment
/// variables, arguments, sockets or other files. `config` is what `init` receives.
pub fn grants_for(
    location: &str,
    manifest: &Manifest,
    config: BTreeMap<String, String>,
    credential: Option<SecretBytes>,
    paths: &PathRoot,
) -> Result<Grants, GrantError> {
    let mut directories: Vec<DirectoryGrant> = Vec::new();
    for request in &manifest.directories {
        let Some(value) = config.get(&request.config_key).filter(|v| !v.is_empty()) else {
            if request.optional {
                continue;
            }
            return Err(GrantError::MissingDirectory {
                location: location.into(),
                provider: manifest.name.clone(),
                key: request.config_key.clone(),
            });
        };
        let bad = |reason: &str| GrantError::BadDirectory {
            location: location.into(),
            key: request.config_key.clone(),
            path: value.clone(),
            reason: reason.into(),
        };
        let host = PathBuf::from(value);
        if !host.is_absolute() {
            return Err(bad("is not an absolute path"));
        }
        let dir = paths
            .open_dir(&format!("{:?}:", request.config_key), Path::new(value))
            .map_err(|error| GrantError::Directory { location: location.into(), error })?;
        if directories.iter().any(|d| d.guest == request.guest_path) {
            return Err(GrantError::DuplicateMount {
                location: location.into(),
                provider: manifest.name.clone(),
                guest: request.guest_path.clone(),
            });
        }
        directories.push(DirectoryGrant { host, dir: Arc::new(dir), guest: request.guest_path.clone(), writable: request.writable });
    }

    let mut endpoints = Vec::new();
    let bad_endpoint = |key: &str, value: &str| GrantError::BadEndpoint {
        location: location.into(),
        key: key.into(),
        value: value.into(),
    };
    for key in &manifest.endpoint_keys {
        if let Some(value) = config.get(key).filter(|v| !v.is_empty()) {
            let url = Url::parse(value).map_err(|_| bad_endpoint(key, value))?;
            endpoints.push(Endpoint::of(&url).ok_or_else(|| bad_endpoint(key, value))?);
        }
    }
    for template in &manifest.endpoint_templates {
        if let Some(value) = fill_template(template, &config) {
            let url = Url::parse(&value).map_err(|_| bad_endpoint(template, &value))?;
            endpoints.push(Endpoint::of(&url).ok_or_else(|| bad_endpoint(template, &value))?);
        }
    }
    endpoints.sort();
    endpoints.dedup();

    // The host makes the TLS connections, so it honours the location's TLS settings itself.
    let extra_roots = match config.get("caCert").filter(|c| !c.is_empty()) {
        Some(pem) => TlsOptions::parse_roots(pem).map_err(|reason| GrantError::BadCaCert { location: location.into(), reason })?,
        None => Vec::new(),
    };
    let skip_verify = config.get("insecureSkipTLSVerify").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let tls = TlsOptions { extra_roots, skip_verify };

    Ok(Grants { location: location.into(), config, credential, directories, endpoints, tls, quota: Quota::default(), reach: Reach::default(), space: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::manifest::DirectoryRequest;

    fn manifest() -> Manifest {
        Manifest {
            name: "velero.io/test".into(),
            description: String::new(),
            directories: vec![DirectoryRequest { config_key: "root".into(), guest_path: "/data".into(), writable: true, optional: false }],
            endpoint_keys: vec!["s3Url".into()],
            endpoint_templates: vec!["https://s3.{region}.amazonaws.com".into()],
        }
    }

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn grants_only_what_config_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let g = grants_for("bsl a", &manifest(), config(&[("root", root), ("s3Url", "http://127.0.0.1:9000/x"), ("region", "eu-west-1")]), None, &PathRoot::Anywhere)
            .unwrap();
        assert_eq!(g.directories.len(), 1);
        assert_eq!(crate::confine::path_of(&g.directories[0].dir).unwrap(), dir.path().canonicalize().unwrap());
        let shown: Vec<String> = g.endpoints.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["http://127.0.0.1:9000", "https://s3.eu-west-1.amazonaws.com:443"]);
    }

    #[test]
    fn template_with_unset_key_grants_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let g = grants_for("bsl a", &manifest(), config(&[("root", dir.path().to_str().unwrap())]), None, &PathRoot::Anywhere).unwrap();
        assert!(g.endpoints.is_empty());
    }

    #[test]
    fn errors_name_location_and_key() {
        let err = grants_for("backup-location \"a\"", &manifest(), config(&[]), None, &PathRoot::Anywhere).unwrap_err().to_string();
        assert!(err.contains("backup-location \"a\"") && err.contains("\"root\""), "{err}");
        let err = grants_for("b", &manifest(), config(&[("root", "relative/dir")]), None, &PathRoot::Anywhere).unwrap_err().to_string();
        assert!(err.contains("not an absolute path"), "{err}");
        let err = grants_for("b", &manifest(), config(&[("root", "/nonexistent/coffer")]), None, &PathRoot::Anywhere).unwrap_err().to_string();
        assert!(err.contains("\"root\"") && err.contains("No such file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = grants_for("b", &manifest(), config(&[("root", dir.path().to_str().unwrap()), ("s3Url", "ftp://x")]), None, &PathRoot::Anywhere)
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3Url") && err.contains("ftp://x"), "{err}");
    }
}
