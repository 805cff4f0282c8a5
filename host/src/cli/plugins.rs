//! `plugin`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use coffer::coffer::Coffer;
use coffer::conformance::{self, CheckResult, ObjectStoreTarget, Outcome, Report, SnapshotterTarget, Subject, Targets};
use coffer::locations::object_store_config;
use coffer::plugins::{Plugin, PluginError, PluginSource, REFRESH_PERIOD};
use coffer::provider_template::write_provider_crate;
use coffer::sandbox::{Limits, Manifest, ProviderKind, Sandbox};
use coffer::secret::SecretBytes;

use super::args::{OutputFormat, PluginCommand, PluginKindArg, PluginNew, PluginTest};
use super::output::{Table, print_documents};
use super::parse;

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
        source: p.source.to_string(),
        sha256: p.component.sha256(),
        contract: p.component.contract(),
        manifest: p.component.manifest(),
    }
}

/// Runs a `plugin` command.
pub async fn plugin(coffer: &Coffer, command: PluginCommand) -> Result<()> {
    match command {
        PluginCommand::Add(args) => {
            let (registry, sandbox, state) = (&coffer.registry, &coffer.sandbox, &coffer.state);
            let added = match if args.replace { registry.replace(sandbox, &args.file, state).await } else { registry.add(sandbox, &args.file, state).await } {
                Err(e @ PluginError::Duplicate { .. }) => bail!("{e}; `plugin add --replace` replaces it"),
                other => other?,
            };
            println!("Plugin {:?} ({}) {}.", added.name(), added.component.kind(), if args.replace { "installed" } else { "added" });
            if let PluginSource::Shared(_) = added.source {
                println!("It is kept in the shared state: every server sharing it loads it within {}s.", REFRESH_PERIOD.as_secs());
            }
            Ok(())
        }
        PluginCommand::Get(args) => {
            let plugins = coffer.registry.list();
            let views: Vec<PluginView<'_>> = plugins.iter().map(|p| view(p)).collect();
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
        PluginCommand::Test(_) | PluginCommand::New(_) => unreachable!("run without a data directory"),
    }
}

/// `plugin test`: loads the component as a location would and runs the contract's checks.
pub async fn test(args: PluginTest) -> Result<()> {
    let limits = match parse::duration("call-deadline", args.call_deadline.as_deref())? {
        Some(deadline) => Limits { call_deadline: deadline, ..Limits::default() },
        None => Limits::default(),
    };
    let sandbox = Sandbox::new(None, limits)?;
    let wasm = parse::read_file("the component", &args.file)?;
    let component = sandbox.load(&wasm).await.with_context(|| format!("{}", args.file.display()))?;
    let mut config = parse::key_values("config", args.config.as_deref())?;
    let mut targets = Targets::default();
    match component.kind() {
        ProviderKind::ObjectStore => {
            let Some(bucket) = args.bucket.clone().filter(|b| !b.is_empty()) else {
                bail!("{} is an object store: give the --bucket to test it in", args.file.display());
            };
            let prefix = args.prefix.trim_matches('/').to_owned();
            let ca_pem = args.cacert.as_deref().map(|f| parse::read_file("cacert", f)).transpose()?;
            config = object_store_config(config, &bucket, &prefix, ca_pem.as_deref());
            targets.object_store = Some(ObjectStoreTarget { bucket, prefix, large: args.large, force: args.force });
        }
        ProviderKind::VolumeSnapshotter => {
            let pv = args.pv.as_deref().map(|f| parse::read_file("pv", f)).transpose()?;
            targets.snapshotter = SnapshotterTarget {
                volume: args.volume_id.clone().map(|id| (id, args.volume_az.clone())),
                pv: pv.map(String::from_utf8).transpose().context("--pv: not a JSON text file")?,
            };
        }
    }
    let credential = args.credential_file.as_deref().map(|f| parse::read_file("credential-file", f)).transpose()?;
    let subject = Subject {
        sandbox,
        component,
        location: format!("plugin test {:?}", args.file.display().to_string()),
        config,
        credential: credential.map(SecretBytes::new),
    };
    let table = args.output.format == OutputFormat::Table;
    let mut print_line = |check: &CheckResult| {
        if table {
            println!("{}", check_line(check));
        }
    };
    let report = conformance::run(&subject, &targets, &mut print_line).await?;
    match args.output.format {
        OutputFormat::Table => print_summary(&report),
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&ReportView::of(&report))?),
        OutputFormat::Yaml => print!("{}", serde_norway::to_string(&ReportView::of(&report))?),
    }
    let failed = report.failed();
    if !failed.is_empty() {
        bail!("{} check(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

/// The report with its tally, as `-o json` prints it.
#[derive(Serialize)]
struct ReportView<'a> {
    #[serde(flatten)]
    report: &'a Report,
    summary: conformance::Tally,
}

impl<'a> ReportView<'a> {
    fn of(report: &'a Report) -> Self {
        ReportView { report, summary: report.tally() }
    }
}

/// `ok    name   (1.2 s)`, `FAIL  name   expected …; got …` or `skip  name   reason`.
fn check_line(check: &CheckResult) -> String {
    match &check.outcome {
        Outcome::Ok => format!("ok    {:<34} {:.2}s", check.name, check.seconds),
        Outcome::Fail { expected, got } => format!("FAIL  {:<34} expected {expected}; got: {got}", check.name),
        Outcome::Skip { reason } => format!("skip  {:<34} {reason}", check.name),
    }
}

fn print_summary(report: &Report) {
    for note in &report.notes {
        println!("note: {note}");
    }
    let tally = report.tally();
    println!(
        "{}: {} ok, {} failed, {} skipped ({}, contract {})",
        report.provider, tally.ok, tally.failed, tally.skipped, report.kind, report.contract
    );
}

/// `plugin new`: writes a provider crate to start from.
pub fn new(args: PluginNew) -> Result<()> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    let sdk = match args.sdk {
        Some(sdk) => sdk,
        None => {
            let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
            if !built_from.is_dir() {
                bail!("pass --sdk with the guest-sdk directory of a Coffer checkout (the one this coffer was built from is gone)");
            }
            built_from
        }
    };
    let kind = match args.kind {
        PluginKindArg::ObjectStore => ProviderKind::ObjectStore,
        PluginKindArg::VolumeSnapshotter => ProviderKind::VolumeSnapshotter,
    };
    write_provider_crate(&dir, &args.name, kind, &sdk)?;
    println!("Wrote {} provider {:?} in {}: see its README.md to build and test it.", kind, args.name, dir.display());
    Ok(())
}
