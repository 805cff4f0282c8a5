//! `tenant`: tokens and quotas, on the server's host: through the running server's operator
//! socket, or on the data directory when no server holds it.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use coffer::api::{Client, LocalOperator, OperatorApi, QuotaBody};
use coffer::coffer::Coffer;
use coffer::server::ADMIN_SOCKET;

use super::args::{QuotaArgs, TenantCommand, TokenCommand};
use super::output::{Table, timestamp};
use super::parse;

/// Runs a `tenant` command against the server running on `data_dir`, or else the data
/// directory itself (opened with `open`).
pub async fn tenant<F>(data_dir: &Path, open: impl FnOnce() -> F, command: TenantCommand) -> Result<()>
where
    F: std::future::Future<Output = Result<Coffer>>,
{
    let admin: Box<dyn OperatorApi> = match Client::operator(&data_dir.join(ADMIN_SOCKET)).await {
        Some(client) => Box::new(client),
        None => Box::new(LocalOperator(Arc::new(open().await?))),
    };
    match command {
        TenantCommand::Token(TokenCommand::Create(args)) => {
            let token = admin.create_token(&args.tenant, &args.name).await?.token;
            eprintln!("Token {:?} created for tenant {:?}. It is shown only now; keep it secret:", args.name, args.tenant);
            // The one place a token is revealed: to the operator who asked for it.
            println!("{token}");
            Ok(())
        }
        TenantCommand::Token(TokenCommand::Get(args)) => {
            let mut table = Table::new(&["NAME", "TENANT", "CREATED"]);
            for t in admin.list_tokens(&args.tenant).await? {
                table.row(vec![t.token_name, t.tenant, timestamp(Some(t.metadata.creation_timestamp))]);
            }
            table.print()
        }
        TenantCommand::Token(TokenCommand::Revoke(args)) => {
            admin.revoke_token(&args.tenant, &args.name).await?;
            println!("Token {:?} of tenant {:?} revoked.", args.name, args.tenant);
            Ok(())
        }
        TenantCommand::Quota(args) => quota(admin.as_ref(), args).await,
    }
}

async fn quota(admin: &dyn OperatorApi, args: QuotaArgs) -> Result<()> {
    let body = QuotaBody {
        concurrent_calls: args.concurrent_calls,
        memory_bytes: args.memory.as_deref().map(|m| parse::size("memory", m)).transpose()?,
        call_deadline: parse::duration("call-deadline", args.call_deadline.as_deref())?,
    };
    let q = admin.set_quota(&args.tenant, body).await?;
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
