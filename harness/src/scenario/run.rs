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

    /// Copies new audit events of every running target.
    async fn sync_audit(&mut self) -> Result<BTreeMap<TargetName, u64>, String> {
        let mut heads = BTreeMap::new();
        for t in TargetName::all() {
            let known = self.audit.entry(t).or_default();
            let mut after = known.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
            if !self.down.contains(&t.server()) {
                loop {
                    let url = format!("{}/_sim/events?after={after}&limit=10000", self.base(t));
                    let (status, page) =
                        self.native(Method::GET, &url, None, self.token(t)).await?;
                    if status != 200 {
                        return Err(format!("GET {url}: {status}"));
                    }
                    let events = page["events"].as_array().cloned().unwrap_or_default();
                    let n = events.len();
                    after = events
                        .last()
                        .and_then(|e| e["seq"].as_u64())
                        .unwrap_or(after);
                    self.audit.entry(t).or_default().extend(events);
                    if n < 10000 {
                        break;
                    }
                }
            }
            heads.insert(t, after);
        }
        Ok(heads)
    }

    /// Reads a mock's permission view of a user; `None` when the user does not exist there.
    async fn permissions(&self, on: TargetName, user: &str) -> Result<Option<Value>, String> {
        permission_view(&self.client, self.end(on), &self.login(user)).await
    }

    /// Each target's permission view of every user the oracle knows (every one hired).
    async fn views(&self) -> Result<Views, String> {
        let mut out = Views::new();
        for (target, user) in self.history.last().into_iter().flat_map(BTreeMap::keys) {
            let seen = self.permissions(*target, user).await?;
            out.insert((*target, user.clone()), seen);
        }
        Ok(out)
    }

    /// The oracle's findings on what the targets show, each excess item with the route that
    /// granted it where the target can say.
    async fn findings(&self, views: &Views) -> Vec<oracle::Finding> {
        let mut seen = Seen::default();
        for ((target, user), view) in views {
            if let Some(judge) = self.oracle.judge(*target) {
                seen.add(*target, judge, user, view.as_ref());
            }
        }
        let mut findings = oracle::compare(&self.history, &seen);
        for f in findings
            .iter_mut()
            .filter(|f| f.kind == "excess" && f.route.is_none())
        {
            let Some((target, judge)) =
                TargetName::named(f.target).and_then(|t| Some((t, self.oracle.judge(t)?)))
            else {
                continue;
            };
            let locator = encode(&format!("username:{}", self.login(&f.user)));
            f.route = judge
                .excess_route(&self.client, self.end(target), &locator, &f.what)
                .await;
        }
        findings
    }

    /// Tokens whose state is not the one due: accepted while the user has been active on the
    /// target ever since the token was made, refused once the account left.
    fn token_findings(&self, answers: &[Result<u16, String>]) -> Vec<String> {
        let mut out = Vec::new();
        for ((i, t), answer) in self.tokens.iter().enumerate().zip(answers) {
            let key = (t.on, t.user.clone());
            let due_accepted = self.history[t.made.saturating_sub(1)..]
                .iter()
                .all(|v| v.get(&key).is_some_and(|h| h.account == Account::Active));
            let want = if due_accepted {
                Tokens::Accepted
            } else {
                Tokens::Refused
            };
            if let Some(why) = token_miss(i, answer, want) {
                out.push(format!("{}: {}: {why}", t.on, t.user));
            }
        }
        out
    }

    /// What each token (in `tokens` order) gets when it reads its own user: a status.
    async fn token_answers(&self) -> Vec<Result<u16, String>> {
        let mut out = Vec::new();
        for t in &self.tokens {
            let login = encode(&format!("username:{}", self.login(&t.user)));
            let url = t.on.mock().own_user(self.base(t.on), &login);
            let answer = self.native(Method::GET, &url, None, &t.secret).await;
            out.push(answer.map(|(code, _)| code));
        }
        out
    }

    /// The leaver guarantees the audit logs must show: every hash chain intact (IdP and
    /// targets), and for each account that left, an event on its target recording it.
    async fn audit_misses(&mut self) -> Result<(Vec<String>, usize), String> {
        let mut out = self.ends.broken_chains(&self.client).await;
        self.sync_audit().await?;
        let mut leavers = 0;
        for i in 1..self.history.len() {
            for ((target, user), now) in &self.history[i] {
                let was = self.history[i - 1].get(&(*target, user.clone()));
                let Some(was) = was.filter(|w| w.account == Account::Active) else {
                    continue;
                };
                if now.account == Account::Active {
                    continue;
                }
                let had_tokens = self
                    .tokens
                    .iter()
                    .any(|t| t.on == *target && t.user == *user && t.made <= i);
                let Some(kinds) = target
                    .mock()
                    .leaver_kinds(!was.items.is_empty() || had_tokens)
                else {
                    continue;
                };
                leavers += 1;
                // Read before step i ran: whatever step i caused comes after it.
                let head = self
                    .heads
                    .get(i - 1)
                    .and_then(|h| h.get(target))
                    .copied()
                    .unwrap_or(0);
                let events = self.audit.get(target).map(Vec::as_slice).unwrap_or(&[]);
                let login = self.login(user);
                let subject = events
                    .iter()
                    .find(|e| e["data"]["username"] == json!(login))
                    .and_then(|e| e["subject"].as_str());
                let recorded = subject.is_some_and(|id| {
                    events.iter().any(|e| {
                        e["seq"].as_u64().is_some_and(|s| s > head)
                            && e["subject"] == json!(id)
                            && e["kind"].as_str().is_some_and(|k| kinds.contains(&k))
                    })
                });
                if !recorded {
                    out.push(format!(
                        "{target}: {user}: left at step {i}, but no audit event ({}) records it",
                        kinds.join(" | ")
                    ));
                }
            }
        }
        Ok((out, leavers))
    }

    /// A call to a target's own API with a bearer token: (status, JSON body or null).
    async fn native(
        &self,
        method: Method,
        url: &str,
        body: Option<Value>,
        bearer: &str,
    ) -> Result<(u16, Value), String> {
        let mut req = self
            .client
            .request(method.clone(), url)
            .bearer_auth(bearer)
            .header("accept", "application/json");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Every expectation that does not hold now, with what was seen instead.
    fn misses(
        &self,
        on: &BTreeMap<TargetName, Vec<Value>>,
        views: &Views,
        tokens: &[Result<u16, String>],
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (&target, list) in on {
            for e in list {
                let said = match target.mock().expectation(e) {
                    Ok(said) => said,
                    Err(why) => {
                        out.push(format!("{target}: {why}"));
                        continue;
                    }
                };
                let user = &said.user;
                let seen = views.get(&(target, user.clone())).and_then(Option::as_ref);
                if let Some(why) = (said.miss)(seen) {
                    out.push(format!("{target}: {user}: {why}"));
                }
                let Some(want) = said.tokens else {
                    continue;
                };
                for ((i, _), answer) in self
                    .tokens
                    .iter()
                    .enumerate()
                    .zip(tokens)
                    .filter(|((_, t), _)| t.user == *user && t.on == target)
                {
                    if let Some(why) = token_miss(i, answer, want) {
                        out.push(format!("{target}: {user}: {why}"));
                    }
                }
            }
        }
        out
    }
}

