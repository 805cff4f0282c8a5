//! Schedules: a backup template run on a cron cadence, as Velero's Schedule.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::OffsetDateTime;

use crate::backup::{BackupRequest, validate_filters};
use crate::coffer::Coffer;
use crate::object::{ObjectError, validate_name};
use crate::model::{API_VERSION, Backup, BackupMeta, BackupSpec, ObjectMeta, Phase, go_duration};
use crate::state::{Resource, StateError, expect_version};

/// The label backups made by a schedule carry, with the schedule's name.
pub const SCHEDULE_LABEL: &str = "velero.io/schedule-name";
/// The annotation recording the manifest directory a schedule's backups read.
pub const SOURCE_ANNOTATION: &str = crate::backup::SOURCE_ANNOTATION;

/// A schedule operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// A name is invalid, taken or unknown.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// The cadence does not parse.
    #[error("schedule {name:?}: invalid schedule {expression:?}: {reason}")]
    InvalidCadence {
        /// The schedule.
        name: String,
        /// What was given.
        expression: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The backup template is invalid.
    #[error("schedule {name:?}: invalid backup template: {}", errors.join("; "))]
    InvalidTemplate {
        /// The schedule.
        name: String,
        /// What is wrong.
        errors: Vec<String>,
    },
    /// The state failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// When a schedule runs: a cron expression (five fields, or `@daily` and the like) or
/// `@every <duration>`, as Velero accepts.
#[derive(Debug, Clone)]
pub enum Cadence {
    /// A cron expression, in UTC.
    Cron(Box<croner::Cron>),
    /// A fixed interval.
    Every(Duration),
}

impl Cadence {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Cadence, String> {
        if let Some(every) = text.trim().strip_prefix("@every ") {
            let d = go_duration::parse(every.trim())?;
            if d.is_zero() {
                return Err("@every needs a duration longer than 0s".into());
            }
            return Ok(Cadence::Every(d));
        }
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .year(croner::parser::Year::Disallowed)
            .build();
        parser.parse(text).map(|c| Cadence::Cron(Box::new(c))).map_err(|e| e.to_string())
    }

    /// The latest time in `(since, at]` this cadence fires, if it fires in it: the period a
    /// run at `at` is for. Periods missed before it are not caught up, as in Velero.
    pub fn latest_due(&self, since: OffsetDateTime, at: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Cadence::Every(d) => {
                let period = i128::try_from(d.as_nanos()).ok()?;
                let elapsed = (at - since).whole_nanoseconds();
                let due = elapsed / period * period;
                (due > 0).then(|| since + time::Duration::new((due / 1_000_000_000) as i64, (due % 1_000_000_000) as i32))
            }
            Cadence::Cron(cron) => {
                let at = chrono::DateTime::from_timestamp(at.unix_timestamp(), 0)?;
                let due = cron.find_previous_occurrence(&at, true).ok()?;
                OffsetDateTime::from_unix_timestamp(due.timestamp()).ok().filter(|due| *due > since)
            }
        }
    }
}

/// A schedule's desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// The cadence.
    pub schedule: String,
    /// The backup every run creates.
    pub template: BackupSpec,
    /// Whether runs are suspended.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Whether to wait for the first cadence tick instead of backing up at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_immediately: Option<bool>,
}

/// A schedule's observed state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleStatus {
    /// `Enabled` once accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The period (the time it fell due) of the last run that made a backup (`Completed` or
    /// `PartiallyFailed`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub last_backup: Option<OffsetDateTime>,
    /// The period of the last run, whatever became of it (Coffer's; the cadence counts from
    /// it, and a run is claimed here before it starts so that a crash never repeats it).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub last_run: Option<OffsetDateTime>,
    /// Why the last run made no backup (Coffer's), cleared by the next run that does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

/// A Schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// `velero.io/v1`.
    pub api_version: String,
    /// `Schedule`.
    pub kind: String,
    /// Name, namespace, labels, and the source directory as an annotation.
    pub metadata: BackupMeta,
    /// Cadence and template.
    pub spec: ScheduleSpec,
    /// Last run.
    #[serde(default)]
    pub status: ScheduleStatus,
}

