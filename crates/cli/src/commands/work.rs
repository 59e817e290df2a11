//! `prismq work`: runs the app's worker runtime with the flags' settings until a signal (or
//! the drain / max-tasks mode) ends it, with a live status line on a terminal and plain log
//! lines otherwise, then prints the run report. With `--server URL` the same runtime and
//! plugins run on the `prismq-client` ports, over the API of a `prismq serve`, with no
//! database; with `--metrics-bind ADDR` the worker's Prometheus metrics are served there.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use prismq_app::config::Prefetch;
use prismq_app::{
    App, AppError, Config, PluginContext, PluginRegistry, RunOptions, RunReport, Runtime,
    WorkerSettings, PLUGINS,
};
use prismq_client::{
    ApiKeySecret, ClientError, RemoteOptions, RemoteStore, TrustedCa, ENV_API_KEY,
};
use prismq_domain::ports::{QueueStats, QuotaLedger, SystemClock, TaskQueue};
use prismq_domain::{ClaimingStrategy, TaskStatus};
use prismq_server::worker_metrics::{self, Instrumented, WorkerMetrics};

use super::parse;
use crate::context::Ctx;
use crate::exit::{CliError, CliResult, Exit};
use crate::progress;
use crate::render::{self, Table};
use crate::signals;

/// `prismq work`.
#[derive(Debug, Args)]
pub struct WorkArgs {
    /// Concurrent worker loops (default worker.concurrency: the number of CPUs).
    #[arg(long, short = 'c', value_name = "N")]
    pub concurrency: Option<usize>,
    /// fifo, lifo, priority or weighted_random (default worker.strategy).
    #[arg(long, value_name = "STRATEGY")]
    pub strategy: Option<String>,
    /// Only these task types (comma-separated or repeated; default all registered).
    #[arg(long, value_name = "TYPE", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Tasks each loop claims at once and keeps ahead, their completions written together:
    /// auto, or 1 (one at a time) to 256 (default worker.prefetch: auto, up to 16 while
    /// tasks take a few milliseconds).
    #[arg(long, value_name = "N")]
    pub prefetch: Option<String>,
    /// Stop when no eligible task is left.
    #[arg(long)]
    pub drain: bool,
    /// Claim at most this many tasks, then stop once they are finished.
    #[arg(long, value_name = "N")]
    pub max_tasks: Option<u64>,
    /// Work for the queue of the `prismq serve` at this URL, over its API: no database file
    /// and no database password here. The key (scope work) comes from --api-key-file or
    /// PRISMQ_API_KEY.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The file holding the API key for --server (instead of PRISMQ_API_KEY).
    #[arg(long, value_name = "FILE", requires = "server")]
    pub api_key_file: Option<std::path::PathBuf>,
    /// Trust the certificates in this PEM file for an https:// --server, besides the
    /// bundled web roots: a private CA, or the server's self-signed certificate
    /// [worker.server_ca_cert].
    #[arg(long, value_name = "FILE", requires = "server")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Serve this worker's Prometheus metrics at http://ADDR/metrics (a loopback address
    /// unless --metrics-insecure-bind).
    #[arg(long, value_name = "ADDR")]
    pub metrics_bind: Option<String>,
    /// Serve the metrics on an address other machines can reach (no key protects them).
    #[arg(long, requires = "metrics_bind")]
    pub metrics_insecure_bind: bool,
}

/// How long a remote worker's claim waits on the server for a task (not when draining,
/// which must learn at once that nothing is left).
const REMOTE_CLAIM_WAIT: Duration = Duration::from_secs(25);

/// The most bytes read from `--api-key-file` (a key is 68).
const KEY_FILE_MAX: u64 = 4096;

