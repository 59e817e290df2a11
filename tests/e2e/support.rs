//! What the end-to-end scenarios use of the shared harness, and a graceful stop for the
//! worker processes they start.

use std::process::{Child, Command};

pub use prismq_tests::harness::{wait_exit, wait_until, Sandbox};

/// Sends SIGTERM to `child` (graceful shutdown) with the system's `kill`.
pub fn terminate(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success());
}