/// Why token `i` (0-based), which got `answer`, is not in the wanted state (`None` when it is).
fn token_miss(i: usize, answer: &Result<u16, String>, want: Tokens) -> Option<String> {
    match answer {
        Ok(code) => {
            let accepted = (200..300).contains(code);
            (accepted != (want == Tokens::Accepted)).then(|| {
                let due = if want == Tokens::Accepted {
                    "accepted"
                } else {
                    "refused"
                };
                format!("token {} answered {code}, due {due}", i + 1)
            })
        }
        Err(why) => Some(why.clone()),
    }
}

/// PUTs a JSON body to a mock's control plane (`/_sim/...`).
pub(crate) async fn put_control(
    client: &reqwest::Client,
    end: &Endpoint,
    path: &str,
    body: &Value,
) -> Result<(), String> {
    let url = format!("{}{path}", end.url);
    let resp = client
        .put(&url)
        .bearer_auth(&end.token)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("PUT {url}: {e}"))?;
    if resp.status().is_success() {
        return Ok(());
    }
    let status = resp.status();
    Err(format!(
        "PUT {url}: {status} {}",
        resp.text().await.unwrap_or_default()
    ))
}

/// A mock's permission view of the user with `login` (`/_sim/permissions`); `None` when the
/// user does not exist there.
pub(crate) async fn permission_view(
    client: &reqwest::Client,
    end: &Endpoint,
    login: &str,
) -> Result<Option<Value>, String> {
    let locator = format!("username:{login}");
    let path = format!("/_sim/permissions/{}", encode(&locator));
    match crate::mock_target::native_find(client, end, &path).await? {
        Some(seen) if !seen.is_object() => {
            Err(format!("GET {}{path}: not an object: {seen}", end.url))
        }
        found => Ok(found),
    }
}

