//! Timing on mockall mocks under tokio's paused clock: lease renewals, heartbeats, idle
//! backoff, and store errors.