/// Runs `work`.
///
/// # Errors
/// Invalid flags (exit 2), the runtime's set-up or store errors.
pub async fn run(ctx: &Ctx, args: WorkArgs) -> CliResult<Exit> {
    let metrics_bind = metrics_bind(&args)?;
    if let Some(server) = args.server.clone() {
        return run_remote(ctx, args, &server, metrics_bind).await;
    }
    let mut app = ctx.app()?;
    let settings = settings(&app, &args)?;
    let options = RunOptions {
        drain: args.drain,
        max_tasks: args.max_tasks,
    };
    let shutdown = signals::listen("no new claims; in-flight tasks get the shutdown grace");
    let metrics = match metrics_bind {
        Some(bind) => {
            let m = WorkerMetrics::new();
            let served = start_metrics(
                bind,
                args.metrics_insecure_bind,
                m.clone(),
                app.quota.clone(),
                Some(app.queue.clone()),
            )
            .await?;
            app.ports.queue = Arc::new(Instrumented::new(app.ports.queue.clone(), m));
            Some(served)
        }
        None => None,
    };
    let runtime = app.runtime_with(settings.clone());
    let started = Instant::now();
    let status = ctx.interactive().then(|| live_status(ctx, &app, started));
    let result = runtime.run(options, shutdown.token.clone()).await;
    if let Some((bar, handle)) = status {
        handle.abort();
        bar.finish_and_clear();
    }
    stop_metrics(metrics).await;
    let report = result?;
    print_report(ctx, &report, started.elapsed(), shutdown.signalled())?;
    Ok(Exit::Ok)
}

/// `work --server URL`: the runtime and plugins on the client's ports; no database opened.
async fn run_remote(
    ctx: &Ctx,
    args: WorkArgs,
    server: &str,
    metrics_bind: Option<SocketAddr>,
) -> CliResult<Exit> {
    let key = api_key(args.api_key_file.as_deref())?;
    let settings = settings_for(&ctx.config, &args)?;
    let mut options = RemoteOptions::new(server, key)?;
    if let Some(path) = args
        .ca_cert
        .as_ref()
        .or(ctx.config.worker.server_ca_cert.as_ref())
    {
        options.ca = Some(TrustedCa::read(path)?);
    }
    options.claim_wait = if args.drain {
        Duration::ZERO
    } else {
        REMOTE_CLAIM_WAIT
    };
    let shutdown = signals::listen("no new claims; in-flight tasks get the shutdown grace");
    options.stop = shutdown.token.clone();
    if options.is_plain_over_network() {
        let w = format!(
            "talking plain HTTP to {}, which is not this machine: the API key and the tasks cross the network unencrypted; use an https:// URL",
            options.server
        );
        eprintln!("warning: {w}");
        tracing::warn!("{w}");
    }
    let store = RemoteStore::new(options).map_err(|e| CliError::failure(e.to_string()))?;
    check_server(&store).await?;
    let shared = Arc::new(store.clone());
    let quota: Arc<dyn QuotaLedger> = shared.clone();
    let registry = registry(&ctx.config, quota.clone(), shared.clone())?;
    let mut queue: Arc<dyn TaskQueue> = shared.clone();
    let metrics = match metrics_bind {
        Some(bind) => {
            let m = WorkerMetrics::new();
            let served = start_metrics(
                bind,
                args.metrics_insecure_bind,
                m.clone(),
                quota.clone(),
                None,
            )
            .await?;
            queue = Arc::new(Instrumented::new(queue, m));
            Some(served)
        }
        None => None,
    };
    let runtime = Runtime::new(
        queue,
        shared.clone(),
        shared.clone(),
        shared.clone(),
        Arc::new(registry),
        settings,
    )
    .with_quota(quota)
    .with_schedules(shared);
    tracing::info!(server = %store.server(), "working for a remote queue");
    let run = RunOptions {
        drain: args.drain,
        max_tasks: args.max_tasks,
    };
    let started = Instant::now();
    let result = runtime.run(run, shutdown.token.clone()).await;
    stop_metrics(metrics).await;
    let report = result?;
    print_report(ctx, &report, started.elapsed(), shutdown.signalled())?;
    Ok(Exit::Ok)
}

/// Asks the server once before starting: a refused key or a server without the worker
/// endpoints ends the command; a server that does not answer yet is waited for by the loops.
async fn check_server(store: &RemoteStore) -> CliResult {
    match store.check().await {
        Ok(()) => Ok(()),
        Err(e @ ClientError::Refused { .. }) => Err(CliError::new(
            Exit::Config,
            format!("{e}; create one with `prismq keys create --name NAME --scope work` on the server's machine and pass it with --api-key-file FILE or {ENV_API_KEY}"),
        )),
        Err(e @ ClientError::Untrusted { .. }) => Err(CliError::new(Exit::Config, e.to_string())),
        Err(e @ ClientError::Server { status: 404, .. }) => Err(CliError::new(
            Exit::Config,
            format!("{e}; the URL must name a `prismq serve` of this version (with /v1/work)"),
        )),
        Err(e) => {
            eprintln!("warning: {e}; the workers keep trying");
            tracing::warn!(error = %e, "the server does not answer yet");
            Ok(())
        }
    }
}

