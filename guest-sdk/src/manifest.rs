//! What a provider declares about itself.

/// A directory a provider may be granted: the host path in config key `config_key`, mounted
/// at `guest_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryRequest {
    /// The config key whose value is an absolute host path.
    pub config_key: String,
    /// Where the provider sees it, e.g. `/data`.
    pub guest_path: String,
    /// Whether the provider may write there.
    pub writable: bool,
    /// Whether a location may leave the key out.
    pub optional: bool,
}

/// What a provider is and which capabilities a location's config may grant it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// Registered name, e.g. `velero.io/aws`.
    pub name: String,
    /// One line for `coffer plugin get`.
    pub description: String,
    /// Directories the provider may be granted.
    pub directories: Vec<DirectoryRequest>,
    /// Config keys whose value is a URL the provider may reach.
    pub endpoint_keys: Vec<String>,
    /// Endpoints with `{key}` placeholders, e.g. `https://s3.{region}.amazonaws.com`.
    pub endpoint_templates: Vec<String>,
}

impl Manifest {
    /// A manifest for `name` that asks for nothing.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Manifest { name: name.into(), description: description.into(), ..Default::default() }
    }

    /// Asks for the directory in config key `config_key`, mounted at `guest_path`.
    pub fn directory(mut self, config_key: &str, guest_path: &str, writable: bool, optional: bool) -> Self {
        self.directories.push(DirectoryRequest {
            config_key: config_key.into(),
            guest_path: guest_path.into(),
            writable,
            optional,
        });
        self
    }

    /// Asks to reach the URL in config key `config_key`.
    pub fn endpoint_key(mut self, config_key: &str) -> Self {
        self.endpoint_keys.push(config_key.into());
        self
    }

    /// Asks to reach `template`, with `{key}` replaced by config values.
    pub fn endpoint_template(mut self, template: &str) -> Self {
        self.endpoint_templates.push(template.into());
        self
    }
}
