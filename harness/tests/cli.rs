//! The `scimlab` binary as a user runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn scimlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scimlab"))
}

#[test]
fn ci_writes_the_report_contract_and_passes() {
    let dir = tempfile::tempdir().unwrap();
    let out = scimlab()
        .args(["ci", "--report"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    for key in [
        "tool", "version", "command", "started", "finished", "verdict", "summary",
    ] {
        assert!(report.get(key).is_some(), "report.json lacks {key}");
    }
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["summary"]["smoke"]["failed"], 0);
    assert!(report["summary"]["smoke"]["passed"].as_u64().unwrap() >= 10);
    assert!(std::fs::read_to_string(dir.path().join("summary.md"))
        .unwrap()
        .contains("Not built yet"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("not built yet: mock-space"), "{stdout}");
}

#[test]
fn subcommands_not_built_yet_say_so_and_exit_2() {
    for cmd in ["conformance", "scenario", "load", "report"] {
        let out = scimlab()
            .args([cmd, "http://127.0.0.1:1/"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not built yet"),
            "{cmd}"
        );
    }
}

#[test]
fn up_prints_its_endpoint_then_ready_and_serves_scim() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = scimlab()
        .args(["up", "--port", "0", "--token", "tok", "--data"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let ready = lines.next().unwrap().unwrap();
    let result = std::panic::catch_unwind(|| {
        let parts: Vec<&str> = first.split(' ').collect();
        assert_eq!(parts[0], "scim");
        assert!(parts[1].starts_with("http://127.0.0.1:"));
        assert_eq!(parts[2], "token=tok");
        assert_eq!(ready, "ready");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let status = rt.block_on(async {
            reqwest::Client::new()
                .get(format!("{}/Users", parts[1]))
                .bearer_auth("tok")
                .send()
                .await
                .unwrap()
                .status()
        });
        assert_eq!(status, 200);
    });
    child.kill().unwrap();
    child.wait().unwrap();
    result.unwrap();
    assert!(
        dir.path().join("scim").exists(),
        "data lives under DATA/scim"
    );
}
