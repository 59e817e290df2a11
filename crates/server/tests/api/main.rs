//! API v1 against a real server on loopback over a real SQLite file: every endpoint, keys
//! and scopes, rate limits, bad input (nothing written), and every response checked
//! against the OpenAPI document the server serves.

mod bad_input;
mod endpoints;
mod export;
mod keys;
mod metrics;
mod schedules;
mod support;
mod tls;
mod work;
