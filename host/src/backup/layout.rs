//! Velero's object-storage layout under a location's prefix
//! (`pkg/persistence/object_store_layout.go`).

/// The keys of one location.
#[derive(Debug, Clone)]
pub struct Layout {
    root: String,
}

impl Layout {
    /// The layout under `prefix` (empty for the bucket root).
    pub fn new(prefix: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        Layout { root: if prefix.is_empty() { String::new() } else { format!("{prefix}/") } }
    }

    /// `<prefix>/backups/`.
    pub fn backups_dir(&self) -> String {
        format!("{}backups/", self.root)
    }

    /// `<prefix>/backups/<name>/`.
    pub fn backup_dir(&self, name: &str) -> String {
        format!("{}backups/{name}/", self.root)
    }

    /// `velero-backup.json`: its presence is what makes the backup exist.
    pub fn backup_metadata(&self, name: &str) -> String {
        format!("{}velero-backup.json", self.backup_dir(name))
    }

    /// The resource tarball.
    pub fn backup_contents(&self, name: &str) -> String {
        format!("{}{name}.tar.gz", self.backup_dir(name))
    }

    /// The gzipped backup log.
    pub fn backup_log(&self, name: &str) -> String {
        format!("{}{name}-logs.gz", self.backup_dir(name))
    }

    /// The native volume snapshots.
    pub fn backup_volume_snapshots(&self, name: &str) -> String {
        format!("{}{name}-volumesnapshots.json.gz", self.backup_dir(name))
    }

    /// The file-system backups of pod volumes (`[]PodVolumeBackup`).
    pub fn backup_pod_volume_backups(&self, name: &str) -> String {
        format!("{}{name}-podvolumebackups.json.gz", self.backup_dir(name))
    }

    /// The list of backed-up resources.
    pub fn backup_resource_list(&self, name: &str) -> String {
        format!("{}{name}-resource-list.json.gz", self.backup_dir(name))
    }

    /// Warnings and errors.
    pub fn backup_results(&self, name: &str) -> String {
        format!("{}{name}-results.gz", self.backup_dir(name))
    }

    /// `<prefix>/restores/<name>/`.
    pub fn restore_dir(&self, name: &str) -> String {
        format!("{}restores/{name}/", self.root)
    }

    /// The gzipped restore log.
    pub fn restore_log(&self, name: &str) -> String {
        format!("{}restore-{name}-logs.gz", self.restore_dir(name))
    }

    /// Restore warnings and errors.
    pub fn restore_results(&self, name: &str) -> String {
        format!("{}restore-{name}-results.gz", self.restore_dir(name))
    }

    /// The pod volume restores (`[]PodVolumeRestore`; Coffer's, beside Velero's files).
    pub fn restore_pod_volume_restores(&self, name: &str) -> String {
        format!("{}restore-{name}-podvolumerestores.json.gz", self.restore_dir(name))
    }

    /// The list of restored resources.
    pub fn restore_resource_list(&self, name: &str) -> String {
        format!("{}restore-{name}-resource-list.json.gz", self.restore_dir(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_velero_with_and_without_prefix() {
        let l = Layout::new("");
        assert_eq!(l.backup_metadata("backup-1"), "backups/backup-1/velero-backup.json");
        assert_eq!(l.backup_contents("backup-1"), "backups/backup-1/backup-1.tar.gz");
        assert_eq!(l.backup_log("backup-1"), "backups/backup-1/backup-1-logs.gz");
        assert_eq!(l.backup_volume_snapshots("backup-1"), "backups/backup-1/backup-1-volumesnapshots.json.gz");
        assert_eq!(l.backup_resource_list("backup-1"), "backups/backup-1/backup-1-resource-list.json.gz");
        assert_eq!(l.backup_results("backup-1"), "backups/backup-1/backup-1-results.gz");
        let p = Layout::new("/prefix-1/");
        assert_eq!(p.backup_metadata("backup-1"), "prefix-1/backups/backup-1/velero-backup.json");
        assert_eq!(p.restore_log("r1"), "prefix-1/restores/r1/restore-r1-logs.gz");
        assert_eq!(p.restore_results("r1"), "prefix-1/restores/r1/restore-r1-results.gz");
        assert_eq!(p.restore_resource_list("r1"), "prefix-1/restores/r1/restore-r1-resource-list.json.gz");
    }
}
