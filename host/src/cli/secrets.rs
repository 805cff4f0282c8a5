//! `secret`.

use anyhow::Result;
use serde::Serialize;

use coffer::coffer::Coffer;
use coffer::model::{ObjectMeta, Secret};
use coffer::secrets;

use super::args::{OutputFormat, SecretCommand};
use super::output::{Table, print_documents, timestamp};
use super::parse;

/// What is shown of a secret: never its values.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretView<'a> {
    api_version: &'a str,
    kind: &'a str,
    metadata: &'a ObjectMeta,
    keys: Vec<&'a str>,
}

fn view(secret: &Secret) -> SecretView<'_> {
    SecretView {
        api_version: &secret.api_version,
        kind: &secret.kind,
        metadata: &secret.metadata,
        keys: secret.sealed_data.keys().map(String::as_str).collect(),
    }
}

/// Runs a `secret` command.
pub fn secret(coffer: &Coffer, ns: &str, command: SecretCommand) -> Result<()> {
    match command {
        SecretCommand::Create(args) => {
            let values = args.from_file.iter().map(|spec| parse::from_file(spec)).collect::<Result<Vec<_>>>()?;
            let created = secrets::create_secret(coffer, ns, &args.name, values)?;
            println!("Secret {:?} created with keys: {}.", args.name, view(&created).keys.join(", "));
            Ok(())
        }
        SecretCommand::Get(args) => {
            let found = secrets::get_secrets(coffer, ns, &args.names)?;
            if args.output.format != OutputFormat::Table {
                let views: Vec<SecretView<'_>> = found.iter().map(view).collect();
                return print_documents(args.output.format, "v1", "Secret", &views, args.names.len() == 1);
            }
            let mut table = Table::new(&["NAME", "KEYS", "CREATED"]);
            for s in &found {
                table.row(vec![s.metadata.name.clone(), view(s).keys.join(","), timestamp(Some(s.metadata.creation_timestamp))]);
            }
            table.print()
        }
        SecretCommand::Delete(args) => {
            secrets::delete_secrets(coffer, ns, &args.names)?;
            for name in &args.names {
                println!("Secret {name:?} deleted successfully.");
            }
            Ok(())
        }
    }
}
