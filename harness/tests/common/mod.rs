//! What several of the harness's test files share.

// Each test file is its own crate and uses only some of these.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// `scimlab conformance BASE --token t --report REPORT EXTRA...`: its exit code, stdout and
/// stderr together, and how long it took.
pub fn conformance(base: &str, extra: &[&str], report: &Path) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_scimlab"))
        .args(["conformance", base, "--token", "t", "--report"])
        .arg(report)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text, started.elapsed())
}

/// This process's peak resident memory (`VmHWM`), in kB; 0 where /proc is not there.
pub fn peak_memory_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
