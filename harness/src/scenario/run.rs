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
use super::model::{
    self, Access, Dialect, Expect, Scenario, Server, SpaceExpect, Step, TargetName, TeamCityExpect,
    Tokens,
};
use super::oracle::{self, Account, Oracle, Seen, TargetConfig, View};
use super::play::{play, Runner, Verdict};
use crate::encode;
use crate::targets::{idp_call, Targets};

pub(crate) const TOKEN: &str = "scimlab-scenario";

/// Each target's permission view of each user; `None` where the user does not exist.
type Views = BTreeMap<(TargetName, String), Option<Value>>;
/// Why one expectation does not hold on what a target shows (`None` when it holds).
type Judge<'a> = Box<dyn Fn(Option<&Value>) -> Option<String> + Send + Sync + 'a>;
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
            && scim.iter().all(|o| o.left.is_empty() || o.kept);
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
        match on {
            TargetName::Space => &self.ends.space_app,
            TargetName::Teamcity => &self.ends.teamcity_app,
        }
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
                let (url, field) = match t.on {
                    TargetName::Space => (
                        format!(
                            "{}/api/http/team-directory/profiles/{login}/permanent-tokens",
                            self.base(t.on)
                        ),
                        "second",
                    ),
                    TargetName::Teamcity => (
                        format!("{}/app/rest/users/{login}/tokens", self.base(t.on)),
                        "value",
                    ),
                };
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
                        e.space.len() + e.teamcity.len()
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
                    Some(e) => self.misses(&e.space, &e.teamcity, &views, &tokens),
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
        let apps: Vec<(TargetName, String)> = TargetName::ALL
            .iter()
            .map(|t| (*t, self.app(*t).to_owned()))
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
        for t in TargetName::ALL {
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

    /// The oracle's findings on what the targets show.
    async fn findings(&self, views: &Views) -> Vec<oracle::Finding> {
        let mut seen = Seen::default();
        for ((target, user), view) in views {
            seen.add(*target, user, view.as_ref());
        }
        let mut findings = oracle::compare(&self.history, &seen);
        for f in findings
            .iter_mut()
            .filter(|f| f.target == "teamcity" && f.kind == "excess")
        {
            f.route = self.teamcity_route(&f.user, &f.what).await;
        }
        findings
    }

    /// Which of a TeamCity user's role assignments (own or through a group) grants `item`.
    async fn teamcity_route(&self, user: &str, item: &str) -> Option<String> {
        let base = self.base(TargetName::Teamcity);
        let token = self.token(TargetName::Teamcity);
        let login = encode(&format!("username:{}", self.login(user)));
        let (_, u) = self
            .native(
                Method::GET,
                &format!("{base}/app/rest/users/{login}"),
                None,
                token,
            )
            .await
            .ok()?;
        let mut held: Vec<(String, &str, &str)> = Vec::new();
        let roles = |v: &Value| -> Vec<(String, String)> {
            v["roles"]["role"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    Some((
                        r["roleId"].as_str()?.to_owned(),
                        r["scope"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        };
        let own = roles(&u);
        let mut group_roles = Vec::new();
        for g in u["groups"]["group"].as_array().into_iter().flatten() {
            let Some(key) = g["key"].as_str() else {
                continue;
            };
            let url = format!("{base}/app/rest/userGroups/key:{}", encode(key));
            if let Ok((200, group)) = self.native(Method::GET, &url, None, token).await {
                let name = group["name"].as_str().unwrap_or(key).to_owned();
                group_roles.push((format!("group {name}"), roles(&group)));
            }
        }
        held.extend(
            own.iter()
                .map(|(r, s)| ("own role".to_owned(), r.as_str(), s.as_str())),
        );
        for (holder, list) in &group_roles {
            held.extend(
                list.iter()
                    .map(|(r, s)| (holder.clone(), r.as_str(), s.as_str())),
            );
        }
        let routes = self.oracle.teamcity_routes(item, &held);
        (!routes.is_empty()).then(|| routes.join(", "))
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
                out.push(format!("{}: {}: {why}", oracle::target_label(t.on), t.user));
            }
        }
        out
    }

    /// What each token (in `tokens` order) gets when it reads its own user: a status.
    async fn token_answers(&self) -> Vec<Result<u16, String>> {
        let mut out = Vec::new();
        for t in &self.tokens {
            let login = encode(&format!("username:{}", self.login(&t.user)));
            let url = match t.on {
                TargetName::Space => format!(
                    "{}/api/http/team-directory/profiles/{login}",
                    self.base(t.on)
                ),
                TargetName::Teamcity => format!("{}/app/rest/users/{login}", self.base(t.on)),
            };
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
                // Space always records the deactivation; TeamCity, with no flag, records what
                // it took away, so only a leaver who had something shows there.
                let kinds: &[&str] = match target {
                    TargetName::Space => &["profile.deactivated", "profile.deleted"],
                    TargetName::Teamcity if !was.items.is_empty() || had_tokens => &[
                        "user.groups.changed",
                        "roles.changed",
                        "token.deleted",
                        "user.deleted",
                    ],
                    TargetName::Teamcity => continue,
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
                        "{}: {user}: left at step {i}, but no audit event ({}) records it",
                        oracle::target_label(*target),
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
        space: &[SpaceExpect],
        teamcity: &[TeamCityExpect],
        views: &Views,
        tokens: &[Result<u16, String>],
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (target, user, miss) in space
            .iter()
            .map(|e| {
                (
                    TargetName::Space,
                    &e.user,
                    Box::new(move |seen: Option<&Value>| space_miss(e, seen)) as Judge<'_>,
                )
            })
            .chain(teamcity.iter().map(|e| {
                (
                    TargetName::Teamcity,
                    &e.user,
                    Box::new(move |seen: Option<&Value>| teamcity_miss(e, seen)) as Judge<'_>,
                )
            }))
        {
            let seen = views.get(&(target, user.clone())).and_then(Option::as_ref);
            if let Some(why) = miss(seen) {
                out.push(format!("{}: {user}: {why}", oracle::target_label(target)));
            }
        }
        let wanted_tokens = space
            .iter()
            .filter_map(|e| e.tokens.map(|t| (&e.user, TargetName::Space, t)))
            .chain(
                teamcity
                    .iter()
                    .filter_map(|e| e.tokens.map(|t| (&e.user, TargetName::Teamcity, t))),
            );
        for (user, on, want) in wanted_tokens {
            for ((i, _), answer) in self
                .tokens
                .iter()
                .enumerate()
                .zip(tokens)
                .filter(|((_, t), _)| t.user == *user && t.on == on)
            {
                if let Some(why) = token_miss(i, answer, want) {
                    out.push(format!("{}: {user}: {why}", oracle::target_label(on)));
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
    let url = format!("{}/_sim/permissions/{}", end.url, encode(&locator));
    let resp = client
        .get(&url)
        .bearer_auth(&end.token)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    match (status, serde_json::from_str::<Value>(&text)) {
        (404, _) => Ok(None),
        (200, Ok(seen)) if seen.is_object() => Ok(Some(seen)),
        _ => Err(format!("GET {url}: {status} {text}")),
    }
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect();
    out.sort();
    out
}

/// Space answers roles as `{role: [routes that grant it]}`; the names, sorted.
fn role_names(roles: &Value) -> Vec<String> {
    let mut out: Vec<String> = roles
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// A role with the routes that granted it, for an excess-access finding.
fn routed(roles: &Value, role: &str) -> String {
    match roles[role].as_array() {
        Some(routes) if !routes.is_empty() => {
            format!("{role} (via {})", strings(&roles[role]).join(", "))
        }
        _ => role.to_owned(),
    }
}

/// Why a Space expectation does not hold on `seen` (`/_sim/permissions/{profile}`).
fn space_miss(e: &SpaceExpect, seen: Option<&Value>) -> Option<String> {
    if let Some(active) = e.active {
        match seen {
            None => return Some("no such profile".into()),
            Some(p) if p["active"] != json!(active) => {
                return Some(format!("active is {}", p["active"]))
            }
            _ => {}
        }
    }
    if e.access == Some(Access::None) {
        let projects = seen.map(|p| p["projects"].clone()).unwrap_or(json!({}));
        let held: Vec<String> = projects
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, a)| !role_names(&a["roles"]).is_empty())
            .map(|(k, a)| {
                let roles: Vec<String> = role_names(&a["roles"])
                    .iter()
                    .map(|r| routed(&a["roles"], r))
                    .collect();
                format!("{k} {}", roles.join(", "))
            })
            .collect();
        if !held.is_empty() {
            return Some(format!("excess access: {}", held.join(", ")));
        }
    }
    if let (Some(project), Some(roles)) = (&e.project, &e.roles) {
        let mut want = roles.clone();
        want.sort();
        let roles = seen
            .map(|p| p["projects"][project]["roles"].clone())
            .unwrap_or(Value::Null);
        let got = role_names(&roles);
        if got != want {
            let missing: Vec<&String> = want.iter().filter(|r| !got.contains(r)).collect();
            let excess: Vec<String> = got
                .iter()
                .filter(|r| !want.contains(r))
                .map(|r| routed(&roles, r))
                .collect();
            return Some(format!(
                "on {project}: missing {missing:?}, excess {excess:?}"
            ));
        }
    }
    None
}

/// Why a TeamCity expectation does not hold on `seen` (`/_sim/permissions/{locator}`).
fn teamcity_miss(e: &TeamCityExpect, seen: Option<&Value>) -> Option<String> {
    if e.access == Some(Access::None) {
        if let Some(p) = seen {
            let global = strings(&p["global"]);
            let projects: Vec<String> = p["projects"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, perms)| !strings(perms).is_empty())
                .map(|(k, _)| k.clone())
                .collect();
            if !global.is_empty() || !projects.is_empty() {
                return Some(format!(
                    "excess access: global {global:?}, projects {projects:?}"
                ));
            }
        }
    }
    if let Some(project) = &e.project {
        let got = seen
            .map(|p| strings(&p["projects"][project]))
            .unwrap_or_default();
        let missing: Vec<&String> = e.may.iter().filter(|m| !got.contains(m)).collect();
        let excess: Vec<&String> = e.may_not.iter().filter(|m| got.contains(m)).collect();
        if !missing.is_empty() || !excess.is_empty() {
            return Some(format!(
                "on {project}: missing {missing:?}, excess {excess:?}"
            ));
        }
    }
    None
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
/// the dialect the IdP's apps speak, then `[idp]`, `[space]` and `[teamcity]` endpoints. The
/// targets' permission and audit views (`/_sim/...`) are read, so they must be scimlab's mocks.
/// `ca_cert` names an authority (PEM) to trust for all of them, relative to the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remote {
    pub dialect: Dialect,
    #[serde(default)]
    pub ca_cert: Option<std::path::PathBuf>,
    pub idp: Endpoint,
    pub space: Endpoint,
    pub teamcity: Endpoint,
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

    /// The endpoint of one target.
    pub fn target(&self, on: TargetName) -> &Endpoint {
        match on {
            TargetName::Space => &self.space,
            TargetName::Teamcity => &self.teamcity,
        }
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
    let (space, teamcity) = crate::targets::idp_policies(policies_dir)
        .map_err(|(path, e)| format!("{}: {e}", path.display()))?;
    let client = remote.http()?;
    let ends = Ends::remote(&client, remote).await?;
    let config = ends.target_config(&client).await?;
    let entra = remote.dialect == Dialect::Entra;
    let mut oracle = Oracle::new(space, teamcity, config, entra).map_err(|e| e.to_string())?;
    ends.final_check(&client, &mut oracle, users).await
}

/// Every server a run talks to, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Ends {
    pub(crate) idp: Endpoint,
    pub(crate) space: Endpoint,
    pub(crate) teamcity: Endpoint,
    pub(crate) space_app: String,
    pub(crate) teamcity_app: String,
}

impl Ends {
    /// Every audit hash chain (the IdP's and both targets') that does not verify, with why.
    pub(crate) async fn broken_chains(&self, client: &reqwest::Client) -> Vec<String> {
        let mut out = Vec::new();
        for (name, end) in [
            ("idp", &self.idp),
            ("space", &self.space),
            ("teamcity", &self.teamcity),
        ] {
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

    pub(crate) fn target(&self, on: TargetName) -> &Endpoint {
        match on {
            TargetName::Space => &self.space,
            TargetName::Teamcity => &self.teamcity,
        }
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
            space: end(&targets.space.space_url, Some(&targets.space.scim_url)),
            teamcity: end(
                &targets.teamcity.teamcity_url,
                Some(&targets.teamcity.scim_url),
            ),
            space_app: targets.space_app.clone(),
            teamcity_app: targets.teamcity_app.clone(),
        }
    }

    /// The remote IdP's app ids: as given, or the apps labelled `Space` and `TeamCity`.
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
        Ok(Ends {
            space_app: find(&r.space.app, "Space")?,
            teamcity_app: find(&r.teamcity.app, "TeamCity")?,
            idp: r.idp.clone(),
            space: r.space.clone(),
            teamcity: r.teamcity.clone(),
        })
    }

    /// The state that `users` (name, IdP id) have reached on both targets against the oracle,
    /// and every audit chain. Everyone named must have been hired active into a group assigned
    /// to both apps (so each was provisioned on both targets at some point).
    pub(crate) async fn final_check(
        &self,
        client: &reqwest::Client,
        oracle: &mut Oracle,
        users: &[(String, String)],
    ) -> Result<FinalCheck, String> {
        use futures::StreamExt;
        let apps = [
            (TargetName::Space, self.space_app.clone()),
            (TargetName::Teamcity, self.teamcity_app.clone()),
        ];
        let state = oracle::read_idp(client, &self.idp.url, &self.idp.token, users, &apps).await?;
        let names: Vec<String> = users.iter().map(|(n, _)| n.clone()).collect();
        oracle.provisioned(
            TargetName::ALL
                .iter()
                .flat_map(|t| names.iter().map(|n| (*t, n.clone()))),
        );
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
            match view {
                Ok(v) => seen.add(target, &user, v.as_ref()),
                Err(e) => unreadable.push(format!("reading {user}: {e}")),
            }
        }
        Ok(FinalCheck {
            findings: oracle::compare(&[due], &seen),
            unreadable,
            broken_chains: self.broken_chains(client).await,
        })
    }

    /// The targets' fixed configuration the oracle needs, read from their own APIs.
    pub(crate) async fn target_config(
        &self,
        client: &reqwest::Client,
    ) -> Result<TargetConfig, String> {
        let get = |end: &Endpoint, path: &str| {
            let url = format!("{}{path}", end.url);
            let token = end.token.clone();
            async move {
                let resp = client
                    .get(&url)
                    .bearer_auth(token)
                    .header("accept", "application/json")
                    .send()
                    .await
                    .map_err(|e| format!("GET {url}: {e}"))?;
                if !resp.status().is_success() {
                    return Err(format!("GET {url}: {}", resp.status()));
                }
                resp.json::<Value>()
                    .await
                    .map_err(|e| format!("GET {url}: {e}"))
            }
        };
        let projects = get(&self.space, "/api/http/projects?$top=1000").await?;
        let space_public = projects["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["private"] == json!(false))
            .filter_map(|p| p["key"].as_str().or_else(|| p["key"]["key"].as_str()))
            .map(str::to_owned)
            .collect();
        let roles = oracle::teamcity_roles(&get(&self.teamcity, "/app/rest/roles").await?);
        let teamcity_parents = get(&self.teamcity, "/app/rest/projects").await?["project"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p["id"].as_str()?.to_owned(),
                    p["parentProjectId"].as_str().map(str::to_owned),
                ))
            })
            .collect();
        Ok(TargetConfig {
            space_public,
            teamcity_roles: roles,
            teamcity_parents,
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
    let load = |name: &str| policies_dir.join(format!("{name}.toml"));
    let space_policy = mock_space::Policy::load(&load(&scenario.policies.space))
        .map_err(|e| RunError::Policy(scenario.policies.space.clone(), e.to_string()))?;
    let teamcity_policy = mock_teamcity::Policy::load(&load(&scenario.policies.teamcity))
        .map_err(|e| RunError::Policy(scenario.policies.teamcity.clone(), e.to_string()))?;
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
                (space_policy.clone(), teamcity_policy.clone()),
                Default::default(),
            )
            .await?;
            let ends = Ends::embedded(&targets);
            (Some(targets), ends, None)
        }
    };
    let oracle = match ends.target_config(&client).await.and_then(|config| {
        Oracle::new(
            space_policy,
            teamcity_policy,
            config,
            dialect == Dialect::Entra,
        )
        .map_err(|e| e.to_string())
    }) {
        Ok(o) => o,
        Err(why) => {
            if let Some(t) = targets {
                t.stop().await;
            }
            return Err(RunError::Oracle(why));
        }
    };
    let mut dir = Directory::new(
        client.clone(),
        ends.idp.clone(),
        vec![ends.space_app.clone(), ends.teamcity_app.clone()],
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn space(roles: Option<Vec<&str>>, access: Option<Access>) -> SpaceExpect {
        SpaceExpect {
            user: "a".into(),
            project: roles.as_ref().map(|_| "BACKEND".into()),
            roles: roles.map(|r| r.into_iter().map(str::to_owned).collect()),
            access,
            active: None,
            tokens: None,
        }
    }

    #[test]
    fn space_expectations_report_missing_and_excess() {
        let seen = json!({"active": true, "projects": {"BACKEND": {"roles": {"member": ["team:t1"], "admin": ["team:t2"]}}, "WEB": {"roles": {}}}});
        assert_eq!(
            space_miss(&space(Some(vec!["admin", "member"]), None), Some(&seen)),
            None
        );
        let miss = space_miss(&space(Some(vec!["member"]), None), Some(&seen)).unwrap();
        assert!(miss.contains("excess [\"admin (via team:t2)\"]"), "{miss}");
        assert!(space_miss(&space(None, Some(Access::None)), Some(&seen))
            .unwrap()
            .contains("BACKEND"));
        assert_eq!(
            space_miss(&space(None, Some(Access::None)), None),
            None,
            "an absent user has no access"
        );
        assert!(space_miss(&space(Some(vec!["member"]), None), None)
            .unwrap()
            .contains("missing"));
    }

    #[test]
    fn teamcity_expectations_read_permissions() {
        let seen = json!({"global": [], "projects": {"Backend": ["run_build", "view_project"]}});
        let e = TeamCityExpect {
            user: "a".into(),
            project: Some("Backend".into()),
            may: vec!["run_build".into()],
            may_not: vec!["edit_project".into()],
            access: None,
            tokens: None,
        };
        assert_eq!(teamcity_miss(&e, Some(&seen)), None);
        let e = TeamCityExpect {
            may_not: vec!["run_build".into()],
            ..e
        };
        assert!(teamcity_miss(&e, Some(&seen))
            .unwrap()
            .contains("excess [\"run_build\"]"));
        let none = TeamCityExpect {
            user: "a".into(),
            project: None,
            may: vec![],
            may_not: vec![],
            access: Some(Access::None),
            tokens: None,
        };
        assert!(teamcity_miss(&none, Some(&seen)).is_some());
        assert_eq!(teamcity_miss(&none, None), None);
    }
}
