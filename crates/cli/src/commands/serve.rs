//! `prismq serve`: the queue over HTTP or HTTPS (the `prismq-server` crate) until SIGINT or
//! SIGTERM, which stops accepting connections and lets the requests in flight finish.

use std::time::Duration;

use clap::Args;

use prismq_app::config::MAX_BODY_LIMIT;
use prismq_server::ServerOptions;

use crate::context::Ctx;
use crate::exit::{CliError, CliResult};
use crate::signals;

/// `prismq serve`. Each flag overrides its `[server]` configuration key.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on [server.bind; default 127.0.0.1:8787].
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Serve plain HTTP on an address other machines can reach (refused without it; warned
    /// at every start with it). Prefer a loopback address behind a TLS-terminating proxy.
    #[arg(long)]
    pub insecure_bind: bool,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key
    /// [server.tls_cert].
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM); needs --tls-cert [server.tls_key].
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// The largest request body in bytes, 413 above it [server.body_limit; default 4194304].
    #[arg(long, value_name = "BYTES")]
    pub body_limit: Option<u64>,
    /// The longest a request may take, its body included, 408 after it (10s, 2m)
    /// [server.request_timeout; default 30s].
    #[arg(long, value_name = "DURATION")]
    pub request_timeout: Option<String>,
    /// A dashboard session ends after this long without a request (30m, 8h).
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub session_idle: String,
}

/// The range of `--request-timeout` (as `server.request_timeout`).
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);

/// Runs `serve`.
///
/// # Errors
/// A malformed or refused address (exit 2), the store's errors, a port already in use.
pub async fn run(ctx: &Ctx, args: ServeArgs) -> CliResult {
    let mut options = ServerOptions::from_config(&ctx.config.server);
    if let Some(bind) = &args.bind {
        options.bind = bind.trim().parse().map_err(|_| {
            CliError::usage(format!(
                "invalid --bind: {:?} is not an address; accepted: IP:PORT such as 127.0.0.1:8787 or [::1]:8787",
                prismq_domain::task::truncate_for_message(bind)
            ))
        })?;
    }
    if let Some(limit) = args.body_limit {
        if !(1024..=MAX_BODY_LIMIT).contains(&limit) {
            return Err(CliError::usage(format!(
                "invalid --body-limit: {limit} bytes is out of range; accepted: 1024 to {MAX_BODY_LIMIT} (as server.body_limit)"
            )));
        }
        options.body_limit = usize::try_from(limit).unwrap_or(usize::MAX);
    }
    if let Some(text) = &args.request_timeout {
        options.request_timeout = prismq_app::config::parse_duration(text.trim())
            .filter(|d| (MIN_REQUEST_TIMEOUT..=MAX_REQUEST_TIMEOUT).contains(d))
            .ok_or_else(|| {
                CliError::usage(format!(
                    "invalid --request-timeout: {:?} is not a duration from 3s to 1h; accepted: {} (as server.request_timeout)",
                    prismq_domain::task::truncate_for_message(text),
                    prismq_app::config::DURATION_ACCEPTED
                ))
            })?;
    }
    let session_idle = prismq_app::config::parse_duration(args.session_idle.trim())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            CliError::usage(format!(
                "invalid --session-idle: {:?} is not a duration above zero; accepted: {}",
                prismq_domain::task::truncate_for_message(&args.session_idle),
                prismq_app::config::DURATION_ACCEPTED
            ))
        })?;
    options.insecure_bind = args.insecure_bind;
    options.session_idle = session_idle;
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        options.tls = Some(prismq_server::tls::TlsFiles { cert, key });
    }
    if let Some(files) = &options.tls {
        // Checked before the store is opened, so a bad file changes nothing.
        prismq_server::tls::acceptor(files).map_err(|e| CliError::usage(e.to_string()))?;
    }
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let warning =
        prismq_server::check_bind(&options).map_err(|e| CliError::usage(e.to_string()))?;
    if let Some(w) = warning {
        eprintln!("warning: {w}");
        tracing::warn!("{w}");
    }
    let app = ctx.app()?;
    let shutdown = signals::listen("no new connections; requests in flight finish");
    prismq_server::serve(app, options, shutdown.token.clone(), |addr| {
        eprintln!("listening on {scheme}://{addr} (dashboard at /, API v1 at /v1, OpenAPI at /v1/openapi.json)");
    })
    .await
    .map_err(|e| CliError::failure(e.to_string()))?;
    Ok(())
}
