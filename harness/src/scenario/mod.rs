//! `scimlab scenario`: joiner / mover / leaver scenario files run through mock-idp against both
//! targets, each expectation read back from the target's own permission view.

pub mod model;
pub mod run;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

pub use model::{Scenario, ScenarioError};
pub use run::{RunError, ScenarioRun};

/// The `*.yaml` files of a folder, sorted.
pub fn files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// The JSON report of a set of runs (the source of truth).
pub fn to_json(runs: &[ScenarioRun]) -> Value {
    let failed = runs.iter().filter(|r| !r.passed).count();
    json!({
        "tool": "scimlab",
        "version": env!("CARGO_PKG_VERSION"),
        "command": "scenario",
        "verdict": if failed == 0 { "pass" } else { "fail" },
        "summary": {"runs": runs.len(), "passed": runs.len() - failed, "failed": failed},
        "runs": runs,
    })
}

/// One line per run, and the failing steps under it.
pub fn to_terminal(runs: &[ScenarioRun]) -> String {
    let mut out = String::new();
    for r in runs {
        let verdict = if r.passed { "pass" } else { "FAIL" };
        out.push_str(&format!(
            "{verdict} {} [{}] {:.2} s ({})\n",
            r.name, r.dialect, r.seconds, r.file
        ));
        for s in r.steps.iter().filter(|s| !s.ok) {
            out.push_str(&format!(
                "     step {} ({}): {}\n",
                s.index, s.kind, s.detail
            ));
        }
    }
    let failed = runs.iter().filter(|r| !r.passed).count();
    out.push_str(&format!(
        "scenarios: {} passed, {failed} failed\n",
        runs.len() - failed
    ));
    out
}
