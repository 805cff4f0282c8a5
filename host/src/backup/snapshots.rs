//! Native volume snapshot records (`-volumesnapshots.json.gz`, Velero's `volume.Snapshot`).

use serde::{Deserialize, Serialize};

/// What was snapshotted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotSpec {
    /// The backup.
    pub backup_name: String,
    /// The backup's UID (Coffer: its namespace/name).
    #[serde(default)]
    pub backup_uid: String,
    /// The volume snapshot location, by name.
    pub location: String,
    /// The PersistentVolume.
    pub persistent_volume_name: String,
    /// The provider's volume ID.
    #[serde(rename = "providerVolumeID")]
    pub provider_volume_id: String,
    /// The volume type.
    pub volume_type: String,
    /// The availability zone.
    #[serde(default, skip_serializing_if = "String::is_empty", rename = "volumeAZ")]
    pub volume_az: String,
    /// Provisioned IOPS.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "volumeIOPS")]
    pub volume_iops: Option<i64>,
    /// For a copy of a snapshot (Coffer's `--copy-snapshots-to`): the location of the snapshot
    /// it copies. Copies follow every original in the list, so a reader that takes a volume's
    /// first snapshot (as Velero does) takes the original.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub copied_from: String,
}

impl VolumeSnapshot {
    /// Whether this is a copy of another snapshot rather than one taken of the volume.
    pub fn is_copy(&self) -> bool {
        !self.spec.copied_from.is_empty()
    }
}

/// How the snapshot went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotStatus {
    /// The provider's snapshot ID.
    #[serde(default, skip_serializing_if = "String::is_empty", rename = "providerSnapshotID")]
    pub provider_snapshot_id: String,
    /// `New`, `Completed` or `Failed`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phase: String,
}

/// One native volume snapshot of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VolumeSnapshot {
    /// What.
    pub spec: SnapshotSpec,
    /// How it went.
    pub status: SnapshotStatus,
}

/// Which of a backup's snapshot records `snapshots` to recreate persistent volume `pv` from.
///
/// With `preferred` locations, the completed record (original or copy) in the first of them
/// that holds one, and an error naming where the volume's snapshots are when none does.
/// Without, the original when `usable` says its location is, else the first completed copy
/// whose location is, else the original (whose location then reports its own error).
/// `Ok(None)`: the volume has no completed snapshot, and is restored as it was backed up.
pub fn snapshot_for<'a>(
    snapshots: &'a [VolumeSnapshot],
    pv: &str,
    preferred: &[String],
    usable: impl Fn(&str) -> bool,
) -> Result<Option<&'a VolumeSnapshot>, String> {
    let completed: Vec<&VolumeSnapshot> =
        snapshots.iter().filter(|s| s.spec.persistent_volume_name == pv && s.status.phase == "Completed").collect();
    let Some(original) = completed.iter().find(|s| !s.is_copy()).or(completed.first()).copied() else {
        return Ok(None);
    };
    if !preferred.is_empty() {
        return preferred
            .iter()
            .find_map(|location| completed.iter().find(|s| s.spec.location == *location))
            .map(|s| Some(*s))
            .ok_or_else(|| {
                let held: Vec<&str> = completed.iter().map(|s| s.spec.location.as_str()).collect();
                format!(
                    "persistent volume {pv} has no completed snapshot in volume snapshot locations {}; its snapshots are in {}",
                    preferred.join(", "),
                    held.join(", ")
                )
            });
    }
    if usable(&original.spec.location) {
        return Ok(Some(original));
    }
    Ok(Some(completed.iter().find(|s| s.is_copy() && usable(&s.spec.location)).copied().unwrap_or(original)))
}

/// Labels that name a PersistentVolume's zone and region.
const ZONE_LABELS: [&str; 2] = ["topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"];
const REGION_LABELS: [&str; 2] = ["topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region"];

