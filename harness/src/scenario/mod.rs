//! `scimlab scenario`: joiner / mover / leaver scenario files run through mock-idp against both
//! targets, each expectation read back from the target's own permission view, and every
//! target compared in full with the permission oracle after the last step.

mod directory;
pub mod model;
pub mod oracle;
mod play;
pub mod random;
pub mod run;
pub mod scim_run;

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

/// Loads every file, so a bad one fails before any server starts.
pub fn load_all(files: &[PathBuf]) -> Result<Vec<(PathBuf, Scenario)>, ScenarioError> {
    files
        .iter()
        .map(|f| Scenario::load(f).map(|s| (f.clone(), s)))
        .collect()
}

/// Runs each scenario in each of its dialects (only `only`, when given), one after another:
/// a scenario for the mocks on fresh embedded servers or on `remote` ones (in the one dialect
/// their IdP speaks), a scenario `for: scim` against the `scim` endpoints (scimlab's own
/// engine when none is given).
pub async fn run_all(
    loaded: &[(PathBuf, Scenario)],
    policies: &Path,
    only: Option<model::Dialect>,
    remote: Option<&run::Remote>,
    scim: &scim_run::ScimTargets,
) -> Result<Vec<ScenarioRun>, RunError> {
    let mut runs = Vec::new();
    for (file, s) in loaded {
        let only = match s.written_for {
            model::Written::Mocks => remote.map(|r| r.dialect).or(only),
            model::Written::Scim => only,
        };
        for dialect in s.dialects.iter().filter(|d| only.is_none_or(|o| o == **d)) {
            runs.push(match s.written_for {
                model::Written::Mocks => run::run_on(s, file, *dialect, policies, remote).await?,
                model::Written::Scim => scim_run::run(s, file, *dialect, scim).await?,
            });
        }
    }
    Ok(runs)
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

/// JUnit XML: one suite per scenario file and dialect, one case per step.
pub fn to_junit(runs: &[ScenarioRun]) -> Result<String, quick_junit::SerializeError> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("scimlab scenario");
    for r in runs {
        let mut suite = TestSuite::new(format!("{} [{}]", r.name, r.dialect));
        for s in &r.steps {
            let status = if s.ok {
                TestCaseStatus::success()
            } else {
                let mut failed = TestCaseStatus::non_success(NonSuccessKind::Failure);
                failed.set_message(s.detail.clone());
                failed
            };
            let mut case = TestCase::new(format!("step {} ({})", s.index, s.kind), status);
            case.set_time(std::time::Duration::from_secs_f64(s.millis / 1000.0));
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string()
}

/// A Markdown summary: a table of runs, then every failing step.
pub fn to_markdown(runs: &[ScenarioRun]) -> String {
    let failed = runs.iter().filter(|r| !r.passed).count();
    let mut md = format!(
        "# Scenarios: {} passed, {failed} failed\n\n",
        runs.len() - failed
    );
    if runs.iter().any(|r| r.insecure) {
        md.push_str(&format!(
            "> **Note:** {}\n\n",
            crate::client::INSECURE_NOTICE
        ));
    }
    md.push_str("| scenario | dialect | verdict | seconds | file |\n|---|---|---|---|---|\n");
    for r in runs {
        let verdict = if r.passed { "pass" } else { "**fail**" };
        md.push_str(&format!(
            "| {} | {} | {verdict} | {:.2} | `{}` |\n",
            r.name, r.dialect, r.seconds, r.file
        ));
    }
    for r in runs.iter().filter(|r| !r.passed) {
        md.push_str(&format!("\n## {} [{}]\n\n", r.name, r.dialect));
        for s in r.steps.iter().filter(|s| !s.ok) {
            md.push_str(&format!("- step {} ({}): {}\n", s.index, s.kind, s.detail));
        }
        for o in &r.scim {
            if o.capped {
                md.push_str(&format!(
                    "- {}: --max-requests reached after {} requests; later pushes never reached it\n",
                    o.target, o.requests
                ));
            }
            if !o.left.is_empty() && !o.kept {
                md.push_str(&format!(
                    "- {}: the clean-up left {}: {}\n",
                    o.target,
                    o.left.len(),
                    o.left.join(", ")
                ));
            }
        }
        let differences = r.steps.last().map_or(&[][..], |s| &s.differences[..]);
        if !differences.is_empty() {
            md.push_str("\n| endpoint | person or group | attribute | expected | actual | due since step |\n|---|---|---|---|---|---|\n");
            for d in differences {
                md.push_str(&format!(
                    "| {} | {} | `{}` | {} | {} | {} |\n",
                    d.target,
                    d.subject,
                    d.attribute,
                    d.expected,
                    d.actual,
                    d.since_step.map_or(String::new(), |s| s.to_string())
                ));
            }
        }
        let findings = r.steps.last().map_or(&[][..], |s| &s.findings[..]);
        if !findings.is_empty() {
            md.push_str("\n| target | user | difference | grant | route | step that should have changed it |\n|---|---|---|---|---|---|\n");
            for f in findings {
                md.push_str(&format!(
                    "| {} | {} | {} | `{}` | {} | {} |\n",
                    f.target,
                    f.user,
                    f.kind,
                    f.what,
                    f.route.as_deref().unwrap_or(""),
                    f.step
                        .map_or("none (never granted)".to_owned(), |s| s.to_string())
                ));
            }
        }
    }
    md
}

/// Writes report.json, junit.xml and summary.md into `dir`.
pub fn write(runs: &[ScenarioRun], dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(&to_json(runs)).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("report.json"), json)?;
    std::fs::write(
        dir.join("junit.xml"),
        to_junit(runs).map_err(std::io::Error::other)?,
    )?;
    std::fs::write(dir.join("summary.md"), to_markdown(runs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use run::StepResult;

    fn runs() -> Vec<ScenarioRun> {
        let step = |index, kind, ok, detail: &str| StepResult {
            index,
            kind,
            ok,
            detail: detail.into(),
            millis: 12.5,
            findings: Vec::new(),
            differences: Vec::new(),
        };
        vec![
            ScenarioRun {
                file: "scenarios/leaver.yaml".into(),
                name: "leaver".into(),
                dialect: "okta",
                passed: true,
                seconds: 0.25,
                steps: vec![step(1, "hire", true, ""), step(2, "expect", true, "2 expectations held")],
                insecure: false,
                scim: Vec::new(),
            },
            ScenarioRun {
                file: "scenarios/transfer.yaml".into(),
                name: "team transfer".into(),
                dialect: "entra",
                passed: false,
                seconds: 5.5,
                steps: vec![
                    step(1, "hire", true, ""),
                    step(2, "expect", false, "after 5s: space: bob: on WEB: missing [], excess [\"member (via team:t1)\"]"),
                    StepResult {
                        findings: vec![oracle::Finding {
                            target: "space",
                            user: "bob".into(),
                            kind: "excess",
                            what: "WEB/member".into(),
                            route: Some("team:t1".into()),
                            step: Some(2),
                        }],
                        ..step(3, "oracle", false, "after 20s: space: bob: excess WEB/member (via team:t1), should have gone at step 2")
                    },
                ],
                insecure: false,
                scim: Vec::new(),
            },
        ]
    }

    #[test]
    fn reports_keep_their_shape() {
        let runs = runs();
        insta::assert_snapshot!("terminal", to_terminal(&runs));
        insta::assert_snapshot!("markdown", to_markdown(&runs));
        insta::assert_snapshot!("junit", to_junit(&runs).expect("serialises"));
        insta::assert_json_snapshot!("json", to_json(&runs), {".version" => "[version]"});
    }
}
