//! `prismq keys create|list|revoke`: API keys for `prismq serve`. A new key's secret is
//! printed once, by `create`, and never stored: the store keeps its SHA-256 hash.

use clap::{Args, Subcommand};
use serde_json::json;

use prismq_domain::ports::keys::{scopes_to_text, DEFAULT_RATE_LIMIT, MAX_RATE_LIMIT};
use prismq_domain::ports::{ApiKey, ApiKeyId, NewApiKey, Scope};

use crate::context::Ctx;
use crate::exit::{CliError, CliResult};
use crate::render::{self, Table};

/// `prismq keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (once: it cannot be shown again).
    Create(CreateArgs),
    /// Every key (never the secret: its prefix).
    List,
    /// Revoke a key: requests with it are refused from now on.
    Revoke {
        /// The key's id (see `keys list`).
        id: i64,
    },
}

/// `prismq keys create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Who or what uses it.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// read, enqueue, work or admin (comma-separated or repeated; admin includes all).
    #[arg(
        long = "scope",
        value_name = "SCOPE",
        value_delimiter = ',',
        required = true
    )]
    pub scopes: Vec<String>,
    /// Requests per minute (1-100000; default 600).
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
}

/// Runs a `keys` subcommand.
///
/// # Errors
/// Invalid flags (exit 2), an unknown key (exit 3), store errors.
pub async fn run(ctx: &Ctx, cmd: KeysCommand) -> CliResult {
    match cmd {
        KeysCommand::Create(a) => {
            let scopes = a
                .scopes
                .iter()
                .map(|s| s.parse::<Scope>())
                .collect::<Result<Vec<_>, _>>()?;
            let rate = a.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT);
            if !(1..=MAX_RATE_LIMIT).contains(&rate) {
                return Err(CliError::usage(format!(
                    "invalid --rate-limit: {rate} is out of range; accepted: requests per minute from 1 to {MAX_RATE_LIMIT}"
                )));
            }
            let secret = prismq_server::secret::generate();
            let new = NewApiKey::for_secret(&secret, a.name, scopes, rate)?;
            new.validate()?;
            let app = ctx.app()?;
            let key = app.keys.create(new).await?;
            if ctx.json() {
                return render::json(&json!({ "key": secret, "api_key": key }));
            }
            render::print(&format!(
                "created API key {} ({}), scopes {}, {} requests/minute:\n{secret}\nStore it now: it is not shown again (only its hash is kept).\n",
                key.id,
                key.name,
                scopes_to_text(&key.scopes),
                key.rate_limit
            ))
        }
        KeysCommand::List => {
            ctx.require_db()?;
            let app = ctx.store_app()?;
            let keys = app.keys.list().await?;
            if ctx.json() {
                return render::json(&keys);
            }
            print_list(&keys)
        }
        KeysCommand::Revoke { id } => {
            ctx.require_db()?;
            if id <= 0 {
                return Err(CliError::usage(format!(
                    "invalid id: {id} is not a key id; accepted: a positive integer (see `prismq keys list`)"
                )));
            }
            let app = ctx.store_app_to_write()?;
            let key = app.keys.revoke(ApiKeyId(id)).await?;
            if ctx.json() {
                return render::json(&key);
            }
            render::print(&format!(
                "revoked API key {} ({}, {}…)\n",
                key.id, key.name, key.prefix
            ))
        }
    }
}

fn print_list(keys: &[ApiKey]) -> CliResult {
    if keys.is_empty() {
        return render::print("no API keys; create one with `prismq keys create`\n");
    }
    let mut t = Table::new(&[
        "ID",
        "PREFIX",
        "NAME",
        "SCOPES",
        "RATE/MIN",
        "ACTIVE",
        "CREATED",
        "LAST USED",
    ])
    .right_align(&[0, 4]);
    for k in keys {
        t.row(vec![
            k.id.to_string(),
            format!("{}…", k.prefix),
            render::cut(&k.name, 40),
            scopes_to_text(&k.scopes),
            k.rate_limit.to_string(),
            if k.active { "yes" } else { "revoked" }.to_owned(),
            render::time(k.created_at),
            render::opt_time(k.last_used_at),
        ]);
    }
    render::print(&t.render())
}
