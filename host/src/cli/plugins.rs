//! `plugin`.

use anyhow::Result;
use serde::Serialize;

use coffer::coffer::Coffer;
use coffer::plugins::{Plugin, PluginSource};
use coffer::sandbox::Manifest;

use super::args::{OutputFormat, PluginCommand};
use super::output::{Table, print_documents};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PluginView<'a> {
    name: &'a str,
    kind: String,
    source: String,
    sha256: &'a str,
    /// The contract version (`wit/`) the component was built against.
    contract: &'static str,
    manifest: &'a Manifest,
}

fn view(p: &Plugin) -> PluginView<'_> {
    PluginView {
        name: p.name(),
        kind: p.component.kind().to_string(),
        source: match &p.source {
            PluginSource::Embedded => "embedded".into(),
            PluginSource::File(path) => path.display().to_string(),
        },
        sha256: p.component.sha256(),
        contract: p.component.contract(),
        manifest: p.component.manifest(),
    }
}

/// Runs a `plugin` command.
pub async fn plugin(coffer: &mut Coffer, command: PluginCommand) -> Result<()> {
    match command {
        PluginCommand::Add(args) => {
            let sandbox = coffer.sandbox.clone();
            let added = coffer.registry.add(&sandbox, &args.file).await?;
            println!("Plugin {:?} ({}) added.", added.name(), added.component.kind());
            Ok(())
        }
        PluginCommand::Get(args) => {
            let views: Vec<PluginView<'_>> = coffer.registry.list().iter().map(view).collect();
            if args.output.format != OutputFormat::Table {
                return print_documents(args.output.format, "coffer.io/v1", "Plugin", &views, false);
            }
            let mut table = Table::new(&["NAME", "KIND", "CONTRACT", "SOURCE", "SHA256", "DESCRIPTION"]);
            for v in &views {
                table.row(vec![
                    v.name.into(),
                    v.kind.clone(),
                    v.contract.into(),
                    v.source.clone(),
                    v.sha256[..12].into(),
                    v.manifest.description.clone(),
                ]);
            }
            table.print()
        }
    }
}
