//! An exit that skips destructors (a second Ctrl-C calls `std::process::exit`) still takes
//! yt-dlp's process group down: `kill_running_groups` kills every run in flight. Its own
//! test binary, since it kills every run of the process.
#![cfg(unix)]

use prismq_domain::CancelSignal;
use prismq_plugins::youtube::source::ytdlp::process::{kill_running_groups, run};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')').map(|(_, rest)| rest.trim_start()),
            Some(rest) if rest.starts_with('Z') || rest.starts_with('X')
        ),
        Err(_) => false,
    }
}

async fn read_pid(file: &Path) -> u32 {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            return text.trim().parse().unwrap();
        }
        assert!(Instant::now() < until, "the script never wrote {file:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn kill_running_groups_takes_down_every_run_in_flight() {
    if !Path::new("/proc/self").exists() {
        return; // reads /proc; the process-group tests cover other Unixes
    }
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let scripts: Vec<PathBuf> = dirs
        .iter()
        .map(|dir| {
            let d = dir.path().display();
            let script = dir.path().join("yt-dlp");
            std::fs::write(
                &script,
                format!(
                    "#!/bin/sh\nsleep 300 &\necho $! > '{d}/gc.tmp' && mv '{d}/gc.tmp' '{d}/gc'\nwait\n"
                ),
            )
            .unwrap();
            script
        })
        .collect();
    let runs: Vec<_> = scripts
        .iter()
        .map(|s| {
            let arg = OsString::from(s);
            tokio::spawn(async move {
                run(
                    Path::new("/bin/sh"),
                    &[arg],
                    Duration::from_secs(120),
                    &CancelSignal::new(),
                )
                .await
            })
        })
        .collect();
    let mut grandchildren = Vec::new();
    for dir in &dirs {
        grandchildren.push(read_pid(&dir.path().join("gc")).await);
    }
    assert!(grandchildren.iter().all(|&p| alive(p)));

    kill_running_groups();

    let until = Instant::now() + Duration::from_secs(5);
    while grandchildren.iter().any(|&p| alive(p)) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let left: Vec<u32> = grandchildren
        .iter()
        .copied()
        .filter(|&p| alive(p))
        .collect();
    for p in &left {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &p.to_string()])
            .status();
    }
    assert!(left.is_empty(), "still running: {left:?}");
    // The runs see their tool killed and end at once, well before their 120 s limit.
    for r in runs {
        let out = tokio::time::timeout(Duration::from_secs(5), r)
            .await
            .expect("the run ended")
            .unwrap();
        if let Ok(out) = out {
            assert_eq!(out.code, None, "killed by a signal, not exited");
        }
    }
}
