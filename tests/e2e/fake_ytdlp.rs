//! A fake `yt-dlp` for end-to-end tests: a POSIX shell script in a temp dir that answers
//! listings (`-J`) from the reference fixtures and detail runs (`-j URL…`) with the full
//! video fixture re-labelled with each requested id. It records every run's arguments in
//! `args.log`, and the first detail run can sleep (to be killed mid-task).
//!
//! Shared by `prismq-cli`'s tests (included by path) and the `prismq-tests` package.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The fixtures directory of the `tests/` package.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find_map(|d| {
            let f = d.join("tests/fixtures/ytdlp");
            f.is_dir().then_some(f)
        })
        .expect("tests/fixtures/ytdlp in an ancestor of the manifest dir")
}

/// The fake and its working directory.
#[derive(Debug)]
pub struct FakeYtdlp {
    dir: tempfile::TempDir,
}

impl FakeYtdlp {
    /// A fake whose first detail run sleeps `first_run_sleep_secs` (0: never).
    pub fn new(first_run_sleep_secs: u32) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let f = fixtures();
        for name in ["channel_videos_flat", "search_flat"] {
            std::fs::copy(
                f.join(format!("{name}.json")),
                d.join(format!("{name}.json")),
            )
            .expect("copy fixture");
        }
        let full: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(f.join("video_full.json")).expect("video fixture"),
        )
        .expect("video fixture parses");
        // One line, as `yt-dlp -j` prints it; the id is replaced per request.
        std::fs::write(d.join("video.json"), full.to_string()).expect("write template");
        let dq = d.display();
        let sleep = if first_run_sleep_secs > 0 {
            format!(
                "if mkdir '{dq}/slept' 2>/dev/null; then sleep {first_run_sleep_secs} & echo $! > '{dq}/sleeper.pid'; wait $!; fi"
            )
        } else {
            String::new()
        };
        let script = format!(
            r#"#!/bin/sh
PATH=/usr/bin:/bin:$PATH
for a in "$@"; do printf '%s\n' "$a" >> '{dq}/args.log'; done
echo '----' >> '{dq}/args.log'
case " $* " in
  *" -J "*)
    case "$*" in
      *ytsearch*) cat '{dq}/search_flat.json' ;;
      *) cat '{dq}/channel_videos_flat.json' ;;
    esac
    exit 0 ;;
esac
{sleep}
for a in "$@"; do
  case "$a" in
    https://www.youtube.com/watch\?v=*)
      id="${{a#*v=}}"
      echo "$id" >> '{dq}/details.log'
      sed "s/Kq9MZLmFMHQ/$id/g" '{dq}/video.json'; echo ;;
  esac
done
exit 0
"#
        );
        let path = d.join("yt-dlp");
        std::fs::write(&path, script).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod script");
        FakeYtdlp { dir }
    }

    /// The script's path (for `youtube.ytdlp_path`).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("yt-dlp")
    }

    /// The video ids detail runs were asked for, one per line, in order.
    pub fn details(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("details.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The pid of the sleeping first run, once it started.
    pub fn sleeper(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("sleeper.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for FakeYtdlp {
    fn drop(&mut self) {
        if let Some(pid) = self.sleeper() {
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
    }
}
