//! Tests of the worker runtime through its public API: scenarios on the testkit's
//! `MemoryStore`, timing (leases, heartbeats, backoff) on mockall mocks with tokio's paused
//! clock, and end to end on a real SQLite file and a real PostgreSQL server.

mod ahead;
mod gating;
mod handlers;
mod mocked;
mod mocks;
mod notify;
mod postgres;
mod scenarios;
mod sqlite;
mod support;
