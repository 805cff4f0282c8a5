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
    /// Where the state is kept: `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]` for an etcd cluster
    /// that several servers share (its keys under PREFIX, `coffer` unless given); unset, the
    /// redb file of the data directory.
    #[arg(long, env = "COFFER_STATE", global = true, value_name = "etcd://HOST:PORT,...")]
    pub state: Option<String>,
    /// How to reach the state's etcd.
    #[command(flatten)]
    pub etcd: EtcdAccess,
    /// The master key sealing secrets (32 bytes), which every process sharing one `--state`
    /// is given; unset, the data directory's own `master.key`, created on first use.
    #[arg(long, env = "COFFER_MASTER_KEY_FILE", global = true, value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// The namespace (tenant) to work in.
    #[arg(short = 'n', long, default_value = "velero", global = true)]
    pub namespace: String,
    /// The server default volume snapshot location per provider, `provider:name,...`, used
    /// when a provider has several locations and a backup names none.
    #[arg(long, env = "COFFER_DEFAULT_VOLUME_SNAPSHOT_LOCATIONS", global = true, value_name = "PROVIDER:NAME,...")]
    pub default_volume_snapshot_locations: Option<String>,
    /// A `coffer server` to send the command to (its API), instead of the local data
    /// directory. The token decides the namespace.
    #[arg(long, env = "COFFER_SERVER", global = true, value_name = "URL")]
    pub server: Option<String>,
    /// File holding the API token for `--server` (else `COFFER_TOKEN`).
    #[arg(long, env = "COFFER_TOKEN_FILE", global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM certificates to trust for an `https://` `--server`, besides the public roots
    /// (named apart from `--cacert`, which is a location's).
    #[arg(long, env = "COFFER_CACERT", global = true, value_name = "FILE")]
    pub server_cacert: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach the state's etcd, as etcd's own clients are told. The password is read from
/// a file, never taken on the command line or from the environment.
#[derive(Debug, Args)]
pub struct EtcdAccess {
    /// PEM certificates to trust for etcd's members (those alone); given, etcd is reached over
    /// TLS.
    #[arg(long, env = "COFFER_ETCD_CACERT", global = true, value_name = "FILE")]
    pub etcd_cacert: Option<PathBuf>,
    /// A client certificate (PEM) for members that ask for one; with --etcd-key.
    #[arg(long, env = "COFFER_ETCD_CERT", global = true, value_name = "FILE", requires = "etcd_key")]
    pub etcd_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "COFFER_ETCD_KEY", global = true, value_name = "FILE", requires = "etcd_cert")]
    pub etcd_key: Option<PathBuf>,
    /// The etcd user, when etcd's authentication is on; with --etcd-password-file.
    #[arg(long, env = "COFFER_ETCD_USER", global = true, value_name = "NAME", requires = "etcd_password_file")]
    pub etcd_user: Option<String>,
    /// File holding the etcd user's password.
    #[arg(long, env = "COFFER_ETCD_PASSWORD_FILE", global = true, value_name = "FILE", requires = "etcd_user")]
    pub etcd_password_file: Option<PathBuf>,
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
    /// Work with backups.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Work with restores.
    #[command(subcommand)]
    Restore(RestoreCommand),
    /// Work with secrets (credentials for locations).
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Work with provider plugins (WebAssembly components).
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Work with schedules (backups on a cron cadence).
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Work with file-system backup repositories (restic format, one per location and
    /// volume namespace).
    #[command(name = "repo", subcommand)]
    Repo(RepoCommand),
    /// Manage the tenants of a shared host: API tokens and quotas (on the server's host).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Work with the state itself: move it between a data directory's file and etcd.
    #[command(subcommand)]
    State(StateCommand),
    /// Serve the HTTP API to tenants and run the controllers (validation, sync, schedules,
    /// garbage collection).
    Server(ServerArgs),
}

