//! Scenario files end to end: every shipped scenario holds in both dialects on fresh embedded
//! servers, and a wrong expectation fails with the access that contradicts it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::{Path, PathBuf};

use harness::scenario::{self, model::DialectName, Scenario};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test]
async fn every_shipped_scenario_holds_in_both_dialects() {
    let files = scenario::files_in(&root().join("scenarios")).unwrap();
    assert!(files.len() >= 7, "{files:?}");
    let loaded = scenario::load_all(&files).unwrap();
    let runs = scenario::run_all(&loaded, &root().join("scenarios/policies"), None)
        .await
        .unwrap();
    assert_eq!(runs.len(), 2 * files.len(), "every file in both dialects");
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| !r.passed)
        .map(|r| scenario::to_terminal(std::slice::from_ref(r)))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join(""));
}

/// Runs a scenario given as text in the Okta dialect.
async fn run_text(text: &str) -> Result<scenario::ScenarioRun, scenario::RunError> {
    let s = Scenario::parse(Path::new("inline.yaml"), text).unwrap();
    scenario::run::run(
        &s,
        Path::new("inline.yaml"),
        DialectName::Okta,
        &root().join("scenarios/policies"),
    )
    .await
}

#[tokio::test]
async fn stale_access_is_reported_with_the_route_that_grants_it() {
    let text = "name: wrong\ngroups: [Engineering]\nsteps:\n  - hire: {user: zed, groups: [Engineering]}\n  - expect:\n      within: 300ms\n      space: [{user: zed, access: none}]\n      teamcity: [{user: zed, project: Backend, may_not: [run_build]}]\n";
    let run = run_text(text).await.unwrap();
    assert!(!run.passed);
    let step = &run.steps[1];
    assert!(!step.ok);
    assert!(
        step.detail
            .contains("space: zed: excess access: BACKEND member (via team:"),
        "{}",
        step.detail
    );
    assert!(
        step.detail
            .contains("teamcity: zed: on Backend: missing [], excess [\"run_build\"]"),
        "{}",
        step.detail
    );
}

#[tokio::test]
async fn a_policy_that_does_not_exist_is_an_error_not_a_pass() {
    let text = "name: x\npolicies: {space: nope}\nsteps:\n  - hire: {user: a}\n";
    let err = run_text(text).await.unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

/// A target that keeps a leaver's tokens working (the mocks' named quirks) fails the leaver
/// guarantee, naming the token.
#[tokio::test]
async fn tokens_that_survive_a_leave_are_caught() {
    let text = "name: leaky\ngroups: [Engineering]\nsteps:\n  - quirks: {on: space, quirks: [deactivate-keeps-tokens]}\n  - quirks: {on: teamcity, quirks: [token-delete-ignored]}\n  - hire: {user: leo, groups: [Engineering]}\n  - token: {user: leo, on: space}\n  - token: {user: leo, on: teamcity}\n  - terminate: {user: leo}\n  - expect:\n      within: 500ms\n      space: [{user: leo, tokens: refused}]\n      teamcity: [{user: leo, tokens: refused}]\n";
    let run = run_text(text).await.unwrap();
    let step = run.steps.last().unwrap();
    assert!(!step.ok, "{step:?}");
    assert!(
        step.detail
            .contains("space: leo: tokens should be refused: token 1 answered 200"),
        "{}",
        step.detail
    );
    assert!(
        step.detail
            .contains("teamcity: leo: tokens should be refused: token 2 answered 200"),
        "{}",
        step.detail
    );
}
