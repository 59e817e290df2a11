//! `prismq serve`: the queue over HTTP or HTTPS (the `prismq-server` crate) until SIGINT or
//! SIGTERM, which stops accepting connections and lets the requests in flight finish.

use std::net::SocketAddr;

use clap::Args;

use prismq_server::{ServerOptions, DEFAULT_BIND};

use crate::context::Ctx;
use crate::exit::{CliError, CliResult};
use crate::signals;

/// `prismq serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_BIND)]
    pub bind: String,
    /// Serve plain HTTP on an address other machines can reach (refused without it; warned
    /// at every start with it). Prefer a loopback address behind a TLS-terminating proxy.
    #[arg(long)]
    pub insecure_bind: bool,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// The largest request body in bytes (413 above it).
    #[arg(long, value_name = "BYTES", default_value_t = 4 * 1024 * 1024)]
    pub body_limit: usize,
    /// A dashboard session ends after this long without a request (30m, 8h).
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub session_idle: String,
}

/// Runs `serve`.
///
/// # Errors
/// A malformed or refused address (exit 2), the store's errors, a port already in use.
pub async fn run(ctx: &Ctx, args: ServeArgs) -> CliResult {
    let bind: SocketAddr = args.bind.trim().parse().map_err(|_| {
        CliError::usage(format!(
            "invalid --bind: {:?} is not an address; accepted: IP:PORT such as 127.0.0.1:8787 or [::1]:8787",
            prismq_domain::task::truncate_for_message(&args.bind)
        ))
    })?;
    if args.body_limit == 0 {
        return Err(CliError::usage(
            "invalid --body-limit: 0 bytes would refuse every request; accepted: 1 or more",
        ));
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
    let mut options = ServerOptions::new(bind);
    options.insecure_bind = args.insecure_bind;
    options.body_limit = args.body_limit;
    options.session_idle = session_idle;
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        let files = prismq_server::tls::TlsFiles { cert, key };
        // Checked before the store is opened, so a bad file changes nothing.
        prismq_server::tls::acceptor(&files).map_err(|e| CliError::usage(e.to_string()))?;
        options.tls = Some(files);
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
