//! A fast fake `yt-dlp` for load scenarios: a `dash`-friendly script that uses shell
//! built-ins only, so thousands of runs cost little. For each `watch?v=ID` argument it
//! prints one `-j` line; ids starting `poison` make it exit 2 (refused arguments: a
//! permanent error), ids starting `flaky` make it report HTTP 429 and exit 1 (retryable).
//! Every detail request is appended to `details.log`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The id of the n-th ordinary video (11 characters).
pub fn video(n: usize) -> String {
    format!("vid{n:08}")
}

/// A video id whose fetch always fails permanently.
pub fn poison(n: usize) -> String {
    format!("poison{n:05}")
}

/// A video id whose fetch always fails as retryable (HTTP 429).
pub fn flaky(n: usize) -> String {
    format!("flaky{n:06}")
}

/// The fake, written into `dir`.
#[derive(Debug)]
pub struct FastFake {
    dir: PathBuf,
}

impl FastFake {
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let log = dir.join("details.log");
        let script = format!(
            r#"#!/bin/sh
for a in "$@"; do
  case "$a" in
    https://www.youtube.com/watch\?v=poison*)
      echo "Usage: yt-dlp [OPTIONS] URL [URL...]" >&2
      echo "yt-dlp: error: no such option: --poisoned" >&2
      exit 2 ;;
    https://www.youtube.com/watch\?v=flaky*)
      echo "ERROR: [youtube] ${{a#*v=}}: HTTP Error 429: Too Many Requests" >&2
      exit 1 ;;
    https://www.youtube.com/watch\?v=*)
      id="${{a#*v=}}"
      echo "$id" >> '{log}'
      printf '{{"id":"%s","title":"video %s","channel":"Storm","channel_id":"UCstormstormstormstormst","timestamp":1700000000,"duration":61,"view_count":100,"like_count":5,"comment_count":1}}\n' "$id" "$id" ;;
  esac
done
exit 0
"#,
            log = log.display()
        );
        let path = dir.join("yt-dlp");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        FastFake {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("yt-dlp")
    }

    /// How many detail fetches ran (a video counted once per run that printed it).
    pub fn fetches(&self) -> usize {
        std::fs::read_to_string(self.dir.join("details.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }
}
