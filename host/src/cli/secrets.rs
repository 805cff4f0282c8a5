//! `secret`.

use anyhow::Result;

use coffer::api::{SecretBody, TenantApi};

use super::args::{OutputFormat, SecretCommand};
use super::output::{Table, print_documents, timestamp};
use super::{named_or_all, parse};

/// Runs a `secret` command.
pub async fn secret(api: &dyn TenantApi, command: SecretCommand) -> Result<()> {
    match command {
        SecretCommand::Create(args) => {
            let values = args.from_file.iter().map(|spec| parse::from_file(spec)).collect::<Result<Vec<_>>>()?;
            let created = api.create_secret(SecretBody::new(&args.name, values)).await?;
            println!("Secret {:?} created with keys: {}.", args.name, created.keys.join(", "));
            Ok(())
        }
        SecretCommand::Set(args) => {
            let values = args.from_file.iter().map(|spec| parse::from_file(spec)).collect::<Result<Vec<_>>>()?;
            let set = api.replace_secret(&args.name, SecretBody::new(&args.name, values)).await?;
            println!("Secret {:?} updated; it has keys: {}.", args.name, set.keys.join(", "));
            Ok(())
        }
        SecretCommand::Get(args) => {
            let found = named_or_all(&args.names, || api.list_secrets(), |n| api.get_secret(n)).await?;
            if args.output.format != OutputFormat::Table {
                return print_documents(args.output.format, "v1", "Secret", &found, args.names.len() == 1);
            }
            let mut table = Table::new(&["NAME", "KEYS", "CREATED"]);
            for s in &found {
                table.row(vec![s.metadata.name.clone(), s.keys.join(","), timestamp(Some(s.metadata.creation_timestamp))]);
            }
            table.print()
        }
        SecretCommand::Delete(args) => {
            // Every name must exist before any is deleted.
            named_or_all(&args.names, || api.list_secrets(), |n| api.get_secret(n)).await?;
            for name in &args.names {
                api.delete_secret(name).await?;
                println!("Secret {name:?} deleted successfully.");
            }
            Ok(())
        }
    }
}