impl Resource for Schedule {
    const KIND: &'static str = "Schedule";
    fn namespace(&self) -> &str {
        &self.metadata.meta.namespace
    }
    fn name(&self) -> &str {
        &self.metadata.meta.name
    }
    fn resource_version(&self) -> Option<&str> {
        Some(&self.metadata.meta.resource_version)
    }
    fn resource_version_mut(&mut self) -> Option<&mut String> {
        Some(&mut self.metadata.meta.resource_version)
    }
}

impl Schedule {
    /// The period a backup is due for at `at`, if one is: the first run at once (to the
    /// second) unless told to skip it, then the latest time the cadence fired since the last
    /// run (or since creation). Runs are anchored to their periods, so `@every 2s` runs every
    /// 2 s however late a run starts; missed runs are not repeated.
    pub fn due(&self, at: OffsetDateTime) -> Option<OffsetDateTime> {
        if self.spec.paused {
            return None;
        }
        // Schedules stored before `lastRun` existed claimed their runs in `lastBackup`.
        let since = match self.status.last_run.or(self.status.last_backup) {
            Some(last) => last,
            None if self.spec.skip_immediately == Some(true) => self.metadata.meta.creation_timestamp,
            None => return Some(at.replace_nanosecond(0).unwrap_or(at)),
        };
        Cadence::parse(&self.spec.schedule).ok()?.latest_due(since, at)
    }

    /// The name of the backup the run for period `at` creates.
    pub fn run_name(&self, at: OffsetDateTime) -> String {
        let stamp = at.format(&time::macros::format_description!("[year][month][day][hour][minute][second]")).unwrap_or_default();
        format!("{}-{stamp}", self.metadata.meta.name)
    }

    /// The backup the run for period `at` creates: `<schedule>-<YYYYMMDDhhmmss>`, labelled
    /// with the schedule.
    pub fn backup_request(&self, at: OffsetDateTime, default_snapshot_locations: BTreeMap<String, String>) -> BackupRequest {
        let mut labels = self.metadata.meta.labels.clone();
        labels.insert(SCHEDULE_LABEL.into(), self.metadata.meta.name.clone());
        BackupRequest {
            name: self.run_name(at),
            source: PathBuf::from(self.metadata.annotations.get(SOURCE_ANNOTATION).cloned().unwrap_or_default()),
            spec: self.spec.template.clone(),
            labels,
            default_snapshot_locations,
        }
    }
}

/// What `schedule create` asks for.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    /// Name.
    pub name: String,
    /// The cadence.
    pub schedule: String,
    /// The backup template.
    pub template: BackupSpec,
    /// The manifest directory each backup reads.
    pub source: PathBuf,
    /// Labels of the schedule and of its backups.
    pub labels: BTreeMap<String, String>,
    /// Start paused.
    pub paused: bool,
    /// Wait for the first tick instead of backing up at once.
    pub skip_immediately: bool,
}

/// Creates a schedule after checking its cadence and template.
pub fn create_schedule(coffer: &Coffer, namespace: &str, new: NewSchedule) -> Result<Schedule, ScheduleError> {
    validate_name("schedule", &new.name)?;
    Cadence::parse(&new.schedule).map_err(|reason| ScheduleError::InvalidCadence {
        name: new.name.clone(),
        expression: new.schedule.clone(),
        reason,
    })?;
    let errors = validate_filters(&new.template.filters);
    if !errors.is_empty() {
        return Err(ScheduleError::InvalidTemplate { name: new.name, errors });
    }
    let mut meta = ObjectMeta::new(namespace, &new.name);
    meta.labels = new.labels;
    let mut schedule = Schedule {
        api_version: API_VERSION.into(),
        kind: "Schedule".into(),
        metadata: BackupMeta { meta, annotations: BTreeMap::from([(SOURCE_ANNOTATION.to_owned(), new.source.display().to_string())]) },
        spec: ScheduleSpec {
            schedule: new.schedule,
            template: new.template,
            paused: new.paused,
            skip_immediately: new.skip_immediately.then_some(true),
        },
        status: ScheduleStatus { phase: Some("Enabled".into()), ..Default::default() },
    };
    coffer.state.write(|txn| {
        if txn.get::<Schedule>(namespace, &new.name)?.is_some() {
            return Err(ScheduleError::Object(ObjectError::already_exists("schedule", &new.name)));
        }
        txn.put(&mut schedule)?;
        Ok(())
    })?;
    Ok(schedule)
}

