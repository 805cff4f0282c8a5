//! `schedule`.

use anyhow::{Result, bail};

use coffer::api::{ChangeMeta, SchedulePatch, TenantApi};
use coffer::model::API_VERSION;
use coffer::schedules::{SOURCE_ANNOTATION, Schedule, ScheduleSpec};

use super::args::{OutputFormat, ScheduleCommand};
use super::backups::{annotated, backup_spec};
use super::named_or_all;
use super::output::{Table, print_documents, timestamp};

fn print_schedules(format: OutputFormat, items: &[Schedule], single: bool) -> Result<()> {
    if format != OutputFormat::Table {
        return print_documents(format, API_VERSION, "Schedule", items, single);
    }
    let mut table = Table::new(&["NAME", "STATUS", "CREATED", "SCHEDULE", "BACKUP TTL", "LAST BACKUP", "PAUSED", "LAST FAILURE"]);
    for s in items {
        table.row(vec![
            s.metadata.meta.name.clone(),
            s.status.phase.clone().unwrap_or_else(|| "New".into()),
            timestamp(Some(s.metadata.meta.creation_timestamp)),
            s.spec.schedule.clone(),
            s.spec.template.ttl.map(coffer::model::go_duration::format).unwrap_or_else(|| "0s".into()),
            timestamp(s.status.last_backup),
            s.spec.paused.to_string(),
            s.status.last_failure.clone().unwrap_or_default(),
        ]);
    }
    table.print()
}

/// Runs a `schedule` command.
pub async fn schedule(api: &dyn TenantApi, ns: &str, command: ScheduleCommand) -> Result<()> {
    match command {
        ScheduleCommand::Create(args) => {
            if args.backup.wait {
                bail!("--wait applies to `backup create`; a schedule's backups run on their own (see `coffer backup get`)");
            }
            let (template, labels) = backup_spec(&args.backup)?;
            let object = Schedule {
                api_version: API_VERSION.into(),
                kind: "Schedule".into(),
                metadata: annotated(ns, &args.backup.name, labels, SOURCE_ANNOTATION, &args.backup.source),
                spec: ScheduleSpec { schedule: args.schedule, template, paused: args.paused, skip_immediately: args.skip_immediately.then_some(true) },
                status: Default::default(),
            };
            let created = api.create_schedule(object).await?;
            println!("Schedule {:?} created successfully.", created.metadata.meta.name);
            Ok(())
        }
        ScheduleCommand::Get(args) => {
            let found = named_or_all(&args.names, || api.list_schedules(), |n| api.get_schedule(n)).await?;
            print_schedules(args.output.format, &found, args.names.len() == 1)
        }
        ScheduleCommand::Pause(args) => {
            for name in &args.names {
                api.change_schedule(name, SchedulePatch { metadata: ChangeMeta::default(), paused: true }).await?;
                println!("Schedule {name:?} paused.");
            }
            Ok(())
        }
        ScheduleCommand::Unpause(args) => {
            for name in &args.names {
                api.change_schedule(name, SchedulePatch { metadata: ChangeMeta::default(), paused: false }).await?;
                println!("Schedule {name:?} unpaused.");
            }
            Ok(())
        }
        ScheduleCommand::Delete(args) => {
            // Every name must exist before any is deleted.
            named_or_all(&args.names, || api.list_schedules(), |n| api.get_schedule(n)).await?;
            for name in &args.names {
                api.delete_schedule(name).await?;
                println!("Schedule {name:?} deleted; its backups are kept.");
            }
            Ok(())
        }
    }
}
