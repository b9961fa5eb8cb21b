//! Runs a scenario against freshly started embedded servers: drives mock-idp's management API
//! step by step; at each `expect`, and once more at the end, polls the targets until the
//! scenario's own expectations and the permission oracle's full view hold, or a deadline passes.

use scim::tls::ClientTls;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::directory::Directory;
use super::model::{self, Dialect, Expect, Scenario, Server, Step, TargetName, Tokens};
use super::oracle::{self, Account, Oracle, Seen, View};
use super::play::{play, Runner, Verdict};
use crate::encode;
use crate::targets::{idp_call, PolicyTexts, Targets};

mod evidence;
mod servers;

pub use servers::{check_remote, Endpoint, FinalCheck, Remote};
pub(crate) use servers::{permission_view, put_control, Ends};

pub(crate) const TOKEN: &str = "scimlab-scenario";

/// Each target's permission view of each user; `None` where the user does not exist.
type Views = BTreeMap<(TargetName, String), Option<Value>>;
/// How often an expectation is read again while it does not hold.
const POLL: Duration = Duration::from_millis(25);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot load policy {0}: {1}")]
    Policy(String, String),
    #[error("cannot start the servers: {0}")]
    Start(#[from] crate::targets::TargetsError),
    #[error("cannot create a data folder: {0}")]
    Io(#[from] std::io::Error),
    #[error("the oracle cannot run: {0}")]
    Oracle(String),
    #[error("remote targets: {0}")]
    Remote(String),
}

/// The result of one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub index: usize,
    pub kind: &'static str,
    pub ok: bool,
    /// What went wrong, or for an `expect` what was checked.
    pub detail: String,
    /// For an `expect`: the time until everything held (or the deadline).
    pub millis: f64,
    /// Differences from the permission oracle at the deadline.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<oracle::Finding>,
    /// On a SCIM endpoint: differences from the SCIM-level oracle at the deadline.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<crate::scim_target::Difference>,
}

impl StepResult {
    /// A step's result from its outcome (`Err`: what went wrong) and its time.
    pub(crate) fn new(
        index: usize,
        kind: &'static str,
        outcome: Result<String, String>,
        millis: f64,
    ) -> StepResult {
        StepResult {
            index,
            kind,
            ok: outcome.is_ok(),
            detail: outcome.unwrap_or_else(|e| e),
            millis,
            findings: Vec::new(),
            differences: Vec::new(),
        }
    }
}

/// One scenario file in one dialect.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioRun {
    pub file: String,
    pub name: String,
    pub dialect: &'static str,
    pub passed: bool,
    pub seconds: f64,
    pub steps: Vec<StepResult>,
    /// Server certificates were not checked (`--insecure`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// A scenario `for: scim`: each endpoint it ran against, and what its clean-up did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scim: Vec<ScimOutcome>,
}

impl ScenarioRun {
    /// The run of `scenario` from `file` that took `steps` (and, on SCIM endpoints, left
    /// `scim`): it passed when every step did, none was skipped, and nothing was left behind.
    pub(crate) fn finished(
        scenario: &Scenario,
        file: &Path,
        dialect: Dialect,
        started: Instant,
        steps: Vec<StepResult>,
        insecure: bool,
        scim: Vec<ScimOutcome>,
    ) -> ScenarioRun {
        let passed = steps.iter().all(|s| s.ok)
            && steps.len() == scenario.steps.len() + 1
            && scim
                .iter()
                .all(|o| (o.left.is_empty() || o.kept) && !o.capped);
        ScenarioRun {
            file: file.display().to_string(),
            name: scenario.name.clone(),
            dialect: dialect.as_str(),
            passed,
            seconds: started.elapsed().as_secs_f64(),
            steps,
            insecure,
            scim,
        }
    }
}

