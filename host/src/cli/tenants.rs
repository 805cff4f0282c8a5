//! `tenant`: tokens and quotas, on the server's host: through the running server's operator
//! socket, or on the data directory when no server holds it.

use std::path::Path;

use anyhow::Result;

use coffer::coffer::Coffer;
use coffer::server::{ADMIN_SOCKET, CreatedToken, NewToken, QuotaBody};
use coffer::quotas::{self, TenantQuota};
use coffer::tenants::{self, ApiToken};

use super::args::{QuotaArgs, TenantCommand, TokenCommand};
use super::output::{Table, timestamp};
use super::parse;
use super::remote::{Client, segment};

/// Where tenant commands run.
enum Admin {
    Local(Box<Coffer>),
    Server(Client),
}

impl Admin {
    async fn create_token(&self, tenant: &str, name: &str) -> Result<String> {
        match self {
            Admin::Local(c) => Ok(String::from_utf8_lossy(tenants::create_token(c, tenant, name)?.0.expose()).into_owned()),
            Admin::Server(c) => {
                let created: CreatedToken =
                    c.json("POST", &format!("/admin/tenants/{}/tokens", segment(tenant)), Some(&NewToken { name: name.into() })).await?;
                Ok(created.token)
            }
        }
    }

    async fn list_tokens(&self, tenant: &str) -> Result<Vec<ApiToken>> {
        match self {
            Admin::Local(c) => Ok(tenants::list_tokens(c, tenant)?),
            Admin::Server(c) => c.json("GET", &format!("/admin/tenants/{}/tokens", segment(tenant)), None::<&()>).await,
        }
    }

    async fn revoke_token(&self, tenant: &str, name: &str) -> Result<()> {
        match self {
            Admin::Local(c) => Ok(tenants::revoke_token(c, tenant, name)?),
            Admin::Server(c) => c.call("DELETE", &format!("/admin/tenants/{}/tokens/{}", segment(tenant), segment(name))).await,
        }
    }

    async fn set_quota(&self, tenant: &str, q: QuotaBody) -> Result<TenantQuota> {
        match self {
            Admin::Local(c) => Ok(quotas::set_quota(c, tenant, q.concurrent_calls, q.memory_bytes, q.call_deadline)?),
            Admin::Server(c) => c.json("PUT", &format!("/admin/tenants/{}/quota", segment(tenant)), Some(&q)).await,
        }
    }
}

/// Runs a `tenant` command against the server running on `data_dir`, or else the data
/// directory itself (opened with `open`).
pub async fn tenant<F>(data_dir: &Path, open: impl FnOnce() -> F, command: TenantCommand) -> Result<()>
where
    F: std::future::Future<Output = Result<Coffer>>,
{
    let admin = match Client::operator(&data_dir.join(ADMIN_SOCKET)).await {
        Some(client) => Admin::Server(client),
        None => Admin::Local(Box::new(open().await?)),
    };
    match command {
        TenantCommand::Token(TokenCommand::Create(args)) => {
            let token = admin.create_token(&args.tenant, &args.name).await?;
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
        TenantCommand::Quota(args) => quota(&admin, args).await,
    }
}

async fn quota(admin: &Admin, args: QuotaArgs) -> Result<()> {
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