/// `server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address of the API.
    #[arg(long, default_value = "127.0.0.1:8088", value_name = "ADDR")]
    pub listen: String,
    /// Address of the Prometheus metrics (for the operator; `off` serves none).
    #[arg(long, default_value = "127.0.0.1:8085", value_name = "ADDR")]
    pub metrics_listen: String,
    /// Directory with one directory per tenant: the only place a tenant's locations,
    /// backup sources and restore targets may be (default `<data-dir>/tenants`).
    #[arg(long, value_name = "DIR")]
    pub tenant_root: Option<PathBuf>,
    /// Sync period of locations that set none.
    #[arg(long, default_value = "1m", value_name = "DURATION")]
    pub backup_sync_period: String,
    /// How often expired backups are deleted.
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub garbage_collection_frequency: String,
    /// How long backups that set no TTL (or a TTL of 0) are kept.
    #[arg(long, default_value = "720h", value_name = "DURATION")]
    pub default_backup_ttl: String,
    /// How often the controllers look for due work: no period (sync, garbage collection, a
    /// location's validation, a schedule's `@every`) is kept more finely than this.
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    pub controller_tick: String,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Most linear memory a provider instance may have, e.g. `256Mi` (tenants' quotas may
    /// lower it).
    #[arg(long, default_value = "256Mi", value_name = "SIZE")]
    pub instance_memory: String,
    /// An endpoint tenants' locations may reach although it is not public: a host name, an
    /// address or a CIDR network (repeatable). By default they reach public addresses only,
    /// never loopback, private, link-local or cloud metadata addresses.
    #[arg(long = "allow-endpoint", value_name = "HOST|CIDR")]
    pub allow_endpoints: Vec<String>,
    /// The most provider instances one tenant may have live at once (the whole host has
    /// 256), so that no tenant can take every instance.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub tenant_instances: u32,
    /// PEM certificate chain to serve the API over HTTPS with (reloaded when it changes).
    #[arg(long, value_name = "FILE", requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `--tls-cert-file`.
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// Backups and restores running at once; more wait their turn.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub concurrent_backups: usize,
    /// Of those, at most this many for one tenant.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub tenant_concurrent_backups: usize,
    /// API connections open at once; more are closed as they arrive.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, or stay idle between requests.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub request_header_timeout: String,
    /// Disk space kept free for the state on the data directory's disk: locations' writes
    /// there are refused below it, and a file of this size is held for the state to give up
    /// when the disk fills anyway (0: none).
    #[arg(long, default_value = "64Mi", value_name = "SIZE")]
    pub state_reserve: String,
    /// How long running requests and work are given to finish at SIGTERM.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub shutdown_grace: String,
    /// Serve plain HTTP on an address other than loopback (tokens then cross the network in
    /// clear; for a TLS-terminating proxy in front).
    #[arg(long)]
    pub insecure_listen: bool,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `schedule` subcommands.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create a schedule: the backup flags, run on `--schedule`.
    Create(Box<ScheduleCreate>),
    /// Show schedules.
    Get(NamesOutput),
    /// Pause schedules.
    Pause(Names),
    /// Unpause schedules.
    Unpause(Names),
    /// Delete schedules (their backups are kept).
    Delete(Names),
}

/// `repo` subcommands.
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Show backup repositories.
    Get(NamesOutput),
    /// Print the password that opens a repository, for `restic` in a disaster. Nothing else
    /// shows it.
    Password(RepoName),
    /// Maintain a repository now: remove the data no snapshot uses (restic's `prune`).
    Maintain(RepoName),
}

/// One repository.
#[derive(Debug, Args)]
pub struct RepoName {
    /// The repository's name (`coffer repo get` lists them).
    pub name: String,
}

/// `schedule create`.
#[derive(Debug, Args)]
pub struct ScheduleCreate {
    /// The cadence: a cron expression (`0 1 * * *`, UTC), `@daily` and the like, or
    /// `@every 6h`.
    #[arg(long)]
    pub schedule: String,
    /// Start paused.
    #[arg(long)]
    pub paused: bool,
    /// Wait for the first tick instead of backing up at once.
    #[arg(long)]
    pub skip_immediately: bool,
    /// The backup each run creates (named `<schedule>-<timestamp>`).
    #[command(flatten)]
    pub backup: BackupCreate,
}

/// Names, at least one.
#[derive(Debug, Args)]
pub struct Names {
    /// Names.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `state` subcommands.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Copy every object of one state into another that holds none: a data directory's file
    /// into etcd (`--from DATA_DIR --to etcd://HOST:PORT`), or back. Stop the servers first.
    Migrate(MigrateArgs),
}

/// `state migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The state to copy: a data directory, or `etcd://HOST:PORT[,HOST:PORT...]`.
    #[arg(long, value_name = "DATA_DIR|etcd://...")]
    pub from: String,
    /// The state to copy into, which must be empty: a data directory, or an etcd URL.
    #[arg(long, value_name = "DATA_DIR|etcd://...")]
    pub to: String,
}

/// `tenant` subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Work with a tenant's API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Set a tenant's quota on the sandbox.
    Quota(QuotaArgs),
}

/// `tenant token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token for a tenant and print it (it is shown only this once).
    Create(TokenArgs),
    /// Show a tenant's tokens (names only).
    Get(TenantName),
    /// Revoke a token.
    Revoke(TokenArgs),
}

/// A token of a tenant.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Name of the token.
    pub name: String,
    /// The tenant (namespace) it acts as.
    #[arg(long)]
    pub tenant: String,
}

/// A tenant.
#[derive(Debug, Args)]
pub struct TenantName {
    /// The tenant (namespace).
    #[arg(long)]
    pub tenant: String,
}