/// The key from `--api-key-file`, else `PRISMQ_API_KEY`; never quoted in a message.
fn api_key(file: Option<&Path>) -> CliResult<ApiKeySecret> {
    let text = match file {
        Some(path) => read_key_file(path)?,
        None => std::env::var(ENV_API_KEY)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                CliError::usage(format!(
                    "--server needs an API key with the work scope: pass --api-key-file FILE or set {ENV_API_KEY} (`prismq keys create --name NAME --scope work` on the server's machine prints one)"
                ))
            })?,
    };
    Ok(ApiKeySecret::new(&text)?)
}

fn read_key_file(path: &Path) -> CliResult<String> {
    use std::io::Read;
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| {
        let exit = if e.kind() == std::io::ErrorKind::NotFound {
            Exit::NotFound
        } else {
            Exit::Usage
        };
        CliError::new(exit, format!("cannot read --api-key-file {shown}: {e}"))
    })?;
    let mut text = String::new();
    file.take(KEY_FILE_MAX)
        .read_to_string(&mut text)
        .map_err(|_| {
            CliError::usage(format!(
                "invalid --api-key-file {shown}: not a text file; accepted: a file holding one key from `prismq keys create`"
            ))
        })?;
    Ok(text)
}

/// Every plugin in [`PLUGINS`], charging `quota` (the server's ledger, over the API) and
/// reading tracked videos from `tracked` (the server's, over the API).
fn registry(
    config: &Config,
    quota: Arc<dyn QuotaLedger>,
    tracked: Arc<dyn prismq_domain::ports::TrackedVideos>,
) -> CliResult<PluginRegistry> {
    let ctx = PluginContext {
        quota,
        tracked,
        clock: Arc::new(SystemClock),
    };
    let mut registry = PluginRegistry::new();
    for p in PLUGINS {
        p.register(&mut registry, &config.plugin_section(p.name()), &ctx)
            .map_err(|source| AppError::Plugin {
                plugin: p.name(),
                source,
            })?;
    }
    Ok(registry)
}

/// `--metrics-bind`, parsed and checked before anything starts.
fn metrics_bind(args: &WorkArgs) -> CliResult<Option<SocketAddr>> {
    let Some(text) = &args.metrics_bind else {
        return Ok(None);
    };
    let bind: SocketAddr = text.trim().parse().map_err(|_| {
        CliError::usage(format!(
            "invalid --metrics-bind: {:?} is not an address; accepted: IP:PORT such as 127.0.0.1:9187",
            prismq_domain::task::truncate_for_message(text)
        ))
    })?;
    if let Some(w) = worker_metrics::check_metrics_bind(bind, args.metrics_insecure_bind)
        .map_err(|e| CliError::usage(e.to_string()))?
    {
        eprintln!("warning: {w}");
        tracing::warn!("{w}");
    }
    Ok(Some(bind))
}

type Served = (CancellationToken, JoinHandle<()>);

/// Starts the metrics listener and waits until it listens.
async fn start_metrics(
    bind: SocketAddr,
    insecure: bool,
    metrics: WorkerMetrics,
    quota: Arc<dyn QuotaLedger>,
    queue: Option<Arc<dyn TaskQueue>>,
) -> CliResult<Served> {
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let token = stop.clone();
    let handle = tokio::spawn(async move {
        let r = worker_metrics::serve_metrics(bind, insecure, metrics, quota, queue, token, |a| {
            let _ = tx.send(a);
        })
        .await;
        if let Err(e) = &r {
            tracing::warn!(error = %e, "the metrics listener stopped");
        }
        let _ = done_tx.send(r);
    });
    match rx.await {
        Ok(addr) => {
            eprintln!("worker metrics at http://{addr}/metrics");
            Ok((stop, handle))
        }
        Err(_) => {
            let message = match done_rx.await {
                Ok(Err(e)) => e.to_string(),
                _ => "the metrics listener stopped".to_owned(),
            };
            Err(CliError::new(Exit::Unavailable, message))
        }
    }
}

