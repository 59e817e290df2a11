//! Tests of the worker runtime through its public API: scenarios on the testkit's
//! `MemoryStore`, and timing (leases, heartbeats, backoff) on mockall mocks with tokio's
//! paused clock.

mod gating;
mod handlers;
mod mocked;
mod mocks;
mod notify;
mod scenarios;
mod sqlite;
mod support;