/// `tenant quota`.
#[derive(Debug, Args)]
pub struct QuotaArgs {
    /// The tenant (namespace).
    pub tenant: String,
    /// Provider calls in flight at once across the tenant's locations.
    #[arg(long)]
    pub concurrent_calls: Option<u32>,
    /// Memory per provider instance, e.g. `64Mi`.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Longest one provider call may take, e.g. `5m`.
    #[arg(long, value_name = "DURATION")]
    pub call_deadline: Option<String>,
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
    /// The secret key holding age identities (`age-keygen` output): every object Coffer
    /// writes here but `velero-backup.json` is encrypted to the first; all decrypt.
    #[arg(long, value_name = "SECRET=KEY")]
    pub encryption_key: Option<String>,
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
    /// A new encryption key, `secret=key` (age identities; put a new one first to rotate,
    /// keeping the old ones after it to read older backups).
    #[arg(long, value_name = "SECRET=KEY")]
    pub encryption_key: Option<String>,
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
    /// Set keys of a secret from files (others stay): rotates a credential; the next
    /// provider call uses it.
    Set(SecretCreate),
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
    /// Run the contract's conformance checks on a provider component, against a real
    /// service: one line per check, exit status 0 only if none failed.
    Test(Box<PluginTest>),
    /// Write a new provider crate to start from (it builds, and answers `unsupported` to
    /// every call until written).
    New(PluginNew),
}

/// `plugin test`.
#[derive(Debug, Args)]
pub struct PluginTest {
    /// The component, a `.wasm` file.
    pub file: PathBuf,
    /// Provider config, `key1=value1,key2=value2` (as a location's `--config`).
    #[arg(long)]
    pub config: Option<String>,
    /// Bucket to test an object store in.
    #[arg(long)]
    pub bucket: Option<String>,
    /// Prefix in the bucket; the run writes beneath a fresh prefix under it, and refuses a
    /// prefix that already holds objects unless `--force`.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// File whose content the provider's `init` receives as the credential.
    #[arg(long, value_name = "FILE")]
    pub credential_file: Option<PathBuf>,
    /// PEM file of CA certificates for the service's TLS (as a location's `--cacert`).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Also round-trip a 1 GiB object.
    #[arg(long)]
    pub large: bool,
    /// Run on a prefix that already holds objects (the run deletes only what it wrote).
    #[arg(long)]
    pub force: bool,
    /// Volume to snapshot (volume snapshotters): a snapshot, a volume from it, and the
    /// snapshot's deletion are checked.
    #[arg(long, value_name = "ID")]
    pub volume_id: Option<String>,
    /// Availability zone of `--volume-id`.
    #[arg(long, value_name = "ZONE", default_value = "")]
    pub volume_az: String,
    /// A PersistentVolume (JSON file) of the kind the provider handles (volume snapshotters).
    #[arg(long, value_name = "FILE")]
    pub pv: Option<PathBuf>,
    /// Longest one provider call may take (default: a location's, 1h).
    #[arg(long, value_name = "DURATION")]
    pub call_deadline: Option<String>,
    /// Output format: `table` prints a line per check as it ends; `json` and `yaml` print
    /// the report at the end.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `plugin new`.
#[derive(Debug, Args)]
pub struct PluginNew {
    /// Name of the provider and its crate (lowercase letters, digits, `-`, `_`).
    pub name: String,
    /// Which contract it implements.
    #[arg(long, value_enum)]
    pub kind: PluginKindArg,
    /// Directory to create (default `./NAME`); it must not exist.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The `guest-sdk` directory of a Coffer checkout (default: the one this coffer was
    /// built from, if it is still there).
    #[arg(long, value_name = "DIR")]
    pub sdk: Option<PathBuf>,
}

/// `--kind` of `plugin new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PluginKindArg {
    /// `wit/object-store.wit`: where backups are kept.
    ObjectStore,
    /// `wit/volume-snapshotter.wit`: snapshots of volumes.
    VolumeSnapshotter,
}

/// `plugin add`.
#[derive(Debug, Args)]
pub struct PluginAdd {
    /// The component, a `.wasm` file.
    pub file: PathBuf,
    /// Replace the installed plugin of the same name and kind (running servers pick the new
    /// one up; runs already going keep the old one).
    #[arg(long)]
    pub replace: bool,
}

/// `plugin get`.
#[derive(Debug, Args)]
pub struct PluginGet {
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `backup` subcommands.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Back up the resources in a directory of manifests, with snapshots of their volumes.
    Create(Box<BackupCreate>),
    /// Show backups.
    Get(NamesOutput),
    /// Describe a backup.
    Describe(Describe),
    /// Show a backup's log.
    Logs(Name),
    /// Download a backup's tarball.
    Download(BackupDownload),
    /// Delete backups: their objects, snapshots and restores.
    Delete(DeleteArgs),
}

