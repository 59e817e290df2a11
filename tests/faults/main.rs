//! Resource faults against the real `prismq` binary: the Data API stand-in misbehaving
//! (hang, trickle, closed connections, cut and truncated bodies, a gigabyte body), yt-dlp
//! misbehaving (hang, background children holding its pipes, garbage, floods), and the disk
//! filling up (ENOSPC on a small tmpfs, RLIMIT_FSIZE), and a 10 s Data API outage under two
//! worker processes.
#![cfg(unix)]

mod data_api;
mod dbfiles;
mod disk_full;
mod outage;
mod ytdlp;
