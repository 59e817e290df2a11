//! Running the `prismq` binary in a sandbox (found and isolated by the shared harness), and
//! reading the queue it wrote.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use prismq_app::{App, Config};
use prismq_domain::ports::{LogRecord, TaskFilter};
use prismq_domain::{Task, TaskId};

/// A temp dir with a database, and the environment every process gets.
#[derive(Debug)]
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Sandbox {
    pub fn new(env: &[(&str, &str)]) -> Self {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("queue.db")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = isolated(self.dir.path());
        c.arg("--db").arg(self.db()).args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs to completion and asserts success.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args).output().expect("run prismq");
        assert!(
            out.status.success(),
            "prismq {args:?}: {:?}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a long-running command with its output in `name.out` / `name.err`.
    pub fn spawn(&self, name: &str, args: &[&str]) -> Child {
        let out = std::fs::File::create(self.dir.path().join(format!("{name}.out"))).unwrap();
        let err = std::fs::File::create(self.dir.path().join(format!("{name}.err"))).unwrap();
        self.command(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn prismq")
    }

    /// What a spawned command wrote to stderr.
    pub fn stderr_of(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.err"))).unwrap_or_default()
    }

    /// Reads the queue through the app's ports.
    pub fn inspect<T>(&self, f: impl AsyncFnOnce(&App) -> T) -> T {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut config = Config::default();
        config.database.path = Some(self.db());
        let app = App::open_with(config, &[]).expect("open the queue");
        rt.block_on(f(&app))
    }

    pub fn task(&self, id: i64) -> Task {
        self.inspect(async |app| app.queue.get(TaskId(id)).await.expect("task"))
    }

    pub fn tasks(&self) -> Vec<Task> {
        self.inspect(async |app| {
            app.queue
                .list(&TaskFilter {
                    limit: 10_000,
                    ..TaskFilter::default()
                })
                .await
                .expect("list")
        })
    }

    pub fn log(&self, id: i64) -> Vec<LogRecord> {
        self.inspect(async |app| app.logs.list(TaskId(id)).await.expect("log"))
    }
}

pub use crate::harness::{isolated, wait_exit, wait_until};

/// Sends SIGTERM to `child` (graceful shutdown) with the system's `kill`.
pub fn terminate(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success());
}