/// `backup create`.
#[derive(Debug, Args)]
pub struct BackupCreate {
    /// Name of the backup.
    pub name: String,
    /// Directory of Kubernetes manifests (YAML or JSON, multi-document, `List` kinds).
    #[arg(long, value_name = "DIR")]
    pub source: PathBuf,
    /// Backup storage location; the default one when not given.
    #[arg(long)]
    pub storage_location: Option<String>,
    /// Volume snapshot locations, at most one per provider.
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub volume_snapshot_locations: Vec<String>,
    /// Other backup storage locations that each receive a copy of the backup (same layout):
    /// it is restorable from any of them.
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub copy_to: Vec<String>,
    /// Other volume snapshot locations that each receive a copy of every snapshot taken
    /// through a location of their provider (e.g. in another region): volumes are restorable
    /// from any of them.
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub copy_snapshots_to: Vec<String>,
    /// Snapshot volumes (the default), or with `=false` not.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub snapshot_volumes: Option<bool>,
    /// Back up every pod volume with file-system backup unless the pod opts it out
    /// (`backup.velero.io/backup-volumes-excludes`); without it, only the volumes a pod opts
    /// in (`backup.velero.io/backup-volumes`).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub default_volumes_to_fs_backup: Option<bool>,
    /// Which items.
    #[command(flatten)]
    pub filters: FilterArgs,
    /// How long to keep the backup, e.g. `72h` (default 720h).
    #[arg(long)]
    pub ttl: Option<String>,
    /// Labels of the backup, `key1=value1,...`.
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub labels: Option<String>,
    /// Show progress and wait for the outcome.
    #[arg(short = 'w', long)]
    pub wait: bool,
}

/// Names and an output format.
#[derive(Debug, Args)]
pub struct NamesOutput {
    /// Names to show; all when none.
    pub names: Vec<String>,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `describe`.
#[derive(Debug, Args)]
pub struct Describe {
    /// Name.
    pub name: String,
    /// Also list resources and snapshots.
    #[arg(long)]
    pub details: bool,
}

/// One name.
#[derive(Debug, Args)]
pub struct Name {
    /// Name.
    pub name: String,
}

/// `backup download`.
#[derive(Debug, Args)]
pub struct BackupDownload {
    /// Name of the backup.
    pub name: String,
    /// Where to write the tarball (default `<name>-data.tar.gz`).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

/// `restore` subcommands.
#[derive(Debug, Subcommand)]
pub enum RestoreCommand {
    /// Restore a backup's resources into a directory, recreating volumes from snapshots.
    Create(Box<RestoreCreate>),
    /// Show restores.
    Get(NamesOutput),
    /// Describe a restore.
    Describe(Describe),
    /// Show a restore's log.
    Logs(Name),
}

/// Which items a backup takes or a restore writes.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Namespaces to include (`*` for all, the default).
    #[arg(long, value_delimiter = ',', value_name = "NS,...")]
    pub include_namespaces: Vec<String>,
    /// Namespaces to exclude.
    #[arg(long, value_delimiter = ',', value_name = "NS,...")]
    pub exclude_namespaces: Vec<String>,
    /// Resources to include, e.g. `pods,deployments.apps` (`*` for all, the default).
    #[arg(long, value_delimiter = ',', value_name = "RESOURCE,...")]
    pub include_resources: Vec<String>,
    /// Resources to exclude.
    #[arg(long, value_delimiter = ',', value_name = "RESOURCE,...")]
    pub exclude_resources: Vec<String>,
    /// Only items whose labels match, e.g. `app=web,tier!=db`.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

/// `restore create`.
#[derive(Debug, Args)]
pub struct RestoreCreate {
    /// Name of the restore (default `<backup>-<timestamp>`).
    pub name: Option<String>,
    /// The backup to restore.
    #[arg(long)]
    pub from_backup: String,
    /// Empty directory to write the resources into.
    #[arg(long, value_name = "DIR")]
    pub target: PathBuf,
    /// Recreate volumes from snapshots (the default), or with `=false` not.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub restore_volumes: Option<bool>,
    /// The backup storage location to read the backup from: its own or one holding a copy
    /// (default: its own unless Unavailable, else the first copy's that is not).
    #[arg(long, value_name = "NAME")]
    pub storage_location: Option<String>,
    /// Volume snapshot locations to recreate volumes from, in order of preference: each
    /// volume from its snapshot or a copy of it in the first that holds one (default: the
    /// snapshot's own location unless Unavailable, else the first copy's that is not).
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub volume_snapshot_locations: Vec<String>,
    /// Which of the backup's items to write.
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Show progress and wait for the outcome.
    #[arg(short = 'w', long)]
    pub wait: bool,
}
