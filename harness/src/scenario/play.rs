//! How a scenario is played, whatever its targets: set-up, each step (the IdP's through the
//! directory, the targets' through the runner), a view of what is due after each, and a
//! final check; a failed step stops the run, a failed `expect` does not.

use std::time::{Duration, Instant};

use super::directory::Directory;
use super::model::{self, Scenario, Step};
use super::oracle;
use super::run::StepResult;
use crate::scim_target::Difference;

/// How long the final check waits for the targets to converge unless the scenario says:
/// long enough for the IdP's retry backoff after an outage.
pub(crate) const SETTLE: Duration = Duration::from_secs(20);

/// What an `expect` or the final check found wrong: the scenario's own misses and the
/// oracles' differences.
#[derive(Default)]
pub(crate) struct Verdict {
    pub(crate) misses: Vec<String>,
    /// The permission oracle's (the mocks).
    pub(crate) findings: Vec<oracle::Finding>,
    /// The SCIM-level oracle's (a SCIM endpoint).
    pub(crate) differences: Vec<Difference>,
}

impl Verdict {
    pub(crate) fn holds(&self) -> bool {
        self.misses.is_empty() && self.findings.is_empty() && self.differences.is_empty()
    }

    pub(crate) fn text(&self) -> String {
        let mut all = self.misses.clone();
        all.extend(self.findings.iter().map(ToString::to_string));
        all.extend(self.differences.iter().map(ToString::to_string));
        all.join("; ")
    }
}

/// What differs between targets.
pub(crate) trait Runner {
    fn directory(&mut self) -> &mut Directory;
    /// A step about the targets (the directory runs the IdP's).
    async fn target_step(&mut self, step: &Step) -> Result<String, String>;
    /// After set-up and after each step: records what is due now.
    async fn begin_step(&mut self) -> Result<(), String>;
    /// Ends the contracts that are due, and has the oracle follow.
    async fn expire_contracts(&mut self) -> Result<(), String>;
    /// The final check, within `within`: the verdict, and what was checked when it holds.
    async fn settle(&mut self, within: Duration) -> Result<(Verdict, String), String>;
}

/// Set-up, every step, then the final check; stops at the first step that fails (an
/// `expect` apart), since the rest would be meaningless.
pub(crate) async fn play<R: Runner>(r: &mut R, scenario: &Scenario) -> Vec<StepResult> {
    let mut steps = Vec::new();
    let result = |index, kind, outcome, at: Instant| {
        StepResult::new(index, kind, outcome, at.elapsed().as_secs_f64() * 1000.0)
    };
    let at = Instant::now();
    let mut setup = Ok(String::new());
    for g in &scenario.groups {
        if let Err(why) = r.directory().create_group(g).await {
            setup = Err(why);
            break;
        }
    }
    if let Err(why) = r.begin_step().await {
        setup = setup.and(Err(why));
    }
    if setup.is_err() {
        steps.push(result(0, "groups", setup, at));
        return steps;
    }
    for (i, step) in scenario.steps.iter().enumerate() {
        let at = Instant::now();
        let mut outcome = match r.expire_contracts().await {
            Ok(()) => match r.directory().step(step).await {
                Some(outcome) => outcome,
                None => r.target_step(step).await,
            },
            Err(why) => Err(why),
        };
        if let Err(why) = r.begin_step().await {
            outcome = outcome.and(Err(why));
        }
        let ok = outcome.is_ok();
        steps.push(result(i + 1, step.kind(), outcome, at));
        if !ok && !matches!(step, Step::Expect(_)) {
            return steps;
        }
    }
    let at = Instant::now();
    let settle = scenario
        .settle
        .as_deref()
        .and_then(model::duration)
        .unwrap_or(SETTLE);
    let index = scenario.steps.len() + 1;
    let mut last = match r.settle(settle).await {
        Ok((verdict, detail)) => {
            let outcome = if verdict.holds() {
                Ok(detail)
            } else {
                Err(format!("after {settle:?}: {}", verdict.text()))
            };
            let mut last = result(index, "oracle", outcome, at);
            last.findings = verdict.findings;
            last.differences = verdict.differences;
            last
        }
        Err(why) => result(index, "oracle", Err(why), at),
    };
    if let Some(failed) = steps.iter_mut().rev().find(|s| !s.ok && s.kind == "expect") {
        // The report keeps the oracle's differences with the check that saw them last.
        failed.findings.clone_from(&last.findings);
        failed.differences.clone_from(&last.differences);
    }
    last.millis = at.elapsed().as_secs_f64() * 1000.0;
    steps.push(last);
    steps
}