/// Where a `for: scim` scenario ran, and what it left behind.
#[derive(Debug, Clone, Serialize)]
pub struct ScimOutcome {
    pub target: String,
    pub url: String,
    /// The tag every login and group name of the run carries.
    pub tag: String,
    pub deleted: usize,
    /// Resources the clean-up could not delete (or `--keep` kept): a failure.
    pub left: Vec<String>,
    pub kept: bool,
    /// Requests the IdP's pushes made to the endpoint (through the metering proxy).
    pub requests: u64,
    /// `--max-requests` was reached: later pushes were refused before the endpoint, and the
    /// run fails.
    pub capped: bool,
}

impl ScimOutcome {
    /// `target` tagged `tag`, before anything was sent or cleaned up.
    pub(crate) fn new(target: &crate::scim_target::ScimTarget, tag: &str, kept: bool) -> Self {
        ScimOutcome {
            target: target.name.clone(),
            url: target.url.clone(),
            tag: tag.to_owned(),
            deleted: 0,
            left: Vec::new(),
            kept,
            requests: 0,
            capped: false,
        }
    }
}

/// A personal token a user made on a target, and the oracle's view it was made in.
struct MadeToken {
    user: String,
    on: TargetName,
    secret: String,
    made: usize,
}

/// The runner's state: the IdP's ids of what the scenario named, the oracle and its history,
/// and a copy of each target's audit log.
struct World {
    client: reqwest::Client,
    ends: Ends,
    /// The embedded servers; `None` against remote ones.
    targets: Option<Targets>,
    /// The IdP's side: who was hired, the groups, delivery.
    dir: Directory,
    tokens: Vec<MadeToken>,
    down: Vec<Server>,
    oracle: Oracle,
    /// The oracle's view after set-up (0) and after each step.
    history: Vec<View>,
    /// Each target's last audit event seq before each step (aligned with `history`).
    heads: Vec<BTreeMap<TargetName, u64>>,
    audit: BTreeMap<TargetName, Vec<Value>>,
}

impl World {
    fn login(&self, name: &str) -> String {
        self.dir.login(name)
    }

    fn end(&self, on: TargetName) -> &Endpoint {
        self.ends.target(on)
    }

    fn base(&self, on: TargetName) -> &str {
        &self.end(on).url
    }

    fn token(&self, on: TargetName) -> &str {
        &self.end(on).token
    }

    fn app(&self, on: TargetName) -> &str {
        self.ends.apps.get(&on).map_or("", String::as_str)
    }

    fn embedded(&mut self) -> Result<&mut Targets, String> {
        self.targets
            .as_mut()
            .ok_or_else(|| "remote servers cannot be stopped or started from here".to_owned())
    }

    /// Ends the contracts that are due, and has the oracle follow. Waits while the IdP is
    /// down.
    async fn expire_contracts(&mut self) -> Result<(), String> {
        if self.down.contains(&Server::Idp) {
            return Ok(());
        }
        if self.dir.expire_contracts().await? {
            // Outside any step: what is due changed now.
            self.refresh_oracle().await?;
        }
        Ok(())
    }

    async fn step(&mut self, step: &Step) -> Result<String, String> {
        match step {
            Step::Token(t) => {
                // A user makes a token once the account exists: after the IdP has delivered.
                self.dir.delivered(Duration::from_secs(5)).await?;
                let login = encode(&format!("username:{}", self.login(&t.user)));
                let (url, field) = t.on.mock().token_maker(self.base(t.on), &login);
                let body = json!({"name": format!("scenario-{}", self.tokens.len())});
                let (status, answer) = self
                    .native(Method::POST, &url, Some(body), self.token(t.on))
                    .await?;
                let secret = answer[field]
                    .as_str()
                    .filter(|_| status == 200)
                    .ok_or_else(|| format!("POST {url}: {status} {answer}"))?;
                self.tokens.push(MadeToken {
                    user: t.user.clone(),
                    on: t.on,
                    secret: secret.to_owned(),
                    made: self.history.len(),
                });
                Ok(String::new())
            }
            Step::Quirks(q) => put_control(
                &self.client,
                self.end(q.on),
                "/_sim/quirks",
                &json!(q.quirks),
            )
            .await
            .map(|()| String::new()),
            Step::Down(server) => {
                self.embedded()?
                    .down(*server)
                    .await
                    .map_err(|e| e.to_string())?;
                self.down.push(*server);
                Ok(String::new())
            }
            Step::Up(server) => {
                self.embedded()?
                    .up(*server)
                    .await
                    .map_err(|e| e.to_string())?;
                self.down.retain(|s| s != server);
                Ok(String::new())
            }
            Step::Restart(server) => {
                self.embedded()?
                    .down(*server)
                    .await
                    .map_err(|e| e.to_string())?;
                self.embedded()?
                    .up(*server)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(String::new())
            }
            Step::Expect(e) => {
                let within = model::duration(&e.within).unwrap_or(Duration::from_secs(5));
                let verdict = self.converge(within, Some(e)).await?;
                if verdict.holds() {
                    Ok(format!(
                        "{} expectations and the oracle held",
                        e.on.values().map(Vec::len).sum::<usize>()
                    ))
                } else {
                    Err(format!("after {}: {}", e.within, verdict.text()))
                }
            }
            // The directory ran every step of the IdP's vocabulary above.
            other => Err(format!("{} is not a step about the targets", other.kind())),
        }
    }

