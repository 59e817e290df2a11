//! Shared by the PostgreSQL test binaries: the server's URL (from the service script) and a
//! fresh schema per test, so tests run in parallel on one database.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use prismq_domain::ports::{Clock, SystemClock};
use prismq_storage_postgres::{PostgresOptions, PostgresStore};
use serde_json::Value;

/// The test server's URL. Panics, failing the test, when the service script was not sourced:
/// the PostgreSQL tests never pass silently without a server.
pub fn url() -> String {
    match std::env::var("PRISMQ_TEST_POSTGRES_URL") {
        Ok(u) if !u.trim().is_empty() => u,
        _ => panic!(
            "PRISMQ_TEST_POSTGRES_URL is not set, so there is no PostgreSQL server to test against. \
             Start a throwaway one first with `source scripts/services/postgres.sh` (scripts/check.sh \
             does this), then run the tests again in the same shell"
        ),
    }
}

/// An environment variable the service script exports, or a failing test saying so.
pub fn service_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `source scripts/services/postgres.sh` first")
    })
}

/// A schema name no other test uses.
pub fn fresh_schema(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t_{tag}_{}_{n}_{nanos}", std::process::id())
}

/// Options for a fresh schema on the test server.
pub fn options(tag: &str) -> PostgresOptions {
    let mut o = PostgresOptions::new(url()).with_schema(fresh_schema(tag));
    o.pool_size = 8;
    o
}

/// A store on `schema` with the system clock.
pub fn store_in(schema: &str) -> PostgresStore {
    let mut o = PostgresOptions::new(url()).with_schema(schema);
    o.pool_size = 16;
    PostgresStore::connect_lazy(o, Arc::new(SystemClock) as Arc<dyn Clock>).expect("store")
}

/// Every node that reads `results` in `plan` (its type and index), and whether a Sort sits
/// above it (a plan from `EXPLAIN (FORMAT JSON)`).
pub fn reads(plan: &Value, under_sort: bool, out: &mut Vec<(String, String, bool)>) {
    let node = plan["Node Type"].as_str().unwrap_or_default();
    let sorting = under_sort || node == "Sort" || node == "Incremental Sort";
    if plan["Relation Name"].as_str() == Some("results") {
        out.push((
            node.to_owned(),
            plan["Index Name"].as_str().unwrap_or_default().to_owned(),
            sorting,
        ));
    }
    for c in plan["Plans"].as_array().into_iter().flatten() {
        reads(c, sorting, out);
    }
}
