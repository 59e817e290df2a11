//! A yt-dlp run that ends early takes its grandchildren with it: a fake `yt-dlp` script
//! starts `sleep 300` in the background and waits on it; past the time limit, on
//! cancellation and when the run's future is dropped, that sleep must be gone too.
#![cfg(unix)]

use prismq_domain::CancelSignal;
use prismq_plugins::youtube::source::ytdlp::process::{run, RunOutput};
use prismq_plugins::youtube::source::SourceError;
use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

/// A fake yt-dlp in a temp dir that records its own pid and its grandchild's. It runs as
/// `/bin/sh <script>`: executing a file just written races with the other tests' forks,
/// which can briefly hold it open for writing (ETXTBSY).
struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        // The background sleep inherits stdout and stderr, so it also holds the pipes open.
        let script = format!(
            "#!/bin/sh\necho $$ > '{d}/pid.tmp' && mv '{d}/pid.tmp' '{d}/pid'\n\
             sleep 300 &\necho $! > '{d}/grandchild.tmp' && mv '{d}/grandchild.tmp' '{d}/grandchild'\n\
             wait\n"
        );
        std::fs::write(dir.path().join("yt-dlp"), script).unwrap();
        Fake { dir }
    }

    /// Runs the fake with `timeout` and `cancel`.
    async fn run(
        &self,
        timeout: Duration,
        cancel: &CancelSignal,
    ) -> Result<RunOutput, SourceError> {
        let script = OsString::from(self.dir.path().join("yt-dlp"));
        run(Path::new("/bin/sh"), &[script], timeout, cancel).await
    }

    /// Completes once the script has started its grandchild (panics after 10 s).
    async fn started(&self) {
        self.pid("grandchild").await;
    }

    /// Waits (up to 10 s) for the script to have written `name`, then reads the pid in it.
    async fn pid(&self, name: &str) -> u32 {
        let file = self.dir.path().join(name);
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(text) = std::fs::read_to_string(&file) {
                return text.trim().parse().unwrap();
            }
            assert!(Instant::now() < until, "the script never wrote {name}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Both pids, once the script has started its grandchild.
    async fn pids(&self) -> (u32, u32) {
        (self.pid("pid").await, self.pid("grandchild").await)
    }
}

/// Whether `pid` is a live process: running or sleeping, not gone and not a zombie (a
/// killed grandchild is reparented and reaped by init, which may take a moment).
fn alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if proc.join("self").exists() {
        return match std::fs::read_to_string(proc.join(pid.to_string()).join("stat")) {
            // The state follows the parenthesised command name.
            Ok(stat) => !matches!(
                stat.rsplit_once(')').map(|(_, rest)| rest.trim_start()),
                Some(rest) if rest.starts_with('Z') || rest.starts_with('X')
            ),
            Err(_) => false,
        };
    }
    let out = std::process::Command::new("ps")
        .args(["-o", "stat=", "-p", &pid.to_string()])
        .output()
        .unwrap();
    let stat = String::from_utf8_lossy(&out.stdout);
    out.status.success() && !stat.trim().is_empty() && !stat.trim().starts_with('Z')
}

/// Whether `pid` has left the process table entirely (so no zombie of it remains).
fn reaped(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if proc.join("self").exists() {
        return !proc.join(pid.to_string()).exists();
    }
    let out = std::process::Command::new("ps")
        .args(["-o", "stat=", "-p", &pid.to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

/// Polls `check` for up to 5 s.
async fn eventually(check: impl Fn() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    check()
}

/// Kills a process a failed assertion would otherwise leave sleeping for 300 s.
fn cleanup(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

async fn assert_all_gone(child: u32, grandchild: u32) {
    let grandchild_gone = eventually(|| !alive(grandchild)).await;
    cleanup(grandchild);
    assert!(
        grandchild_gone,
        "the grandchild {grandchild} was left running"
    );
    assert!(
        eventually(|| reaped(child)).await,
        "the child {child} was left behind (running or a zombie)"
    );
}

#[tokio::test]
async fn the_time_limit_kills_the_grandchildren() {
    let fake = Fake::new();
    let started = Instant::now();
    let e = fake
        .run(Duration::from_secs(3), &CancelSignal::new())
        .await
        .unwrap_err();
    assert!(matches!(e, SourceError::Timeout), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let (child, grandchild) = fake.pids().await;
    assert_all_gone(child, grandchild).await;
}

#[tokio::test]
async fn cancellation_kills_the_grandchildren() {
    let fake = Fake::new();
    let cancel = CancelSignal::new();
    let (r, ()) = tokio::join!(fake.run(Duration::from_secs(60), &cancel), async {
        fake.started().await;
        cancel.cancel();
    });
    let e = r.unwrap_err();
    assert!(matches!(e, SourceError::Cancelled), "{e:?}");
    let (child, grandchild) = fake.pids().await;
    assert_all_gone(child, grandchild).await;
}

#[tokio::test]
async fn dropping_the_run_kills_the_grandchildren() {
    let fake = Fake::new();
    let cancel = CancelSignal::new();
    let mut running = Box::pin(fake.run(Duration::from_secs(60), &cancel));
    // Drive the run until the script has started its grandchild, then drop the future, as
    // the runtime does with a handler it abandons.
    tokio::select! {
        r = &mut running => panic!("the run ended on its own: {r:?}"),
        () = fake.started() => {}
    }
    let (child, grandchild) = fake.pids().await;
    assert!(
        alive(grandchild),
        "the grandchild should run until the drop"
    );
    drop(running);
    assert_all_gone(child, grandchild).await;
}
