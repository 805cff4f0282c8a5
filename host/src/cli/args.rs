//! The command line's shape (clap definitions only; execution lives beside it).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Coffer: Velero-style backups whose storage and snapshot providers are sandboxed
/// WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "coffer", version, propagate_version = true)]
pub struct Cli {
    /// Where Coffer keeps its state, master key, plugins and caches.
    #[arg(long, env = "COFFER_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The namespace (tenant) to work in.
    #[arg(short = 'n', long, default_value = "velero", global = true)]
    pub namespace: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with backup storage locations.
    #[command(name = "backup-location", visible_alias = "bsl", subcommand)]
    BackupLocation(BackupLocationCommand),
    /// Work with volume snapshot locations.
    #[command(name = "snapshot-location", visible_alias = "vsl", subcommand)]
    SnapshotLocation(SnapshotLocationCommand),
    /// Work with secrets (credentials for locations).
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Work with provider plugins (WebAssembly components).
    #[command(subcommand)]
    Plugin(PluginCommand),
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// Aligned columns.
    #[default]
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// `-o/--output`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// `--all`, `--confirm` and names, for deletes.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Names to delete.
    pub names: Vec<String>,
    /// Delete every one in the namespace.
    #[arg(long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub confirm: bool,
}

/// `backup-location` subcommands.
#[derive(Debug, Subcommand)]
pub enum BackupLocationCommand {
    /// Create a backup storage location.
    Create(BackupLocationCreate),
    /// Show backup storage locations, validating those that are due.
    Get(BackupLocationGet),
    /// Change a backup storage location.
    Set(BackupLocationSet),
    /// Delete backup storage locations (the objects they hold are kept).
    Delete(DeleteArgs),
}

/// `backup-location create`.
#[derive(Debug, Args)]
pub struct BackupLocationCreate {
    /// Name of the location.
    pub name: String,
    /// Provider, e.g. `filesystem`, `aws` or `example.com/store`.
    #[arg(long)]
    pub provider: Option<String>,
    /// Bucket to keep backups in.
    #[arg(long)]
    pub bucket: Option<String>,
    /// Prefix inside the bucket.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Provider config, `key1=value1,key2=value2`.
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub config: Option<String>,
    /// The secret key with this location's credential, `secret=key`.
    #[arg(long, value_name = "SECRET=KEY")]
    pub credential: Option<String>,
    /// Make this the default location.
    #[arg(long)]
    pub default: bool,
    /// ReadWrite or ReadOnly.
    #[arg(long, default_value = "ReadWrite")]
    pub access_mode: String,
    /// How often to validate it, e.g. `1m` (`0s` disables).
    #[arg(long)]
    pub validation_frequency: Option<String>,
    /// How often to sync backups from it, e.g. `1m` (`0s` disables).
    #[arg(long)]
    pub backup_sync_period: Option<String>,
    /// File with a PEM CA bundle for the provider to trust.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Labels, `key1=value1,...`.
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub labels: Option<String>,
    /// Print the location in this format instead of creating it (`table` creates).
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `backup-location get`.
#[derive(Debug, Args)]
pub struct BackupLocationGet {
    /// Names to show; all when none.
    pub names: Vec<String>,
    /// Show only the default location.
    #[arg(long)]
    pub default: bool,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `backup-location set`.
#[derive(Debug, Args)]
pub struct BackupLocationSet {
    /// Name of the location.
    pub name: String,
    /// Make it the default (the previous default is unset), or with `=false` not.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub default: Option<bool>,
    /// The secret key with this location's credential, `secret=key`.
    #[arg(long, value_name = "SECRET=KEY")]
    pub credential: Option<String>,
    /// File with a PEM CA bundle for the provider to trust.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

/// `snapshot-location` subcommands.
#[derive(Debug, Subcommand)]
pub enum SnapshotLocationCommand {
    /// Create a volume snapshot location.
    Create(SnapshotLocationCreate),
    /// Show volume snapshot locations.
    Get(SnapshotLocationGet),
    /// Change a volume snapshot location's credential.
    Set(SnapshotLocationSet),
    /// Delete volume snapshot locations (snapshots already taken are kept).
    Delete(DeleteArgs),
}

/// `snapshot-location create`.
#[derive(Debug, Args)]
pub struct SnapshotLocationCreate {
    /// Name of the location.
    pub name: String,
    /// Provider, e.g. `local` or `aws`.
    #[arg(long)]
    pub provider: Option<String>,
    /// Provider config, `key1=value1,key2=value2`.
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub config: Option<String>,
    /// The secret key with this location's credential, `secret=key`.
    #[arg(long, value_name = "SECRET=KEY")]
    pub credential: Option<String>,
    /// Labels, `key1=value1,...`.
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub labels: Option<String>,
    /// Print the location in this format instead of creating it (`table` creates).
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `snapshot-location get`.
#[derive(Debug, Args)]
pub struct SnapshotLocationGet {
    /// Names to show; all when none.
    pub names: Vec<String>,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `snapshot-location set`.
#[derive(Debug, Args)]
pub struct SnapshotLocationSet {
    /// Name of the location.
    pub name: String,
    /// The secret key with this location's credential, `secret=key`.
    #[arg(long, value_name = "SECRET=KEY")]
    pub credential: String,
}

/// `secret` subcommands.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Create a secret from files.
    Create(SecretCreate),
    /// Show secrets (names and keys only; values are never printed).
    Get(SecretGet),
    /// Delete secrets.
    Delete(SecretDelete),
}

/// `secret create`.
#[derive(Debug, Args)]
pub struct SecretCreate {
    /// Name of the secret.
    pub name: String,
    /// `key=path` (or `path`, keyed by its file name); repeatable.
    #[arg(long = "from-file", value_name = "KEY=PATH", required = true)]
    pub from_file: Vec<String>,
}

/// `secret get`.
#[derive(Debug, Args)]
pub struct SecretGet {
    /// Names to show; all when none.
    pub names: Vec<String>,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `secret delete`.
#[derive(Debug, Args)]
pub struct SecretDelete {
    /// Names to delete.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Check a provider component and install it.
    Add(PluginAdd),
    /// Show the installed providers.
    Get(PluginGet),
}

/// `plugin add`.
#[derive(Debug, Args)]
pub struct PluginAdd {
    /// The component, a `.wasm` file.
    pub file: PathBuf,
}

/// `plugin get`.
#[derive(Debug, Args)]
pub struct PluginGet {
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}