    /// Polls until the IdP has delivered everything and both the expectations (if any) and
    /// the oracle hold, or `within` passes; the last verdict.
    async fn converge(&mut self, within: Duration, e: Option<&Expect>) -> Result<Verdict, String> {
        let deadline = Instant::now() + within;
        loop {
            self.expire_contracts().await?;
            // Until the IdP has delivered every change, "no access" would hold only because
            // the change has not arrived yet.
            let undelivered = self.dir.undelivered().await?;
            let verdict = if !undelivered.is_empty() {
                Verdict {
                    misses: vec![Directory::waiting(&undelivered)],
                    ..Verdict::default()
                }
            } else {
                // One read of every user and token serves the expectations and the oracle.
                let views = self.views().await?;
                let tokens = self.token_answers().await;
                let mut misses = match e {
                    Some(e) => self.misses(&e.on, &views, &tokens),
                    None => Vec::new(),
                };
                let findings = self.findings(&views).await;
                misses.extend(self.token_findings(&tokens));
                Verdict {
                    misses,
                    findings,
                    differences: Vec::new(),
                }
            };
            if verdict.holds() || Instant::now() >= deadline {
                return Ok(verdict);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The oracle's view of the IdP now (the last one while the IdP is down).
    async fn expected_now(&mut self) -> Result<View, String> {
        if self.down.contains(&Server::Idp) {
            return Ok(self.history.last().cloned().unwrap_or_default());
        }
        let apps: Vec<(TargetName, String)> = TargetName::all()
            .map(|t| (t, self.app(t).to_owned()))
            .collect();
        let state = oracle::read_idp(
            &self.client,
            &self.ends.idp.url,
            &self.ends.idp.token,
            &self.dir.users,
            &apps,
        )
        .await?;
        let names: Vec<String> = self.dir.users.iter().map(|(n, _)| n.clone()).collect();
        Ok(self.oracle.expected(&state, &names))
    }

    /// Records the oracle's view after a step.
    async fn snapshot(&mut self) -> Result<(), String> {
        let view = self.expected_now().await?;
        self.history.push(view);
        Ok(())
    }

    /// Replaces the latest view when something outside the steps (a contract ending) changed
    /// what is due: the change counts as the latest step's, so views stay one per step.
    async fn refresh_oracle(&mut self) -> Result<(), String> {
        let view = self.expected_now().await?;
        match self.history.last_mut() {
            Some(last) => *last = view,
            None => self.history.push(view),
        }
        Ok(())
    }
}

/// Runs `scenario` (read from `file`) in `dialect` with policies from `policies_dir`, on fresh
/// embedded servers.
pub async fn run(
    scenario: &Scenario,
    file: &Path,
    dialect: Dialect,
    policies_dir: &Path,
) -> Result<ScenarioRun, RunError> {
    run_on(scenario, file, dialect, policies_dir, None).await
}

/// As `run`, or against `remote` servers (in their dialect) when given.
pub async fn run_on(
    scenario: &Scenario,
    file: &Path,
    dialect: Dialect,
    policies_dir: &Path,
    remote: Option<&Remote>,
) -> Result<ScenarioRun, RunError> {
    let started = Instant::now();
    let mut policies = PolicyTexts::new();
    for t in TargetName::all() {
        let name = scenario.policies.file(t);
        let path = policies_dir.join(format!("{name}.toml"));
        let text = crate::targets::read_policy(t, &path)
            .map_err(|(_, why)| RunError::Policy(name, why))?;
        policies.insert(t, text);
    }
    let client = match remote {
        Some(r) => r.http().map_err(RunError::Remote)?,
        None => ClientTls::default()
            .client()
            .map_err(|e| RunError::Remote(e.to_string()))?,
    };
    let data = tempfile::tempdir()?;
    let (targets, ends, run_tag) = match remote {
        Some(r) => {
            if let Some((i, step)) = scenario.steps.iter().enumerate().find(|(_, s)| {
                matches!(
                    s,
                    Step::Down(_) | Step::Up(_) | Step::Restart(_) | Step::Quirks(_)
                )
            }) {
                return Err(RunError::Remote(format!(
                    "{}: step {} ({}) needs the embedded servers",
                    file.display(),
                    i + 1,
                    step.kind()
                )));
            }
            let ends = Ends::remote(&client, r).await.map_err(RunError::Remote)?;
            let tag = format!("{:08x}", rand::random::<u32>());
            (None, ends, Some(tag))
        }
        None => {
            let targets = Targets::start_with_policies(
                Some(data.path().to_owned()),
                TOKEN,
                false,
                dialect,
                policies.clone(),
                Default::default(),
            )
            .await?;
            let ends = Ends::embedded(&targets);
            (Some(targets), ends, None)
        }
    };
    let oracle = match ends.oracle(&client, &policies, dialect).await {
        Ok(o) => o,
        Err(why) => {
            if let Some(t) = targets {
                t.stop().await;
            }
            return Err(RunError::Oracle(why));
        }
    };
    let mut dir = Directory::new(client.clone(), ends.idp.clone(), ends.app_ids());
    dir.tag = run_tag;
    let mut world = World {
        client,
        ends,
        targets,
        dir,
        tokens: Vec::new(),
        down: Vec::new(),
        oracle,
        history: Vec::new(),
        heads: Vec::new(),
        audit: BTreeMap::new(),
    };
    let steps = play(&mut world, scenario).await;
    if let Some(t) = world.targets.take() {
        t.stop().await;
    }
    let insecure = remote.is_some_and(|r| r.tls.insecure);
    Ok(ScenarioRun::finished(
        scenario,
        file,
        dialect,
        started,
        steps,
        insecure,
        Vec::new(),
    ))
}

impl Runner for World {
    fn directory(&mut self) -> &mut Directory {
        &mut self.dir
    }

    async fn target_step(&mut self, step: &Step) -> Result<String, String> {
        self.step(step).await
    }

    async fn expire_contracts(&mut self) -> Result<(), String> {
        World::expire_contracts(self).await
    }

    /// After set-up and after each step: the oracle's view and the audit heads it follows.
    async fn begin_step(&mut self) -> Result<(), String> {
        let heads = self.sync_audit().await?;
        self.heads.push(heads);
        self.snapshot().await
    }

    /// The final check: everything delivered, every target equal to the oracle, every token
    /// in the state due, and the audit guarantees.
    async fn settle(&mut self, within: Duration) -> Result<(Verdict, String), String> {
        let mut verdict = self.converge(within, None).await?;
        let (audit, leavers) = self.audit_misses().await?;
        verdict.misses.extend(audit);
        let accounts = self.history.last().map_or(0, BTreeMap::len);
        Ok((
            verdict,
            format!(
                "{accounts} accounts equal to the oracle, {} tokens as due, audit chains intact, {leavers} leavers recorded",
                self.tokens.len()
            ),
        ))
    }
}
