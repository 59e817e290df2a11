//! Work notices: an idle loop woken by its store's notifier claims a new task at once
//! instead of waiting out its backoff; without a notice it still polls.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use prismq_app::RunOptions;
use prismq_domain::ports::{WorkNotifier, WorkSubscription};

use crate::handlers::{Scripted, Step};
use crate::support::{self, Mem};

/// A notifier like PostgreSQL's: a counter bumped on every notice.
struct Notices(watch::Sender<u64>);

struct Sub(watch::Receiver<u64>);

impl WorkNotifier for Notices {
    fn subscribe(&self) -> Box<dyn WorkSubscription> {
        Box::new(Sub(self.0.subscribe()))
    }
}

#[async_trait]
impl WorkSubscription for Sub {
    async fn wait(&mut self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.0.changed()).await,
            Ok(Ok(()))
        )
    }
}

fn slow_polling() -> prismq_app::WorkerSettings {
    prismq_app::WorkerSettings {
        idle_backoff_min: Duration::from_secs(60),
        idle_backoff_max: Duration::from_secs(60),
        ..support::settings()
    }
}

#[tokio::test(start_paused = true)]
async fn a_notice_wakes_an_idle_loop_long_before_its_backoff() {
    let mem = Mem::new();
    let h = Scripted::new("woken", vec![Step::Ok(1)]);
    let notices = Arc::new(Notices(watch::channel(0).0));
    let rt = mem
        .runtime(support::registry(vec![h.clone()]), slow_polling())
        .with_notifier(notices.clone());
    let started = tokio::time::Instant::now();
    let run = tokio::spawn(async move {
        rt.run(
            RunOptions {
                drain: false,
                max_tasks: Some(1),
            },
            CancellationToken::new(),
        )
        .await
    });
    // Let the loop find the queue empty and go idle for its 60 s backoff.
    tokio::time::sleep(Duration::from_secs(1)).await;
    mem.enqueue("woken").await;
    notices.0.send_modify(|n| *n += 1);
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.completed, 1);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "woken after {:?}; the backoff alone would have taken 60 s",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_notice_the_loop_still_polls() {
    let mem = Mem::new();
    let h = Scripted::new("polled", vec![Step::Ok(1)]);
    let notices = Arc::new(Notices(watch::channel(0).0));
    let rt = mem
        .runtime(support::registry(vec![h.clone()]), slow_polling())
        .with_notifier(notices);
    let started = tokio::time::Instant::now();
    let run = tokio::spawn(async move {
        rt.run(
            RunOptions {
                drain: false,
                max_tasks: Some(1),
            },
            CancellationToken::new(),
        )
        .await
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    mem.enqueue("polled").await; // no notice sent
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.completed, 1);
    assert!(
        started.elapsed() >= Duration::from_secs(30),
        "claimed after {:?}",
        started.elapsed()
    );
}
