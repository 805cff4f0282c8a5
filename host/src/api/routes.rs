//! The tenants' routes, named once: the server serves them, the client calls them, and the
//! OpenAPI document is checked against them.

/// Backup storage locations.
pub const BACKUP_STORAGE_LOCATIONS: &str = "/v1/backup-storage-locations";
/// One backup storage location.
pub const BACKUP_STORAGE_LOCATION: &str = "/v1/backup-storage-locations/{name}";
/// Volume snapshot locations.
pub const VOLUME_SNAPSHOT_LOCATIONS: &str = "/v1/volume-snapshot-locations";
/// One volume snapshot location.
pub const VOLUME_SNAPSHOT_LOCATION: &str = "/v1/volume-snapshot-locations/{name}";
/// Secrets.
pub const SECRETS: &str = "/v1/secrets";
/// One secret.
pub const SECRET: &str = "/v1/secrets/{name}";
/// Backups.
pub const BACKUPS: &str = "/v1/backups";
/// One backup.
pub const BACKUP: &str = "/v1/backups/{name}";
/// A backup's log.
pub const BACKUP_LOGS: &str = "/v1/backups/{name}/logs";
/// A backup's resource list and snapshots.
pub const BACKUP_DETAILS: &str = "/v1/backups/{name}/details";
/// A backup's tarball.
pub const BACKUP_DOWNLOAD: &str = "/v1/backups/{name}/download";
/// Restores.
pub const RESTORES: &str = "/v1/restores";
/// One restore.
pub const RESTORE: &str = "/v1/restores/{name}";
/// A restore's log.
pub const RESTORE_LOGS: &str = "/v1/restores/{name}/logs";
/// A restore's resource list and pod volume restores.
pub const RESTORE_DETAILS: &str = "/v1/restores/{name}/details";
/// Schedules.
pub const SCHEDULES: &str = "/v1/schedules";
/// One schedule.
pub const SCHEDULE: &str = "/v1/schedules/{name}";
/// Backup repositories (file-system backup).
pub const BACKUP_REPOSITORIES: &str = "/v1/backup-repositories";
/// One backup repository.
pub const BACKUP_REPOSITORY: &str = "/v1/backup-repositories/{name}";
/// The password that opens a backup repository.
pub const BACKUP_REPOSITORY_PASSWORD: &str = "/v1/backup-repositories/{name}/password";
/// A backup repository's maintenance, run now.
pub const BACKUP_REPOSITORY_MAINTENANCE: &str = "/v1/backup-repositories/{name}/maintenance";
/// The tenant a token acts as.
pub const WHOAMI: &str = "/v1/whoami";

/// Every route of the tenants' API and its methods.
pub const TENANT_ROUTES: &[(&str, &[&str])] = &[
    (BACKUP_STORAGE_LOCATIONS, &["get", "post"]),
    (BACKUP_STORAGE_LOCATION, &["get", "patch", "delete"]),
    (VOLUME_SNAPSHOT_LOCATIONS, &["get", "post"]),
    (VOLUME_SNAPSHOT_LOCATION, &["get", "patch", "delete"]),
    (SECRETS, &["get", "post"]),
    (SECRET, &["get", "put", "delete"]),
    (BACKUPS, &["get", "post"]),
    (BACKUP, &["get", "delete"]),
    (BACKUP_LOGS, &["get"]),
    (BACKUP_DETAILS, &["get"]),
    (BACKUP_DOWNLOAD, &["get"]),
    (RESTORES, &["get", "post"]),
    (RESTORE, &["get"]),
    (RESTORE_LOGS, &["get"]),
    (RESTORE_DETAILS, &["get"]),
    (SCHEDULES, &["get", "post"]),
    (SCHEDULE, &["get", "patch", "delete"]),
    (BACKUP_REPOSITORIES, &["get"]),
    (BACKUP_REPOSITORY, &["get"]),
    (BACKUP_REPOSITORY_PASSWORD, &["get"]),
    (BACKUP_REPOSITORY_MAINTENANCE, &["post"]),
    (WHOAMI, &["get"]),
];

/// `route` for the object `name` (made safe as a path segment).
pub fn of(route: &str, name: &str) -> String {
    route.replace("{name}", &segment(name))
}

/// `name` made safe as a path segment.
pub fn segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes()).collect()
}

/// A tenant's API tokens, on the operator's socket.
pub const TOKENS: &str = "/admin/tenants/{tenant}/tokens";
/// One token of a tenant.
pub const TOKEN: &str = "/admin/tenants/{tenant}/tokens/{name}";
/// A tenant's quota.
pub const QUOTA: &str = "/admin/tenants/{tenant}/quota";

/// `route` for tenant `tenant`'s object `name`.
pub fn of_tenant(route: &str, tenant: &str, name: &str) -> String {
    of(&route.replace("{tenant}", &segment(tenant)), name)
}
