//! End-to-end scenarios that need several processes: the real `prismq` binary working
//! tasks whose handler runs a fake `yt-dlp` (no internet), with the queue inspected
//! through the app's ports; and, in-process on a fake clock, the app against a Data API
//! stand-in whose quota runs out midway (`quota_midway`).
#![cfg(unix)]

mod example_plugin;
mod fake_ytdlp;
mod growth;
mod outliers;
mod quota_midway;
mod schedules;
mod support;
mod worker_processes;
