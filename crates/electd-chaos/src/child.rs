//! The `--exec` command the soak gives its nodes: the same binary in a
//! hidden mode, recording ticks that the end of the run reads back.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use harness::now_ns;

/// `argv[1]` of the `--exec` command the soak gives its nodes.
pub const CHILD_MODE: &str = "--exec-child";

/// The `--exec` command: ticks every 50 ms with `CLOCK_MONOTONIC` times, and
/// keeps a grandchild in its process group.
pub fn child(file: &Path) -> ExitCode {
    let term = std::env::var("ELECTD_TERM").unwrap_or_default();
    let pid = std::process::id();
    let Ok(mut out) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
    else {
        return ExitCode::FAILURE;
    };
    if let Ok(grandchild) = std::process::Command::new("sleep").arg("1000").spawn() {
        let _ = writeln!(out, "grandchild {pid} {}", grandchild.id());
    }
    loop {
        if writeln!(out, "tick {term} {pid} {}", now_ns()).is_err() {
            return ExitCode::FAILURE;
        }
        // The work this command stands for: a beat every 50 ms.
        std::thread::sleep(Duration::from_millis(50));
    }
}
