//! The options the benches open the store's files with: the store's default page size
//! (2048, `PageSize::DEFAULT`), or the one `PRISMQ_BENCH_PAGE_SIZE` names (bytes; what `database.page_size` sets), so every
//! figure can be measured on files made either way; and WAL writes batched a commit (the
//! store's default) unless `PRISMQ_BENCH_WAL_WRITES=frames` asks for SQLite's default VFS
//! (`SqliteOptions::batch_wal_writes`). The bare loops and floor tables keep SQLite's
//! defaults: they are the fixed reference.

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

/// Whether the store's connections batch WAL writes in this run.
pub fn batch_wal_writes() -> bool {
    match std::env::var("PRISMQ_BENCH_WAL_WRITES").as_deref() {
        Err(_) | Ok("batched") => true,
        Ok("frames") => false,
        Ok(v) => panic!("PRISMQ_BENCH_WAL_WRITES={v:?}: batched (the default) or frames"),
    }
}

/// `SqliteOptions::new(path)` with this run's page size and WAL writes.
pub fn options(path: &Path) -> SqliteOptions {
    let mut o = SqliteOptions::new(path);
    o.page_size = page_size();
    o.batch_wal_writes = batch_wal_writes();
    o
}

/// A line for a bench's header: the page size its store files are made with.
pub fn describe() -> String {
    format!(
        "the store's files: {}-byte pages (PRISMQ_BENCH_PAGE_SIZE), WAL writes {} (PRISMQ_BENCH_WAL_WRITES); the bare loop's: SQLite's defaults",
        page_size().get(),
        if batch_wal_writes() { "batched a commit" } else { "two a frame, SQLite's default VFS" }
    )
}
