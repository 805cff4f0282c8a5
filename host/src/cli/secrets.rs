//! `secret`.

use anyhow::Result;

use super::args::{OutputFormat, SecretCommand};
use super::backend::Backend;
use super::output::{Table, print_documents, timestamp};
use super::parse;

/// Runs a `secret` command.
pub async fn secret(backend: &Backend, ns: &str, command: SecretCommand) -> Result<()> {
    match command {
        SecretCommand::Create(args) => {
            let values = args.from_file.iter().map(|spec| parse::from_file(spec)).collect::<Result<Vec<_>>>()?;
            let created = backend.secret_put(ns, &args.name, values, false).await?;
            println!("Secret {:?} created with keys: {}.", args.name, created.keys.join(", "));
            Ok(())
        }
        SecretCommand::Set(args) => {
            let values = args.from_file.iter().map(|spec| parse::from_file(spec)).collect::<Result<Vec<_>>>()?;
            let set = backend.secret_put(ns, &args.name, values, true).await?;
            println!("Secret {:?} updated; it has keys: {}.", args.name, set.keys.join(", "));
            Ok(())
        }
        SecretCommand::Get(args) => {
            let found = backend.secret_get(ns, &args.names).await?;
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
            backend.secret_delete(ns, &args.names).await?;
            for name in &args.names {
                println!("Secret {name:?} deleted successfully.");
            }
            Ok(())
        }
    }
}