/// The named schedules, or all when `names` is empty.
pub fn get_schedules(coffer: &Coffer, namespace: &str, names: &[String]) -> Result<Vec<Schedule>, ScheduleError> {
    let txn = coffer.state.read()?;
    if names.is_empty() {
        return Ok(txn.list(namespace)?);
    }
    names
        .iter()
        .map(|n| txn.get(namespace, n)?.ok_or_else(|| ObjectError::not_found("schedule", n).into()))
        .collect()
}

/// Deletes schedules; the backups they made are kept.
pub fn delete_schedules(coffer: &Coffer, namespace: &str, names: &[String]) -> Result<(), ScheduleError> {
    coffer.state.write(|txn| {
        for name in names {
            if !txn.delete::<Schedule>(namespace, name)? {
                return Err(ScheduleError::Object(ObjectError::not_found("schedule", name)));
            }
        }
        Ok(())
    })
}

/// Pauses or unpauses schedule `name`, if it is still at `expected` (when that is given).
pub fn pause_schedule(coffer: &Coffer, namespace: &str, name: &str, paused: bool, expected: Option<&str>) -> Result<Schedule, ScheduleError> {
    coffer.state.write(|txn| {
        let Some(mut s) = txn.get::<Schedule>(namespace, name)? else {
            return Err(ScheduleError::Object(ObjectError::not_found("schedule", name)));
        };
        expect_version(&s, expected)?;
        s.spec.paused = paused;
        txn.put(&mut s)?;
        Ok(s)
    })
}

/// Claims the run of schedule `name` due at `at`: records the period it is due for as its
/// last run, unless another run got there first or the schedule is gone. Returns the schedule
/// as stored now with that period. Recording before running means a crash never repeats a
/// run, and two controllers never claim one period.
pub fn claim_run(coffer: &Coffer, namespace: &str, name: &str, at: OffsetDateTime) -> Result<Option<(Schedule, OffsetDateTime)>, ScheduleError> {
    coffer.state.write(|txn| {
        let Some(mut stored) = txn.get::<Schedule>(namespace, name)? else {
            return Ok(None);
        };
        let Some(period) = stored.due(at) else { return Ok(None) };
        stored.status.last_run = Some(period);
        txn.put(&mut stored)?;
        Ok(Some((stored, period)))
    })
}

