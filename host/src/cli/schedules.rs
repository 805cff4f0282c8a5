//! `schedule`.

use anyhow::{Result, bail};

use coffer::model::API_VERSION;
use coffer::schedules::{NewSchedule, Schedule};

use super::args::{OutputFormat, ScheduleCommand};
use super::backend::Backend;
use super::backups::backup_spec;
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
pub async fn schedule(backend: &Backend, ns: &str, command: ScheduleCommand) -> Result<()> {
    match command {
        ScheduleCommand::Create(args) => {
            if args.backup.wait {
                bail!("--wait applies to `backup create`; a schedule's backups run on their own (see `coffer backup get`)");
            }
            let (template, labels) = backup_spec(&args.backup)?;
            let new = NewSchedule {
                name: args.backup.name.clone(),
                schedule: args.schedule,
                template,
                source: args.backup.source.clone(),
                labels,
                paused: args.paused,
                skip_immediately: args.skip_immediately,
            };
            let created = backend.schedule_create(ns, new).await?;
            println!("Schedule {:?} created successfully.", created.metadata.meta.name);
            Ok(())
        }
        ScheduleCommand::Get(args) => {
            let found = backend.schedule_get(ns, &args.names).await?;
            print_schedules(args.output.format, &found, args.names.len() == 1)
        }
        ScheduleCommand::Pause(args) => {
            for name in &args.names {
                backend.schedule_pause(ns, name, true).await?;
                println!("Schedule {name:?} paused.");
            }
            Ok(())
        }
        ScheduleCommand::Unpause(args) => {
            for name in &args.names {
                backend.schedule_pause(ns, name, false).await?;
                println!("Schedule {name:?} unpaused.");
            }
            Ok(())
        }
        ScheduleCommand::Delete(args) => {
            backend.schedule_delete(ns, &args.names).await?;
            for name in &args.names {
                println!("Schedule {name:?} deleted; its backups are kept.");
            }
            Ok(())
        }
    }
}
