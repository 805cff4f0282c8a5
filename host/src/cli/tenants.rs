//! `tenant`: tokens and quotas, on the server's host.

use anyhow::Result;

use coffer::coffer::Coffer;
use coffer::tenants;

use super::args::{QuotaArgs, TenantCommand, TokenCommand};
use super::output::{Table, timestamp};
use super::parse;

/// Runs a `tenant` command.
pub fn tenant(coffer: &Coffer, command: TenantCommand) -> Result<()> {
    match command {
        TenantCommand::Token(TokenCommand::Create(args)) => {
            let (token, _) = tenants::create_token(coffer, &args.tenant, &args.name)?;
            eprintln!("Token {:?} created for tenant {:?}. It is shown only now; keep it secret:", args.name, args.tenant);
            // The one place a token is revealed: to the operator who asked for it.
            println!("{}", String::from_utf8_lossy(token.expose()));
            Ok(())
        }
        TenantCommand::Token(TokenCommand::Get(args)) => {
            let mut table = Table::new(&["NAME", "TENANT", "CREATED"]);
            for t in tenants::list_tokens(coffer, &args.tenant)? {
                table.row(vec![t.token_name, t.tenant, timestamp(Some(t.metadata.creation_timestamp))]);
            }
            table.print()
        }
        TenantCommand::Token(TokenCommand::Revoke(args)) => {
            tenants::revoke_token(coffer, &args.tenant, &args.name)?;
            println!("Token {:?} of tenant {:?} revoked.", args.name, args.tenant);
            Ok(())
        }
        TenantCommand::Quota(args) => quota(coffer, args),
    }
}

fn quota(coffer: &Coffer, args: QuotaArgs) -> Result<()> {
    let memory = args.memory.as_deref().map(|m| parse::size("memory", m)).transpose()?;
    let deadline = parse::duration("call-deadline", args.call_deadline.as_deref())?;
    let q = tenants::set_quota(coffer, &args.tenant, args.concurrent_calls, memory, deadline)?;
    let show = |v: Option<String>| v.unwrap_or_else(|| "host default".into());
    println!(
        "Quota of tenant {:?}: concurrent provider calls {}, memory per instance {}, call deadline {}.",
        args.tenant,
        show(q.concurrent_calls.map(|c| c.to_string())),
        show(q.memory_bytes.map(|m| format!("{} MiB", m >> 20))),
        show(q.call_deadline.map(coffer::model::go_duration::format)),
    );
    Ok(())
}
