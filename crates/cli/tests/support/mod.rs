//! Running the real `prismq` binary in a sandbox: a temp dir as working directory, home
//! and configuration directory, a database inside it, no `PRISMQ_*`, `YOUTUBE_API_KEY` or
//! `RUST_LOG` from the outside, and a PATH without yt-dlp.

#![allow(dead_code, clippy::new_without_default)]

pub mod data_api;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A sandbox for one test.
#[derive(Debug)]
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        Sandbox {
            dir,
            env: Vec::new(),
        }
    }

    /// The database file used by every command.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("queue.db")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Sets an environment variable for every later command.
    pub fn env(&mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> &mut Self {
        self.env.push((
            key.to_owned(),
            value.as_ref().to_string_lossy().into_owned(),
        ));
        self
    }

    /// `prismq --db queue.db ARGS…`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run prismq")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = self.bare();
        c.arg("--db").arg(self.db()).args(args);
        c
    }

    /// The binary in the sandbox without `--db` or arguments.
    pub fn bare(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_prismq"));
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            // COLUMNS too: a table's width is the test's choice, not the shell's.
            if k.starts_with("PRISMQ_")
                || k == "YOUTUBE_API_KEY"
                || k == "RUST_LOG"
                || k == "COLUMNS"
            {
                c.env_remove(&k);
            }
        }
        let d = self.dir.path();
        c.current_dir(d)
            .env("HOME", d)
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env("XDG_DATA_HOME", d.join("data"))
            .env("APPDATA", d.join("config"))
            .env("LOCALAPPDATA", d.join("data"))
            .env("PATH", d.join("bin"))
            .env("NO_COLOR", "1");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "prismq {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs with `--json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    }

    /// Runs, expecting `code`, and returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "prismq {args:?}: expected exit {code}\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }

    /// The database file's bytes and its -wal file's, to prove nothing was written.
    pub fn db_bytes(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        let wal = PathBuf::from(format!("{}-wal", self.db().display()));
        (
            std::fs::read(self.db()).expect("read db"),
            std::fs::read(wal).ok(),
        )
    }
}

/// FNV-1a of `bytes`, for messages.
pub fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Replaces `YYYY-MM-DD HH:MM:SSZ` and `YYYY-MM-DDTHH:MM:SS…Z` timestamps by `<time>`.
pub fn normalise_times(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let digit = |j: usize| b.get(j).is_some_and(u8::is_ascii_digit);
    while i < b.len() {
        let is_date = (0..4).all(|k| digit(i + k))
            && b.get(i + 4) == Some(&b'-')
            && digit(i + 5)
            && digit(i + 6)
            && b.get(i + 7) == Some(&b'-')
            && digit(i + 8)
            && digit(i + 9)
            && matches!(b.get(i + 10), Some(b' ' | b'T'))
            && digit(i + 11);
        if is_date {
            let mut j = i + 11;
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == b':' || b[j] == b'.') {
                j += 1;
            }
            if b.get(j) == Some(&b'Z') {
                j += 1;
            }
            // Same width, so aligned tables stay aligned.
            out.push_str(&format!("{:<width$}", "<time>", width = j - i));
            i = j;
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    lines.join("\n") + if out.ends_with('\n') { "\n" } else { "" }
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