/// One server's API: its base URL and the token it takes (`SSWS` for the IdP, bearer for the
/// targets); for a target, optionally its app's id in the IdP and its SCIM connector's base
/// URL (same token; `scimlab load --poll-ms` reads people there).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub url: String,
    pub token: String,
    #[serde(default)]
    pub app: Option<String>,
    #[serde(default)]
    pub scim: Option<String>,
}

/// Servers already running elsewhere (`scimlab up` on another machine, say), from a TOML file:
/// the dialect the IdP's apps speak, then `[idp]` and one endpoint per mock target, named as
/// the target (`[space]`, `[teamcity]`). The targets' permission and audit views (`/_sim/...`)
/// are read, so they must be scimlab's mocks. `ca_cert` names an authority (PEM) to trust for
/// all of them, relative to the file.
#[derive(Debug, Clone, Deserialize)]
pub struct Remote {
    pub dialect: Dialect,
    #[serde(default)]
    pub ca_cert: Option<std::path::PathBuf>,
    pub idp: Endpoint,
    /// Every other key names a mock target (an unknown one is refused).
    #[serde(flatten)]
    pub targets: BTreeMap<TargetName, Endpoint>,
    /// How the servers are reached: the file's `ca_cert`, then the command's TLS flags.
    #[serde(skip)]
    pub tls: ClientTls,
    /// Access tokens for the targets' SCIM connectors (`load --poll-ms` reads them) when they
    /// take OAuth; `None`: each endpoint's token.
    #[serde(skip)]
    pub scim_oauth: Option<std::sync::Arc<scim::oauth::TokenSource>>,
}

impl Remote {
    pub fn load(path: &Path) -> Result<Remote, RunError> {
        let bad = |why: String| RunError::Remote(format!("{}: {why}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let mut remote: Remote = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if let Some(missing) = TargetName::all().find(|t| !remote.targets.contains_key(t)) {
            return Err(bad(format!("no [{missing}] endpoint")));
        }
        if let Some(ca) = &remote.ca_cert {
            let dir = path.parent().unwrap_or(Path::new("."));
            remote.tls.ca_certs.push(dir.join(ca));
        }
        remote.tls.config().map_err(|e| bad(e.to_string()))?;
        Ok(remote)
    }

    /// The same servers, reached also with these TLS settings (a command's flags).
    pub fn with_tls(mut self, flags: ClientTls) -> Remote {
        self.tls.ca_certs.extend(flags.ca_certs);
        self.tls.identity = flags.identity.or(self.tls.identity);
        self.tls.insecure |= flags.insecure;
        self
    }

    /// The endpoint of one target (every one is there once loaded).
    pub fn target(&self, on: TargetName) -> &Endpoint {
        &self.targets[&on]
    }

    /// An HTTP client for these servers.
    pub fn http(&self) -> Result<reqwest::Client, String> {
        self.tls.client().map_err(|e| e.to_string())
    }
}

/// What [`check_remote`] found: differences from the oracle, people whose permission view
/// could not be read, and audit chains that do not verify. Empty everywhere means equal.
#[derive(Debug, Default)]
pub struct FinalCheck {
    pub findings: Vec<oracle::Finding>,
    pub unreadable: Vec<String>,
    pub broken_chains: Vec<String>,
}

/// Checks `users` (name, IdP id) on servers already running (a `scimlab up` with
/// `--policies DIR`) against the oracle for the policies in `policies_dir`, and every audit
/// chain; for tests that drive a stack themselves, such as the crash test.
pub async fn check_remote(
    remote: &Remote,
    policies_dir: &Path,
    users: &[(String, String)],
) -> Result<FinalCheck, String> {
    let policies = crate::targets::idp_policies(policies_dir)
        .map_err(|(path, e)| format!("{}: {e}", path.display()))?;
    let client = remote.http()?;
    let ends = Ends::remote(&client, remote).await?;
    let mut oracle = ends.oracle(&client, &policies, remote.dialect).await?;
    ends.final_check(&client, &mut oracle, users).await
}

/// Every server a run talks to, resolved: the IdP, and each mock target with its app's id in
/// the IdP.
#[derive(Debug, Clone)]
pub(crate) struct Ends {
    pub(crate) idp: Endpoint,
    pub(crate) targets: BTreeMap<TargetName, Endpoint>,
    pub(crate) apps: BTreeMap<TargetName, String>,
}

impl Ends {
    /// Every audit hash chain (the IdP's and both targets') that does not verify, with why.
    pub(crate) async fn broken_chains(&self, client: &reqwest::Client) -> Vec<String> {
        let mut out = Vec::new();
        let targets = self.targets.iter().map(|(t, end)| (t.as_str(), end));
        for (name, end) in std::iter::once(("idp", &self.idp)).chain(targets) {
            let url = format!("{}/_sim/events/verify", end.url);
            let answer = async {
                let resp = client.get(&url).bearer_auth(&end.token).send().await?;
                resp.json::<Value>().await
            };
            match answer.await {
                Ok(v) if v["valid"] == json!(true) => {}
                Ok(v) => out.push(format!("{name}: audit chain broken: {v}")),
                Err(e) => out.push(format!("{name}: cannot verify the audit chain: {e}")),
            }
        }
        out
    }

