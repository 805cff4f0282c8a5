//! Prometheus metrics, served on the operator's own listener (they name tenants, so tenants
//! never see them): provider-call latencies, backups and locations by phase, and what the
//! controllers did.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::coffer::Coffer;
use crate::controllers::Counters;
use crate::model::{Backup, BackupStorageLocation};

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Writes one unlabelled metric of `kind` (`gauge` or `counter`).
fn single(out: &mut String, kind: &str, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
}

/// The metrics, in Prometheus' text format: the state's own health first, then what is in it
/// (left out, and said so in the log, while it cannot be read).
pub fn render(coffer: &Coffer, counters: &Counters) -> String {
    let mut out = String::new();
    let health = coffer.state.health();
    let state = [
        ("gauge", "coffer_state_writable", "Whether the state's last write committed (0 after one failed for I/O, such as a full disk).", u64::from(health.writable)),
        ("gauge", "coffer_state_reserve_held", "Whether the disk space reserved for the state is held (0: given up to a full disk, or not configured).", u64::from(health.reserve_held == Some(true))),
        ("counter", "coffer_state_write_failures_total", "State writes that failed for I/O.", health.write_failures),
        ("counter", "coffer_state_reopens_total", "Times the state database was reopened after an I/O error.", health.reopens),
    ];
    for (kind, name, help, value) in state {
        single(&mut out, kind, name, help, value);
    }
    if let Some(free) = coffer.space_reserve.as_ref().and_then(|r| r.free().ok()) {
        single(&mut out, "gauge", "coffer_data_disk_free_bytes", "Bytes free on the disk holding the data directory.", free);
    }
    let _ = writeln!(out, "# HELP coffer_provider_call_duration_seconds Time provider calls took, by operation and outcome.");
    let _ = writeln!(out, "# TYPE coffer_provider_call_duration_seconds histogram");
    for ((operation, ok), h) in coffer.sandbox.call_stats().snapshot() {
        let labels = format!("operation=\"{operation}\",outcome=\"{}\"", if ok { "ok" } else { "error" });
        for (bound, count) in h.cumulative() {
            let le = if bound.is_infinite() { "+Inf".to_owned() } else { format!("{bound:.6}") };
            let _ = writeln!(out, "coffer_provider_call_duration_seconds_bucket{{{labels},le=\"{le}\"}} {count}");
        }
        let _ = writeln!(out, "coffer_provider_call_duration_seconds_sum{{{labels}}} {}", h.sum);
        let _ = writeln!(out, "coffer_provider_call_duration_seconds_count{{{labels}}} {}", h.count());
    }

    let stored = coffer.state.read().and_then(|txn| Ok((txn.list_all::<Backup>()?, txn.list_all::<BackupStorageLocation>()?)));
    let (backups, locations) = stored.unwrap_or_else(|e| {
        tracing::error!("metrics left out what the state holds: {e}");
        Default::default()
    });
    let mut by_phase: BTreeMap<(String, String), u64> = BTreeMap::new();
    for b in &backups {
        let phase = b.status.phase.map_or_else(|| "New".into(), |p| p.to_string());
        *by_phase.entry((b.metadata.meta.namespace.clone(), phase)).or_default() += 1;
    }
    let _ = writeln!(out, "# HELP coffer_backups Backups, by tenant and phase.");
    let _ = writeln!(out, "# TYPE coffer_backups gauge");
    for ((ns, phase), n) in by_phase {
        let _ = writeln!(out, "coffer_backups{{namespace=\"{}\",phase=\"{phase}\"}} {n}", escape(&ns));
    }
    let _ = writeln!(out, "# HELP coffer_backup_storage_location_available Whether a backup storage location was Available at its last validation.");
    let _ = writeln!(out, "# TYPE coffer_backup_storage_location_available gauge");
    for l in &locations {
        let available = l.status.phase == Some(crate::model::LocationPhase::Available);
        let _ = writeln!(
            out,
            "coffer_backup_storage_location_available{{namespace=\"{}\",location=\"{}\"}} {}",
            escape(&l.metadata.namespace),
            escape(&l.metadata.name),
            u8::from(available)
        );
    }
    let counters = [
        ("coffer_location_validations_total", "Location validations run.", &counters.validations),
        ("coffer_backup_syncs_total", "Backup syncs that succeeded.", &counters.syncs),
        ("coffer_backup_sync_failures_total", "Backup syncs that failed.", &counters.sync_failures),
        ("coffer_scheduled_backups_total", "Backups started by schedules.", &counters.scheduled_backups),
        ("coffer_scheduled_backup_failures_total", "Scheduled runs that made no backup (the schedule's status says why).", &counters.scheduled_backup_failures),
        ("coffer_gc_deleted_backups_total", "Expired backups deleted.", &counters.collected),
        ("coffer_gc_failures_total", "Expired backups that could not be deleted.", &counters.collect_failures),
        ("coffer_repository_maintenances_total", "Backup repositories maintained (pruned).", &counters.maintenances),
        ("coffer_repository_maintenance_failures_total", "Backup repository maintenance runs that failed.", &counters.maintenance_failures),
    ];
    for (name, help, value) in counters {
        single(&mut out, "counter", name, help, value.load(Ordering::Relaxed));
    }
    out
}
