//! The options the benches open the store's files with: SQLite's default page size, or the
//! one `PRISMQ_BENCH_PAGE_SIZE` names (bytes; what `database.page_size` sets), so every
//! figure can be measured on files made either way. The bare loops and floor tables keep
//! SQLite's default: they are the fixed reference.

#![allow(dead_code)]

use prismq_storage_sqlite::{PageSize, SqliteOptions};
use std::path::Path;

/// The page size of the store's new files in this run.
pub fn page_size() -> PageSize {
    match std::env::var("PRISMQ_BENCH_PAGE_SIZE") {
        Ok(v) => v
            .trim()
            .parse()
            .ok()
            .and_then(PageSize::new)
            .unwrap_or_else(|| panic!("PRISMQ_BENCH_PAGE_SIZE={v:?}: {}", PageSize::ACCEPTED)),
        Err(_) => PageSize::DEFAULT,
    }
}

/// `SqliteOptions::new(path)` with this run's page size.
pub fn options(path: &Path) -> SqliteOptions {
    let mut o = SqliteOptions::new(path);
    o.page_size = page_size();
    o
}

/// A line for a bench's header: the page size its store files are made with.
pub fn describe() -> String {
    format!(
        "the store's files: {}-byte pages (PRISMQ_BENCH_PAGE_SIZE); the bare loop's: SQLite's default",
        page_size().get()
    )
}
