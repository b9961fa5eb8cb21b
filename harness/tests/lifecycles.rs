//! Random lifecycles through the real servers, as a proptest state machine: hires, joins,
//! leaves, moves, renames, suspensions, terminations, rehires, deletes and server restarts in
//! random order and dialect. After every restart and at the end, both targets must equal the
//! permission oracle. A failing sequence is shrunk and saved as a scenario file that replays
//! (`cargo run -- scenario target/counterexamples/<file>.yaml`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::{Path, PathBuf};

use harness::mock_target::space::SPACE;
use harness::scenario::model::{Dialect, QuirkStep, Step};
use harness::scenario::random::{self, Op, GROUPS, PEOPLE};
use harness::scenario::{self, Scenario};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..PEOPLE.len();
    let group = 0..GROUPS.len();
    prop_oneof![
        3 => (who.clone(), proptest::option::of(group.clone()))
            .prop_map(|(who, group)| Op::Hire { who, group }),
        2 => (who.clone(), group.clone()).prop_map(|(who, group)| Op::Join { who, group }),
        2 => (who.clone(), group.clone()).prop_map(|(who, group)| Op::Leave { who, group }),
        2 => (who.clone(), group.clone()).prop_map(|(who, to)| Op::Move { who, to }),
        1 => group.prop_map(|group| Op::Rename { group }),
        1 => who.clone().prop_map(Op::Suspend),
        1 => who.clone().prop_map(Op::Unsuspend),
        1 => who.clone().prop_map(Op::Terminate),
        1 => who.clone().prop_map(Op::Rehire),
        1 => who.prop_map(Op::Delete),
        1 => (0..3usize).prop_map(Op::Restart),
    ]
}

/// A sequence of operations, opened by a few hires so that most operations apply, and whether
/// the IdP speaks Entra (else Okta).
fn lifecycle() -> impl Strategy<Value = (Vec<Op>, bool)> {
    let hire = (0..PEOPLE.len(), proptest::option::of(0..GROUPS.len()))
        .prop_map(|(who, group)| Op::Hire { who, group });
    (
        proptest::collection::vec(hire, 1..=PEOPLE.len()),
        proptest::collection::vec(op(), 1..16),
        any::<bool>(),
    )
        .prop_map(|(mut hires, ops, entra)| {
            hires.extend(ops);
            (hires, entra)
        })
}

fn build(ops: &[Op], entra: bool, quirk: Option<&str>, settle: &str) -> Scenario {
    let dialect = if entra { Dialect::Entra } else { Dialect::Okta };
    let mut s = random::scenario(ops, dialect, settle);
    if let Some(q) = quirk {
        s.steps.insert(
            0,
            Step::Quirks(QuirkStep {
                on: SPACE,
                quirks: vec![q.to_owned()],
            }),
        );
    }
    s
}

async fn play(s: &Scenario) -> Result<scenario::ScenarioRun, String> {
    scenario::run::run(
        s,
        Path::new("random.yaml"),
        s.dialects[0],
        &root().join("scenarios/policies"),
    )
    .await
    .map_err(|e| e.to_string())
}

/// Plays `cases` random lifecycles; the first failure is shrunk, saved, and returned as
/// (file, why).
fn explore(cases: u32, quirk: Option<&str>, settle: &str) -> Result<(), (PathBuf, String)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&lifecycle(), |(ops, entra)| {
        let run = rt
            .block_on(play(&build(&ops, entra, quirk, settle)))
            .map_err(TestCaseError::fail)?;
        if run.passed {
            Ok(())
        } else {
            Err(TestCaseError::fail(scenario::to_terminal(&[run])))
        }
    });
    match outcome {
        Ok(()) => Ok(()),
        Err(TestError::Fail(why, (ops, entra))) => {
            let s = build(&ops, entra, quirk, settle);
            let dir = root().join("target/counterexamples");
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!(
                "lifecycle-{}-{}.yaml",
                quirk.unwrap_or("clean"),
                std::process::id()
            ));
            std::fs::write(&file, s.to_yaml().unwrap()).unwrap();
            Err((file, why.to_string()))
        }
        Err(TestError::Abort(why)) => panic!("proptest gave up: {why}"),
    }
}

#[test]
fn random_lifecycles_keep_every_target_equal_to_the_oracle() {
    if let Err((file, why)) = explore(12, None, "10s") {
        panic!(
            "a lifecycle breaks the oracle; replay it with `cargo run -- scenario {}`:\n{why}",
            file.display()
        );
    }
}

/// The search can fail: with Space ignoring membership deletions, it finds a lifecycle that
/// leaves stale access, shrinks it, and the saved file replays to the same failure.
#[test]
fn a_target_that_keeps_old_memberships_is_caught_shrunk_and_replayable() {
    let (file, why) = explore(64, Some("membership-delete-ignored"), "500ms")
        .expect_err("some lifecycle must move or remove an active member");
    assert!(why.contains("excess"), "{why}");
    let saved = Scenario::load(&file).unwrap();
    assert!(
        saved.steps.len() <= 8,
        "shrunk to a few steps: {}",
        saved.to_yaml().unwrap()
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let replay = rt.block_on(play(&saved)).unwrap();
    assert!(!replay.passed, "{}", saved.to_yaml().unwrap());
    let last = replay.steps.last().unwrap();
    assert!(
        last.findings
            .iter()
            .any(|f| f.target == "space" && f.kind == "excess" && f.step.is_some()),
        "{:#?}",
        last.findings
    );
    std::fs::remove_file(&file).unwrap();
}
