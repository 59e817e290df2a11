//! LISTEN/NOTIFY: wakes idle workers when a task becomes queued.
//!
//! A trigger on `task_queue` sends `NOTIFY prismq_work, '<schema>'` whenever a row becomes
//! `queued` (enqueue, retry, release, requeue); PostgreSQL delivers it at commit. One
//! listening connection per store (opened on the first [`crate::PostgresStore::subscribe`])
//! turns each notification for its schema into a tick of a `watch` channel, which every
//! [`WorkSignal`] sees. When the listening connection drops, it reconnects with backoff and
//! ticks once (notifications may have been missed), so waiters re-poll: polling remains
//! the fallback, never the only way.

use futures_util::StreamExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use crate::tls::Connector;

/// The channel the trigger notifies.
pub const CHANNEL: &str = "prismq_work";

pub(crate) struct Signal {
    cfg: tokio_postgres::Config,
    tls: Connector,
    schema: Option<String>,
    stop: CancellationToken,
    tx: Arc<watch::Sender<u64>>,
    started: AtomicBool,
}

impl Signal {
    pub(crate) fn new(
        cfg: tokio_postgres::Config,
        tls: Connector,
        schema: Option<String>,
        stop: CancellationToken,
    ) -> Self {
        Signal {
            cfg,
            tls,
            schema,
            stop,
            tx: Arc::new(watch::channel(0).0),
            started: AtomicBool::new(false),
        }
    }

    pub(crate) fn subscribe(&self) -> WorkSignal {
        let rx = self.tx.subscribe();
        if !self.started.load(Ordering::Acquire) {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                if !self.started.swap(true, Ordering::AcqRel) {
                    handle.spawn(listen(
                        self.cfg.clone(),
                        self.tls.clone(),
                        self.schema.clone(),
                        self.stop.clone(),
                        self.tx.clone(),
                    ));
                }
            }
        }
        WorkSignal { rx }
    }
}

/// A subscription to "a task was enqueued" notifications. Keep one per worker loop across
/// claims: a notification that arrives while the worker is busy is remembered, and the next
/// [`WorkSignal::wait`] returns at once.
#[derive(Debug)]
pub struct WorkSignal {
    rx: watch::Receiver<u64>,
}

impl WorkSignal {
    /// Waits for a notification since the last wait (true) or until `timeout` (false).
    pub async fn wait(&mut self, timeout: Duration) -> bool {
        match tokio::time::timeout(timeout, self.rx.changed()).await {
            Ok(Ok(())) => true,
            Ok(Err(_)) => {
                // The store was dropped: nothing will ever notify; behave like a timeout.
                tokio::time::sleep(timeout).await;
                false
            }
            Err(_) => false,
        }
    }
}

async fn listen(
    cfg: tokio_postgres::Config,
    tls: Connector,
    schema: Option<String>,
    stop: CancellationToken,
    tx: Arc<watch::Sender<u64>>,
) {
    let tick = |tx: &watch::Sender<u64>| tx.send_modify(|v| *v = v.wrapping_add(1));
    let mut backoff = Duration::from_millis(100);
    loop {
        if stop.is_cancelled() {
            return;
        }
        match cfg.connect(tls.clone()).await {
            Ok((client, mut conn)) => {
                let (ntx, mut nrx) = mpsc::unbounded_channel::<String>();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
                    while let Some(m) = messages.next().await {
                        match m {
                            Ok(AsyncMessage::Notification(n)) => {
                                if ntx.send(n.payload().to_owned()).is_err() {
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                if client
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .await
                    .is_ok()
                {
                    backoff = Duration::from_millis(100);
                    tick(&tx);
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => {
                                driver.abort();
                                return;
                            }
                            m = nrx.recv() => match m {
                                Some(payload) => {
                                    if schema.as_deref().is_none_or(|s| s == payload) {
                                        tick(&tx);
                                    }
                                }
                                None => break,
                            }
                        }
                    }
                    tracing::debug!("LISTEN connection lost; reconnecting");
                }
                driver.abort();
            }
            Err(e) => tracing::debug!(error = %e, "LISTEN connection failed; retrying"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[async_trait::async_trait]
impl prismq_domain::ports::WorkSubscription for WorkSignal {
    async fn wait(&mut self, timeout: Duration) -> bool {
        WorkSignal::wait(self, timeout).await
    }
}
