//! The work-notification port: a push channel that wakes idle workers when tasks are
//! enqueued (PostgreSQL's LISTEN/NOTIFY). Stores without one are polled with backoff.

use async_trait::async_trait;
use std::time::Duration;

/// A source of "tasks were enqueued" notices.
pub trait WorkNotifier: Send + Sync {
    /// A subscription for one worker loop. A loop MUST hold it across claims: a notice that
    /// arrives while the loop is busy is remembered, and the next wait returns at once.
    fn subscribe(&self) -> Box<dyn WorkSubscription>;
}

/// One loop's subscription.
#[async_trait]
pub trait WorkSubscription: Send {
    /// Waits for a notice since the last wait (true) or until `timeout` passes (false). MUST
    /// return within `timeout` even when the channel is broken, so polling still works.
    async fn wait(&mut self, timeout: Duration) -> bool;
}