    /// A mock target's endpoint (every registered one is there).
    pub(crate) fn target(&self, on: TargetName) -> &Endpoint {
        &self.targets[&on]
    }

    /// Every app id, in target order.
    pub(crate) fn app_ids(&self) -> Vec<String> {
        self.apps.values().cloned().collect()
    }

    /// The oracle for these targets under `policies`, their configuration read from them.
    pub(crate) async fn oracle(
        &self,
        client: &reqwest::Client,
        policies: &PolicyTexts,
        dialect: Dialect,
    ) -> Result<Oracle, String> {
        Oracle::read(client, |t| self.target(t).clone(), policies, dialect).await
    }

    pub(crate) fn embedded(targets: &Targets) -> Ends {
        let end = |url: &str, scim: Option<&str>| Endpoint {
            url: url.to_owned(),
            token: TOKEN.to_owned(),
            app: None,
            scim: scim.map(str::to_owned),
        };
        Ends {
            idp: end(&targets.idp.url, None),
            targets: targets
                .mocks
                .iter()
                .map(|(t, urls)| (*t, end(&urls.native_url, Some(&urls.scim_url))))
                .collect(),
            apps: targets.apps.clone(),
        }
    }

    /// The remote IdP's app ids: as given, or the apps labelled as each target (`Space`).
    pub(crate) async fn remote(client: &reqwest::Client, r: &Remote) -> Result<Ends, String> {
        let apps = idp_call(
            client,
            &r.idp.url,
            &r.idp.token,
            Method::GET,
            "/api/v1/apps",
            None,
        )
        .await?;
        let find = |given: &Option<String>, label: &str| {
            given
                .clone()
                .or_else(|| {
                    apps.as_array()?
                        .iter()
                        .find(|a| a["label"] == json!(label))?["id"]
                        .as_str()
                        .map(str::to_owned)
                })
                .ok_or_else(|| format!("the IdP has no app labelled {label}: give its id as `app`"))
        };
        let mut apps = BTreeMap::new();
        for t in TargetName::all() {
            apps.insert(t, find(&r.target(t).app, t.mock().label())?);
        }
        Ok(Ends {
            idp: r.idp.clone(),
            targets: r.targets.clone(),
            apps,
        })
    }

    /// The state that `users` (name, IdP id) have reached on every target against the oracle,
    /// and every audit chain. Everyone named must have been hired active into a group assigned
    /// to every app (so each was provisioned on every target at some point).
    pub(crate) async fn final_check(
        &self,
        client: &reqwest::Client,
        oracle: &mut Oracle,
        users: &[(String, String)],
    ) -> Result<FinalCheck, String> {
        use futures::StreamExt;
        let apps: Vec<(TargetName, String)> =
            self.apps.iter().map(|(t, a)| (*t, a.clone())).collect();
        let state = oracle::read_idp(client, &self.idp.url, &self.idp.token, users, &apps).await?;
        let names: Vec<String> = users.iter().map(|(n, _)| n.clone()).collect();
        oracle
            .provisioned(TargetName::all().flat_map(|t| names.iter().map(move |n| (t, n.clone()))));
        let due = oracle.expected(&state, &names);
        let reads = futures::stream::iter(due.keys().cloned().map(|(target, user)| {
            let end = self.target(target).clone();
            async move {
                let view = permission_view(client, &end, &user).await;
                (target, user, view)
            }
        }))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
        let mut seen = Seen::default();
        let mut unreadable = Vec::new();
        for (target, user, view) in reads {
            let Some(judge) = oracle.judge(target) else {
                continue;
            };
            match view {
                Ok(v) => seen.add(target, judge, &user, v.as_ref()),
                Err(e) => unreadable.push(format!("reading {user}: {e}")),
            }
        }
        Ok(FinalCheck {
            findings: oracle::compare(&[due], &seen),
            unreadable,
            broken_chains: self.broken_chains(client).await,
        })
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