/// Records the outcome of `schedule`'s run for period `at`: `lastBackup` when it made a
/// backup (`Completed` or `PartiallyFailed`), otherwise `lastFailure` saying why. Returns
/// whether the run made a backup.
pub fn record_run(coffer: &Coffer, namespace: &str, schedule: &str, at: OffsetDateTime, outcome: Result<&Backup, String>) -> Result<bool, ScheduleError> {
    let failure = match outcome {
        Ok(b) if b.status.phase.is_some_and(Phase::is_usable) => None,
        Ok(b) => {
            let phase = b.status.phase.map_or_else(|| "New".into(), |p| p.to_string());
            let why = if b.status.validation_errors.is_empty() { b.status.failure_reason.clone() } else { b.status.validation_errors.join("; ") };
            Some(format!("backup {} ended {phase}: {why}", b.metadata.meta.name))
        }
        Err(e) => Some(e),
    };
    coffer.state.write(|txn| {
        let Some(mut stored) = txn.get::<Schedule>(namespace, schedule)? else { return Ok(failure.is_none()) };
        match &failure {
            None => {
                stored.status.last_backup = Some(at);
                stored.status.last_failure = None;
            }
            Some(why) => stored.status.last_failure = Some(crate::sandbox::bounded(why.clone())),
        }
        txn.put(&mut stored)?;
        Ok(failure.is_none())
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn cadences_parse_like_velero_and_fire_in_utc() {
        let c = Cadence::parse("0 1 * * *").unwrap();
        assert_eq!(c.latest_due(datetime!(2026-11-25 13:00 UTC), datetime!(2026-11-26 00:59:59 UTC)), None);
        assert_eq!(c.latest_due(datetime!(2026-11-25 13:00 UTC), datetime!(2026-11-26 01:00:00.4 UTC)), Some(datetime!(2026-11-26 01:00 UTC)));
        // Missed periods are not caught up: the latest is the one due.
        assert_eq!(c.latest_due(datetime!(2026-11-25 13:00 UTC), datetime!(2026-11-28 07:00 UTC)), Some(datetime!(2026-11-28 01:00 UTC)));
        let c = Cadence::parse("@every 90m").unwrap();
        assert_eq!(c.latest_due(datetime!(2026-11-25 13:00 UTC), datetime!(2026-11-25 14:29:59 UTC)), None);
        assert_eq!(c.latest_due(datetime!(2026-11-25 13:00 UTC), datetime!(2026-11-25 14:30 UTC)), Some(datetime!(2026-11-25 14:30 UTC)));
        // A run that starts late is still for its period, so the next one is not pushed back.
        let c = Cadence::parse("@every 2s").unwrap();
        assert_eq!(c.latest_due(datetime!(2026-11-25 13:00 UTC), datetime!(2026-11-25 13:00:02.9 UTC)), Some(datetime!(2026-11-25 13:00:02 UTC)));
        assert_eq!(c.latest_due(datetime!(2026-11-25 13:00 UTC), datetime!(2026-11-25 13:00:07.5 UTC)), Some(datetime!(2026-11-25 13:00:06 UTC)));
        assert!(Cadence::parse("@daily").is_ok());
        assert!(Cadence::parse("* * * *").is_err());
        assert!(Cadence::parse("0 0 1 * * *").is_err(), "seconds are not Velero's");
        assert!(Cadence::parse("@every 0s").is_err());
    }

    fn schedule(cron: &str, created: OffsetDateTime, last: Option<OffsetDateTime>, skip: bool) -> Schedule {
        let mut meta = ObjectMeta::new("t", "nightly");
        meta.creation_timestamp = created;
        Schedule {
            api_version: API_VERSION.into(),
            kind: "Schedule".into(),
            metadata: BackupMeta { meta, annotations: BTreeMap::new() },
            spec: ScheduleSpec { schedule: cron.into(), template: BackupSpec::default(), paused: false, skip_immediately: skip.then_some(true) },
            status: ScheduleStatus { phase: Some("Enabled".into()), last_run: last, ..Default::default() },
        }
    }

    #[test]
    fn the_first_run_is_immediate_unless_skipped_then_the_cadence_rules() {
        let created = datetime!(2026-11-25 13:00:30 UTC);
        assert_eq!(schedule("0 1 * * *", created, None, false).due(created + time::Duration::milliseconds(300)), Some(created));
        let skipping = schedule("0 1 * * *", created, None, true);
        assert_eq!(skipping.due(datetime!(2026-11-26 00:59:59 UTC)), None);
        assert_eq!(skipping.due(datetime!(2026-11-26 01:00:01 UTC)), Some(datetime!(2026-11-26 01:00 UTC)));
        let ran = schedule("*/5 * * * *", created, Some(datetime!(2026-11-25 13:05 UTC)), false);
        assert_eq!(ran.due(datetime!(2026-11-25 13:09:59 UTC)), None);
        assert_eq!(ran.due(datetime!(2026-11-25 13:10 UTC)), Some(datetime!(2026-11-25 13:10 UTC)));
        let mut paused = ran.clone();
        paused.spec.paused = true;
        assert_eq!(paused.due(datetime!(2026-11-25 14:00 UTC)), None);
        let request = ran.backup_request(datetime!(2026-11-25 13:10 UTC), BTreeMap::new());
        assert_eq!(request.name, "nightly-20261125131000");
        assert_eq!(request.labels.get(SCHEDULE_LABEL).map(String::as_str), Some("nightly"));
    }
}
