//! Scenario files end to end: every shipped scenario holds in both dialects on fresh embedded
//! servers, and a wrong expectation fails with the access that contradicts it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::{Path, PathBuf};

use harness::scenario::{self, model::Dialect, Scenario};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test]
async fn every_shipped_scenario_holds_in_both_dialects() {
    let files = scenario::files_in(&root().join("scenarios")).unwrap();
    assert!(files.len() >= 7, "{files:?}");
    let loaded = scenario::load_all(&files).unwrap();
    let runs = scenario::run_all(
        &loaded,
        &root().join("scenarios/policies"),
        None,
        None,
        &Default::default(),
    )
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
        Dialect::Okta,
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
    let step = &run.steps[6];
    assert!(!step.ok, "{step:?}");
    for token in [
        "space: leo: token 1 answered 200, due refused",
        "teamcity: leo: token 2 answered 200, due refused",
    ] {
        assert!(step.detail.contains(token), "{}", step.detail);
    }
    let oracle = run.steps.last().unwrap();
    assert_eq!(oracle.kind, "oracle");
    assert!(
        oracle
            .detail
            .contains("space: leo: token 1 answered 200, due refused"),
        "the oracle judges tokens without being asked: {}",
        oracle.detail
    );
}

/// With no expectation written, the oracle alone catches a target that keeps a mover's old
/// access, naming the route and the step that should have removed it; its leaver check
/// catches a deactivation the audit log does not record.
#[tokio::test]
async fn the_oracle_finds_stale_access_nobody_asked_about() {
    let text = "name: sticky\ngroups: [Engineering, Platform]\nsteps:\n  - hire: {user: max, groups: [Engineering]}\n  - quirks: {on: space, quirks: [membership-delete-ignored, deactivate-unaudited]}\n  - move: {user: max, from: Engineering, to: Platform}\n  - hire: {user: ann}\n  - join: {user: ann, group: Platform}\n  - terminate: {user: ann}\n";
    let run = run_text(text).await.unwrap();
    assert!(!run.passed);
    let oracle = run.steps.last().unwrap();
    assert_eq!((oracle.index, oracle.kind, oracle.ok), (7, "oracle", false));
    assert!(
        oracle
            .detail
            .contains("space: ann: left at step 6, but no audit event"),
        "{}",
        oracle.detail
    );
    let stale = oracle
        .findings
        .iter()
        .find(|f| f.what == "BACKEND/member")
        .unwrap_or_else(|| panic!("{:#?}", oracle.findings));
    assert_eq!(
        (stale.target, stale.kind, stale.step),
        ("space", "excess", Some(3))
    );
    assert!(
        stale
            .route
            .as_deref()
            .is_some_and(|r| r.starts_with("team:")),
        "{stale:?}"
    );
    assert!(
        oracle
            .findings
            .iter()
            .all(|f| f.target == "space" && f.user == "max"),
        "TeamCity applied the move: {:#?}",
        oracle.findings
    );
    assert!(
        oracle
            .detail
            .contains("space: max: excess BACKEND/member (via team:")
            && oracle.detail.contains("should have gone at step 3"),
        "{}",
        oracle.detail
    );
}

/// `--targets`: scenarios run on servers that were already running, twice in a row (each run's
/// people are its own; groups are reused by name), and steps that need the embedded servers
/// are refused up front.
#[tokio::test]
async fn scenarios_run_against_servers_already_running_and_again() {
    let data = tempfile::tempdir().unwrap();
    let policies = root().join("scenarios/policies");
    let token = "remote-token";
    let targets = harness::targets::Targets::start_with_policies(
        Some(data.path().to_owned()),
        token,
        false,
        harness::targets::Dialect::Okta,
        harness::targets::idp_policies(&policies).unwrap(),
        Default::default(),
    )
    .await
    .unwrap();
    let file = data.path().join("remote.toml");
    let mut remote = format!(
        "dialect = \"okta\"\n[idp]\nurl = \"{}\"\ntoken = \"{token}\"\n",
        targets.idp.url
    );
    for (target, urls) in &targets.mocks {
        remote.push_str(&format!(
            "[{target}]\nurl = \"{}\"\ntoken = \"{token}\"\n",
            urls.native_url
        ));
    }
    std::fs::write(&file, remote).unwrap();
    let remote = scenario::run::Remote::load(&file).unwrap();
    let loaded = scenario::load_all(&[
        root().join("scenarios/team-transfer.yaml"),
        root().join("scenarios/leaver.yaml"),
    ])
    .unwrap();
    for round in 0..2 {
        let runs = scenario::run_all(&loaded, &policies, None, Some(&remote), &Default::default())
            .await
            .unwrap();
        assert_eq!(runs.len(), 2, "the remote IdP speaks Okta only");
        assert!(
            runs.iter().all(|r| r.passed),
            "round {round}: {}",
            scenario::to_terminal(&runs)
        );
    }
    let restart =
        Scenario::parse(Path::new("r.yaml"), "name: r\nsteps:\n  - restart: space\n").unwrap();
    let err = scenario::run::run_on(
        &restart,
        Path::new("r.yaml"),
        Dialect::Okta,
        &policies,
        Some(&remote),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("step 1 (restart) needs the embedded servers"),
        "{err}"
    );
    let bad = data.path().join("bad.toml");
    std::fs::write(&bad, "dialect = \"okta\"\n[idp]\nurl = \"x\"\n").unwrap();
    let err = scenario::run::Remote::load(&bad).unwrap_err().to_string();
    assert!(err.contains("bad.toml") && err.contains("token"), "{err}");
    targets.stop().await;
}
