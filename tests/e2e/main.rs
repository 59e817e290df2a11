//! End-to-end scenarios that need several processes: the real `prismq` binary working
//! tasks whose handler runs a fake `yt-dlp` (no internet), with the queue inspected
//! through the app's ports.
#![cfg(unix)]

mod fake_ytdlp;
#[path = "../harness/mod.rs"]
mod harness;
mod support;
mod worker_processes;