/// Moves the PersistentVolume document `pv` to `zone`: its zone labels and the zone terms of
/// its node affinity name `zone`, and its region labels follow where the old zone was the old
/// region plus a letter (as AWS and GCP name them).
pub fn rezone(pv: &mut serde_json::Value, zone: &str) {
    use serde_json::Value;
    let old_zone = ZONE_LABELS.iter().find_map(|k| pv.pointer(&format!("/metadata/labels/{}", k.replace('/', "~1")))?.as_str().map(str::to_owned));
    let region_of = |z: &str| z.strip_suffix(|c: char| c.is_ascii_lowercase()).filter(|r| r.ends_with(|c: char| c.is_ascii_digit())).map(str::to_owned);
    if let Some(labels) = pv.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        for key in ZONE_LABELS {
            if let Some(v) = labels.get_mut(key) {
                *v = Value::String(zone.into());
            }
        }
        if let (Some(old), Some(new)) = (old_zone.as_deref().and_then(region_of), region_of(zone)) {
            for key in REGION_LABELS {
                if let Some(v) = labels.get_mut(key).filter(|v| v.as_str() == Some(old.as_str())) {
                    *v = Value::String(new.clone());
                }
            }
        }
    }
    let terms = pv.pointer_mut("/spec/nodeAffinity/required/nodeSelectorTerms").and_then(Value::as_array_mut);
    for term in terms.into_iter().flatten() {
        let expressions = term.get_mut("matchExpressions").and_then(Value::as_array_mut);
        for expression in expressions.into_iter().flatten() {
            if expression.get("key").and_then(Value::as_str).is_some_and(|k| ZONE_LABELS.contains(&k)) {
                expression["values"] = Value::Array(vec![Value::String(zone.into())]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(pv: &str, location: &str, copied_from: &str, phase: &str) -> VolumeSnapshot {
        VolumeSnapshot {
            spec: SnapshotSpec { persistent_volume_name: pv.into(), location: location.into(), copied_from: copied_from.into(), ..Default::default() },
            status: SnapshotStatus { provider_snapshot_id: format!("{location}-id"), phase: phase.into() },
        }
    }

    #[test]
    fn a_volume_is_restored_from_its_original_unless_its_location_is_unusable() {
        let records = [
            record("pv-1", "east", "", "Completed"),
            record("pv-2", "east", "", "Failed"),
            record("pv-1", "west", "east", "Completed"),
            record("pv-1", "south", "east", "Failed"),
        ];
        let all = |_: &str| true;
        assert_eq!(snapshot_for(&records, "pv-1", &[], all).unwrap().unwrap().spec.location, "east");
        assert_eq!(snapshot_for(&records, "pv-1", &[], |l| l != "east").unwrap().unwrap().spec.location, "west");
        // Nowhere usable: the original, whose location then reports its own error.
        assert_eq!(snapshot_for(&records, "pv-1", &[], |_| false).unwrap().unwrap().spec.location, "east");
        assert!(snapshot_for(&records, "pv-2", &[], all).unwrap().is_none());
        assert!(snapshot_for(&records, "pv-3", &[], all).unwrap().is_none());

        let preferred = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert_eq!(snapshot_for(&records, "pv-1", &preferred(&["west"]), all).unwrap().unwrap().spec.location, "west");
        assert_eq!(snapshot_for(&records, "pv-1", &preferred(&["north", "east"]), all).unwrap().unwrap().spec.location, "east");
        // A failed copy does not count.
        let err = snapshot_for(&records, "pv-1", &preferred(&["south"]), all).unwrap_err();
        assert_eq!(err, "persistent volume pv-1 has no completed snapshot in volume snapshot locations south; its snapshots are in east, west");
    }

    #[test]
    fn a_volume_moved_to_another_zone_names_it_everywhere() {
        let mut pv = json!({
            "metadata": {"name": "pv", "labels": {
                "topology.kubernetes.io/zone": "us-east-1a", "topology.kubernetes.io/region": "us-east-1", "app": "db"}},
            "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a"]},
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1"]}]}]}}}
        });
        rezone(&mut pv, "us-west-1b");
        assert_eq!(pv["metadata"]["labels"], json!({"topology.kubernetes.io/zone": "us-west-1b", "topology.kubernetes.io/region": "us-west-1", "app": "db"}));
        let expressions = &pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"];
        assert_eq!(expressions[0]["values"], json!(["us-west-1b"]));
        assert_eq!(expressions[1]["values"], json!(["node-1"]));
        // Zones that are not region plus letter leave the region alone.
        let mut azure = json!({"metadata": {"labels": {"topology.kubernetes.io/zone": "1", "topology.kubernetes.io/region": "westeurope"}}});
        rezone(&mut azure, "2");
        assert_eq!(azure["metadata"]["labels"], json!({"topology.kubernetes.io/zone": "2", "topology.kubernetes.io/region": "westeurope"}));
    }
}
