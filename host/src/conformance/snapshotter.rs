//! The volume-snapshotter checks: `wit/volume-snapshotter.wit`, call by call.

use super::manifest::check_manifest;
use super::record::{Failure, Recorder, answered};
use super::{CheckResult, Report, SnapshotterTarget, Subject};
use crate::sandbox::{ErrorKind, Grants, ProviderError, VolumeInfo, VolumeSnapshotterHandle};

/// Every volume-snapshotter check, in the order they run.
pub const VOLUME_SNAPSHOTTER_CHECKS: &[&str] = &[
    "describe-stable",
    "grants",
    "manifest-coherent",
    "init",
    "foreign-volume-ids",
    "volume-id-round-trip",
    "volume-info",
    "snapshot-round-trip",
    "delete-missing-snapshot",
    "snapshot-copy",
    "calls-within-deadline",
];

/// PersistentVolumes of kinds no snapshotter of a cloud's disks handles.
const FOREIGN: &[(&str, &str)] = &[
    ("an NFS volume", r#"{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"coffer-plugin-test-nfs"},"spec":{"nfs":{"server":"nfs.example.com","path":"/exports/x"}}}"#),
    (
        "a CSI volume of another driver",
        r#"{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"coffer-plugin-test-csi"},"spec":{"csi":{"driver":"conformance.coffer.io/foreign","volumeHandle":"vol-0123456789abcdef0"}}}"#,
    ),
    ("an iSCSI volume", r#"{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"coffer-plugin-test-iscsi"},"spec":{"iscsi":{"targetPortal":"10.0.0.1:3260","iqn":"iqn.2001-04.com.example:storage","lun":0}}}"#),
];

const NEEDS_VOLUME: &str = "pass --volume-id (and --volume-az) naming a volume the run may snapshot";

/// Runs every volume-snapshotter check on `subject`.
pub(super) async fn run(subject: &Subject, target: &SnapshotterTarget, on_check: &mut dyn FnMut(&CheckResult)) -> Report {
    let mut rec = Recorder::new(on_check);
    let mut notes = Vec::new();
    let Some(grants) = check_manifest(subject, &mut rec).await else {
        rec.skip_rest(VOLUME_SNAPSHOTTER_CHECKS, "the config grants nothing to test with (see grants)");
        return Report::new(&subject.component, rec.into_checks(), notes);
    };
    // `copy-snapshot` is checked within the location: the copying instance is granted the
    // location's own directories as the source's, as a copy between two locations would be.
    let copier_grants = grants.clone().with_source_directories(&grants);
    let mut handle = None;
    rec.check("init", async {
        handle = Some(answered("init to accept the config and credential", VolumeSnapshotterHandle::new(&subject.sandbox, &subject.component, grants).await)?);
        Ok(())
    })
    .await;
    let Some(mut vs) = handle else {
        rec.skip_rest(VOLUME_SNAPSHOTTER_CHECKS, "init failed");
        return Report::new(&subject.component, rec.into_checks(), notes);
    };

    rec.check("foreign-volume-ids", async {
        for (what, pv) in FOREIGN {
            match answered("get-volume-id to answer none", vs.get_volume_id(pv).await).map_err(|f| f.about(what))? {
                None => {}
                Some(id) => return Err(Failure::new(format!("get-volume-id of {what} to be none"), format!("some({id:?})"))),
            }
        }
        Ok(())
    })
    .await;

    match &target.pv {
        None => rec.skip("volume-id-round-trip", "pass --pv with a PersistentVolume (JSON) of the kind the provider handles"),
        Some(pv) => {
            rec.check("volume-id-round-trip", async {
                let Some(own) = answered("get-volume-id to succeed", vs.get_volume_id(pv).await)? else {
                    return Err(Failure::new("get-volume-id of the PV given with --pv to be some(volume ID)", "none"));
                };
                let wanted = target.volume.as_ref().map_or(own, |(id, _)| id.clone());
                let rewritten = answered("set-volume-id to succeed", vs.set_volume_id(pv, &wanted).await)?;
                match answered("get-volume-id of the rewritten PV to succeed", vs.get_volume_id(&rewritten).await)? {
                    Some(id) if id == wanted => Ok(()),
                    other => Err(Failure::new(format!("get-volume-id of the PV set-volume-id rewrote to be some({wanted:?})"), format!("{other:?}"))),
                }
            })
            .await;
        }
    }

    let Some((volume, az)) = &target.volume else {
        for name in ["volume-info", "snapshot-round-trip", "delete-missing-snapshot", "snapshot-copy"] {
            rec.skip(name, NEEDS_VOLUME);
        }
        rec.check_deadlines(subject.sandbox.limits().call_deadline);
        return Report::new(&subject.component, rec.into_checks(), notes);
    };
    let mut info = None;
    rec.check("volume-info", async {
        info = Some(answered("get-volume-info of the volume to succeed", vs.get_volume_info(volume, az).await)?);
        Ok(())
    })
    .await;
    let mut deleted = None;
    match &info {
        None => rec.skip("snapshot-round-trip", "volume-info failed"),
        Some(info) => {
            rec.check("snapshot-round-trip", async {
                let tags = [("coffer.io/plugin-test".to_owned(), "true".to_owned())];
                let snapshot = answered("create-snapshot to succeed", vs.create_snapshot(volume, az, &tags).await)?;
                if snapshot.is_empty() {
                    return Err(Failure::new("create-snapshot to return a snapshot ID", "\"\""));
                }
                let created = answered(
                    "create-volume-from-snapshot to succeed",
                    vs.create_volume_from_snapshot(&snapshot, &info.volume_type, az, info.iops).await,
                )?;
                if created.is_empty() || &created == volume {
                    return Err(Failure::new("create-volume-from-snapshot to return the new volume's ID", format!("{created:?}")));
                }
                notes.push(format!("created volume {created:?} from snapshot {snapshot:?}; the contract has no call to delete a volume, so it is left for you to delete"));
                answered("get-volume-info of the new volume to succeed", vs.get_volume_info(&created, az).await)?;
                answered("delete-snapshot to succeed", vs.delete_snapshot(&snapshot).await)?;
                deleted = Some(snapshot);
                Ok(())
            })
            .await;
        }
    }
    match deleted {
        None => rec.skip("delete-missing-snapshot", "snapshot-round-trip did not delete a snapshot"),
        Some(snapshot) => {
            rec.check("delete-missing-snapshot", async {
                answered("delete-snapshot of a snapshot already deleted to succeed", vs.delete_snapshot(&snapshot).await)
            })
            .await;
        }
    }
    match &info {
        None => rec.skip("snapshot-copy", "volume-info failed"),
        Some(_) if !vs.has("0.3.0") => {
            rec.skip("snapshot-copy", format!("contract {} has no copy-snapshot", vs.contract()));
        }
        Some(info) => snapshot_copy(subject, copier_grants, &mut vs, (volume, az), info, &mut rec, &mut notes).await,
    }
    rec.check_deadlines(subject.sandbox.limits().call_deadline);
    Report::new(&subject.component, rec.into_checks(), notes)
}

/// `snapshot-copy`: a snapshot copied within the location (source config = its own), a volume
/// made from the copy, and both snapshots deleted. A provider that answers `unsupported` does
/// not copy, which the contract allows: the check is skipped, saying so.
async fn snapshot_copy(
    subject: &Subject,
    grants: Grants,
    vs: &mut VolumeSnapshotterHandle,
    (volume, az): (&str, &str),
    info: &VolumeInfo,
    rec: &mut Recorder<'_>,
    notes: &mut Vec<String>,
) {
    let source: Vec<(String, String)> = grants.config.clone().into_iter().collect();
    let tags = [("coffer.io/plugin-test".to_owned(), "true".to_owned())];
    let prepared = async {
        let mut copier = answered(
            "init of a copying instance to succeed",
            VolumeSnapshotterHandle::new(&subject.sandbox, &subject.component, grants).await,
        )?;
        let snapshot = answered("create-snapshot to succeed", vs.create_snapshot(volume, az, &tags).await)?;
        let copied = copier.copy_snapshot(&snapshot, &source, az, &tags).await;
        Ok::<_, Failure>((copier, snapshot, copied))
    }
    .await;
    if let Ok((_, snapshot, Err(ProviderError { kind: ErrorKind::Unsupported(_), .. }))) = &prepared {
        let _ = vs.delete_snapshot(snapshot).await;
        rec.skip("snapshot-copy", "the provider answers unsupported: it does not copy snapshots (optional)");
        return;
    }
    rec.check("snapshot-copy", async {
        let (mut copier, snapshot, copied) = prepared?;
        let copy = answered("copy-snapshot to succeed", copied)?;
        if copy.snapshot_id.is_empty() || copy.snapshot_id == snapshot {
            return Err(Failure::new("copy-snapshot to return the copy's own snapshot ID", format!("{:?}", copy.snapshot_id)));
        }
        let zone = if copy.volume_az.is_empty() { az } else { copy.volume_az.as_str() };
        let created = answered(
            "create-volume-from-snapshot of the copy to succeed",
            copier.create_volume_from_snapshot(&copy.snapshot_id, &info.volume_type, zone, info.iops).await,
        )?;
        notes.push(format!("created volume {created:?} from the copy {:?} of snapshot {snapshot:?}; it is left for you to delete", copy.snapshot_id));
        answered("delete-snapshot of the copy to succeed", copier.delete_snapshot(&copy.snapshot_id).await)?;
        answered("delete-snapshot of the original to succeed", vs.delete_snapshot(&snapshot).await)
    })
    .await;
}