async fn stop_metrics(served: Option<Served>) {
    if let Some((stop, handle)) = served {
        stop.cancel();
        let _ = handle.await;
    }
}

/// The most worker loops one process runs (the range of `worker.concurrency`).
const MAX_CONCURRENCY: usize = 1024;

/// The worker settings from configuration with the flags applied.
///
/// # Errors
/// An unknown strategy, a malformed task type, concurrency 0.
pub fn settings(app: &App, args: &WorkArgs) -> CliResult<WorkerSettings> {
    settings_for(&app.config, args)
}

/// [`settings`] from a configuration alone (a remote worker has no app).
///
/// # Errors
/// As [`settings`].
pub fn settings_for(config: &Config, args: &WorkArgs) -> CliResult<WorkerSettings> {
    let mut s = WorkerSettings::from_config(&config.worker);
    if let Some(c) = args.concurrency {
        if c == 0 {
            return Err(CliError::usage(
                "invalid concurrency: 0 worker loops would never run a task; accepted: 1 or more",
            ));
        }
        if c > MAX_CONCURRENCY {
            return Err(CliError::usage(format!(
                "invalid concurrency: {c} is out of range; accepted: 1 to {MAX_CONCURRENCY} (as worker.concurrency)"
            )));
        }
        s.concurrency = c;
    }
    if let Some(p) = &args.prefetch {
        s.prefetch =
            Prefetch::parse(p).map_err(|e| CliError::usage(format!("{e} (as worker.prefetch)")))?;
    }
    if let Some(st) = &args.strategy {
        s.strategy = st.parse::<ClaimingStrategy>()?;
    }
    if !args.types.is_empty() {
        s.task_types = args
            .types
            .iter()
            .map(|t| parse::task_type(t.trim()))
            .collect::<CliResult<_>>()?;
    }
    Ok(s)
}

type Status = (indicatif::ProgressBar, tokio::task::JoinHandle<()>);

/// A status line refreshed from the queue's stats every half second.
fn live_status(ctx: &Ctx, app: &App, started: Instant) -> Status {
    let bar = progress::status(ctx, "starting");
    let queue = app.queue.clone();
    let line = bar.clone();
    let handle = tokio::spawn(async move {
        let mut base: Option<(u64, u64)> = None;
        loop {
            if let Ok(stats) = queue.stats().await {
                let done = (
                    stats.total(TaskStatus::Completed),
                    stats.total(TaskStatus::Failed),
                );
                let (c0, f0) = *base.get_or_insert(done);
                line.set_message(status_text(
                    &stats,
                    done.0 - c0.min(done.0),
                    done.1 - f0.min(done.1),
                    started.elapsed(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    (bar, handle)
}

fn status_text(stats: &QueueStats, completed: u64, failed: u64, elapsed: Duration) -> String {
    let rate = completed as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "queued {} · running {} · completed {completed} · failed {failed} · {rate:.1}/s",
        stats.total(TaskStatus::Queued),
        stats.total(TaskStatus::Claimed) + stats.total(TaskStatus::Running),
    )
}

/// Prints the run's counts.
///
/// # Errors
/// stdout is closed.
pub fn print_report(ctx: &Ctx, r: &RunReport, elapsed: Duration, signalled: bool) -> CliResult {
    if ctx.json() {
        return render::json(&json!({
            "report": r,
            "elapsed_ms": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            "stopped_by_signal": signalled,
        }));
    }
    let mut t = Table::new(&[
        "CLAIMED",
        "COMPLETED",
        "FAILED",
        "RETRIED",
        "DEFERRED",
        "RELEASED",
        "LOST",
    ]);
    t.row(
        [
            r.claimed,
            r.completed,
            r.failed,
            r.retried,
            r.deferred,
            r.released,
            r.lost,
        ]
        .iter()
        .map(ToString::to_string)
        .collect(),
    );
    let how = if signalled {
        "stopped by signal"
    } else {
        "finished"
    };
    render::print(&format!(
        "{how} after {:.1}s\n{}",
        elapsed.as_secs_f64(),
        t.render()
    ))
}
