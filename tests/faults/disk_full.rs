//! Disk full while writing. First the real thing, ENOSPC: the database lives on a small
//! tmpfs that a filler file tops up; workers must report the full disk, stay up and back
//! off, a one-shot write command must refuse with exit 4, nothing may be corrupted, and the
//! work must resume once the filler is deleted. Then RLIMIT_FSIZE (`prlimit --fsize`): the
//! worker must not be killed by SIGXFSZ but report the error like any other, and `prismq db
//! page-size` cut short by it must leave the queue as it was. They skip, loudly, where
//! tmpfs cannot be mounted or `prlimit` is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use prismq_tests::harness::fake::FastFake;
use prismq_tests::harness::invariants::{verify, OrdinaryFailures};
use prismq_tests::harness::{enqueue_batch, serial, signal, wait_exit, wait_until, Sandbox};

/// A tmpfs mounted on a directory until dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn free_kib(dir: &Path) -> u64 {
    let out = Command::new("df").arg("-k").arg(dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

/// Whether `prlimit` is installed; says loudly that `scenario` did not run when it is not.
fn has_prlimit(scenario: &str) -> bool {
    let there = Command::new("prlimit").arg("--version").output().is_ok();
    if !there {
        eprintln!("SKIPPED: prlimit is not installed; {scenario} did not run");
    }
    there
}

/// `prismq args…` in `s`, its writes limited to files of `fsize` bytes (`prlimit --fsize`).
fn size_limited(s: &Sandbox, fsize: u64, args: &[&str]) -> Command {
    let mut c = Command::new("prlimit");
    c.arg(format!("--fsize={fsize}"));
    let inner = s.command(args);
    c.arg(inner.get_program()).args(inner.get_args());
    c.current_dir(s.dir.path());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

fn sandbox() -> (Sandbox, FastFake) {
    let mut s = Sandbox::new();
    let fake = FastFake::new(&s.path("fake"));
    s.env("PRISMQ_YOUTUBE__BACKEND", "ytdlp")
        .env("PRISMQ_YOUTUBE__YTDLP_PATH", fake.path())
        .env("PRISMQ_WORKER__LEASE", "2s")
        .env("PRISMQ_WORKER__IDLE_BACKOFF_MAX", "200ms")
        .env("PRISMQ_WORKER__SHUTDOWN_GRACE", "2s")
        .env("PRISMQ_RETRY__BASE", "100ms")
        .env("PRISMQ_RETRY__CAP", "500ms")
        .env("PRISMQ_LOGGING__LEVEL", "warn");
    (s, fake)
}

fn pending(s: &Sandbox) -> i64 {
    s.count(
        "SELECT coalesce(sum(n), 0) FROM queue_counts WHERE status IN (0, 1, 2) /* queued, claimed, running */",
    )
}

#[test]
fn a_full_disk_is_reported_survived_and_recovered_from() {
    let _one_at_a_time = serial();
    let (s, _fake) = sandbox();
    let dir = s.db().parent().unwrap().to_path_buf();
    let Some(_mounted) = Tmpfs::mount(&dir, "16m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); the disk-full scenario did not run"
        );
        return;
    };
    s.ok(&["init"]);
    enqueue_batch(&s, 3_000);
    let filler = dir.join("filler");
    let keep = 192;
    let fill = free_kib(&dir).saturating_sub(keep);
    std::fs::write(&filler, vec![0u8; usize::try_from(fill * 1024).unwrap()]).unwrap();

    let mut workers: Vec<_> = (0..2)
        .map(|n| {
            let name = format!("w{n}");
            let c = s.spawn(&name, &["work", "--concurrency", "2"]);
            (name, c)
        })
        .collect();
    wait_until(
        Duration::from_secs(60),
        "a worker to hit the full disk",
        || {
            workers
                .iter()
                .any(|(n, _)| s.stderr_of(n).contains("disk is full"))
        },
    );
    let full_msg = workers
        .iter()
        .map(|(n, _)| s.stderr_of(n))
        .find(|e| e.contains("disk is full"))
        .unwrap();
    assert!(
        full_msg.contains("free space"),
        "the error does not say what to do: {full_msg}"
    );
    // A one-shot write refuses cleanly with the documented code. A write can still fit in
    // space a checkpoint gave back or the WAL already holds, so the disk is topped up
    // before each try, and a try that fits is tried again (at most five times).
    let mut refused = None;
    for n in 0..5 {
        let top = dir.join(format!("filler-{n}"));
        let left = free_kib(&dir);
        std::fs::write(&top, vec![0u8; usize::try_from(left * 1024).unwrap_or(0)]).ok();
        let out = s.run(&["enqueue", "keyword", "while full"]);
        if out.status.code() == Some(4) {
            refused = Some(String::from_utf8_lossy(&out.stderr).into_owned());
            break;
        }
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    let err = refused.expect("an enqueue on the full disk is refused with exit 4");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("disk is full"), "{err}");
    std::thread::sleep(Duration::from_secs(2));
    for (name, c) in &mut workers {
        assert!(
            c.try_wait().unwrap().is_none(),
            "{name} died on a full disk: {}",
            s.stderr_of(name)
        );
    }
    let stuck = pending(&s);
    assert!(stuck > 0, "the batch drained before the disk filled");

    std::fs::remove_file(&filler).unwrap();
    for n in 0..5 {
        let _ = std::fs::remove_file(dir.join(format!("filler-{n}")));
    }
    wait_until(
        Duration::from_secs(120),
        "the batch to drain after space returned",
        || pending(&s) == 0,
    );
    for (_, c) in &workers {
        signal(c.id(), "TERM");
    }
    for (name, c) in &mut workers {
        let status = wait_exit(c, Duration::from_secs(30), name);
        assert!(
            status.success(),
            "{name}: {status:?}: {}",
            s.stderr_of(name)
        );
    }
    let f = verify(&s, OrdinaryFailures::AttemptsExhausted);
    eprintln!(
        "disk full: {stuck} tasks pending while full; after space returned {} completed, {} dead \
         letters by policy ({} poisoned, {} flaky, {} lease lapsed, {} retries used up), {} results rows",
        f.completed,
        f.tasks - f.completed,
        f.dead_poison,
        f.dead_flaky,
        f.dead_lease_lapsed,
        f.dead_other,
        f.results
    );
}

#[test]
fn a_file_size_limit_is_an_error_not_a_kill() {
    let _one_at_a_time = serial();
    if !has_prlimit("the RLIMIT_FSIZE scenario") {
        return;
    }
    let (s, _fake) = sandbox();
    s.ok(&["init"]);
    enqueue_batch(&s, 2_000);
    // Checkpointed by the enqueue's close: the -wal is gone, the file is the database.
    let size = std::fs::metadata(s.db()).unwrap().len();
    let mut c = size_limited(&s, size + 256 * 1024, &["work", "--concurrency", "2"]);
    let err_file = std::fs::File::create(s.path("limited.err")).unwrap();
    let mut limited = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_file)
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(60), "the limit to be hit", || {
        limited.try_wait().unwrap().is_some()
            || s.stderr_of("limited").contains("error=store unavailable")
    });
    let status = limited.try_wait().unwrap();
    assert!(
        status.is_none(),
        "the worker was killed by the file size limit ({status:?}) instead of reporting it: {}",
        s.stderr_of("limited")
    );
    signal(limited.id(), "TERM");
    let status = wait_exit(&mut limited, Duration::from_secs(30), "limited worker");
    assert!(status.code().is_some(), "{status:?}");
    // Without the limit, the work resumes and nothing was lost or corrupted.
    // (Leases the stopped worker could not hand back lapse after 2 s; retries wait their
    // backoff: drain until nothing is left.)
    for _ in 0..20 {
        s.ok(&["work", "--drain", "--concurrency", "2"]);
        if pending(&s) == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(pending(&s), 0);
    verify(&s, OrdinaryFailures::AttemptsExhausted);
}

/// `prismq db page-size` cut short by the file size limit: the rewrite's writes fail, the
/// command says what it needs and exits non-zero, and the queue is as it was (its pages,
/// WAL mode, every task; `validate` passes) and works.
#[test]
fn a_page_size_rewrite_cut_short_leaves_the_queue_as_it_was() {
    let _one_at_a_time = serial();
    if !has_prlimit("the cut-short rewrite") {
        return;
    }
    let (mut s, _fake) = sandbox();
    s.env("PRISMQ_DATABASE__PAGE_SIZE", "4096");
    s.ok(&["init"]);
    enqueue_batch(&s, 2_000);
    let size = std::fs::metadata(s.db()).unwrap().len();
    // The file's page size and journal mode.
    let modes = || -> (i64, String) {
        let c = s.sql();
        let size = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        (
            size,
            c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap(),
        )
    };
    let tasks = s.tasks();
    // Half the file: the copy the rewrite writes (the same rows in 1 KiB pages) cannot fit.
    let out = size_limited(&s, size / 2, &["db", "page-size", "1024"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(4),
        "not killed, and reported: {err}"
    );
    assert!(
        err.contains("rewriting the file failed") && err.contains("the file is as it was"),
        "{err}"
    );
    assert_eq!(modes(), (4096, "wal".to_owned()));
    assert_eq!(s.tasks(), tasks);
    s.ok(&["validate", "--quick"]);
    // And the same command without the limit goes through.
    let done = s.ok(&["db", "page-size", "1024"]);
    assert!(
        done.contains("rewritten with 1024-byte pages (were 4096)"),
        "{done}"
    );
    assert_eq!(s.tasks(), tasks);
}
