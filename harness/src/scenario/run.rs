//! Runs a scenario against freshly started embedded servers: drives mock-idp's management API
//! step by step and, at each `expect`, polls the targets' permission endpoints until every
//! expectation holds or its deadline passes.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};

use super::model::{
    self, Access, DialectName, Scenario, SpaceExpect, Step, TargetName, TeamCityExpect, Tokens,
};
use crate::targets::{idp_call, Dialect, Targets};

const TOKEN: &str = "scimlab-scenario";

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
}

/// The IdP's ids of what the scenario named.
struct World {
    client: reqwest::Client,
    targets: Targets,
    users: Vec<(String, String)>,
    groups: Vec<(String, String)>,
    /// Personal tokens users created on the targets: (user, target, secret).
    tokens: Vec<(String, TargetName, String)>,
}

impl World {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        idp_call(
            &self.client,
            &self.targets.idp.url,
            TOKEN,
            method,
            path,
            body,
        )
        .await
    }

    fn user(&self, name: &str) -> Result<&str, String> {
        self.users
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.as_str())
            .ok_or_else(|| format!("{name} was not hired"))
    }

    fn group(&self, name: &str) -> Result<&str, String> {
        self.groups
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.as_str())
            .ok_or_else(|| format!("no group {name}"))
    }

    fn login(name: &str) -> String {
        format!("{name}@scimlab.test")
    }

    async fn lifecycle(&self, user: &str, action: &str) -> Result<String, String> {
        let id = self.user(user)?.to_owned();
        self.call(
            Method::POST,
            &format!("/api/v1/users/{id}/lifecycle/{action}"),
            None,
        )
        .await
        .map(|_| String::new())
    }

    async fn membership(&self, user: &str, group: &str, join: bool) -> Result<String, String> {
        let path = format!(
            "/api/v1/groups/{}/users/{}",
            self.group(group)?,
            self.user(user)?
        );
        let method = if join { Method::PUT } else { Method::DELETE };
        self.call(method, &path, None).await.map(|_| String::new())
    }

    /// Creates a group, assigns it to both apps and pushes it to both.
    async fn create_group(&mut self, name: &str) -> Result<(), String> {
        let g = self
            .call(
                Method::POST,
                "/api/v1/groups",
                Some(json!({"profile": {"name": name}})),
            )
            .await?;
        let id = g["id"]
            .as_str()
            .ok_or("the IdP gave the group no id")?
            .to_owned();
        for app in [
            self.targets.space_app.clone(),
            self.targets.teamcity_app.clone(),
        ] {
            self.call(
                Method::PUT,
                &format!("/api/v1/apps/{app}/groups/{id}"),
                Some(json!({})),
            )
            .await?;
            self.call(
                Method::POST,
                &format!("/api/v1/apps/{app}/group-push/mappings"),
                Some(json!({"sourceGroupId": id})),
            )
            .await?;
        }
        self.groups.push((name.to_owned(), id));
        Ok(())
    }

    async fn step(&mut self, step: &Step) -> Result<String, String> {
        match step {
            Step::Hire(h) => {
                let mut profile = json!({"login": Self::login(&h.user), "email": Self::login(&h.user),
                                         "firstName": h.user, "lastName": "Scenario"});
                for (k, v) in &h.profile {
                    profile[k] = v.clone();
                }
                let group_ids = h
                    .groups
                    .iter()
                    .map(|g| self.group(g).map(str::to_owned))
                    .collect::<Result<Vec<_>, _>>()?;
                let u = self
                    .call(
                        Method::POST,
                        "/api/v1/users?activate=true",
                        Some(json!({"profile": profile, "groupIds": group_ids})),
                    )
                    .await?;
                let id = u["id"]
                    .as_str()
                    .ok_or("the IdP gave the user no id")?
                    .to_owned();
                self.users.push((h.user.clone(), id));
                Ok(String::new())
            }
            Step::Update(u) => {
                let id = self.user(&u.user)?.to_owned();
                self.call(
                    Method::POST,
                    &format!("/api/v1/users/{id}"),
                    Some(json!({"profile": u.profile})),
                )
                .await
                .map(|_| String::new())
            }
            Step::Join(m) => self.membership(&m.user, &m.group, true).await,
            Step::Leave(m) => self.membership(&m.user, &m.group, false).await,
            Step::Move(m) => {
                self.membership(&m.user, &m.to, true).await?;
                self.membership(&m.user, &m.from, false).await
            }
            Step::Rename(r) => {
                let id = self.group(&r.group)?.to_owned();
                self.call(
                    Method::PUT,
                    &format!("/api/v1/groups/{id}"),
                    Some(json!({"profile": {"name": r.to}})),
                )
                .await?;
                if let Some(entry) = self.groups.iter_mut().find(|(n, _)| *n == r.group) {
                    entry.0 = r.to.clone();
                }
                Ok(String::new())
            }
            Step::Suspend(u) => self.lifecycle(&u.user, "suspend").await,
            Step::Unsuspend(u) => self.lifecycle(&u.user, "unsuspend").await,
            Step::Terminate(u) => self.lifecycle(&u.user, "deactivate").await,
            Step::Rehire(u) => self.lifecycle(&u.user, "activate").await,
            Step::Delete(u) => {
                let id = self.user(&u.user)?.to_owned();
                // Okta deletes in two steps: the first DELETE deactivates.
                let path = format!("/api/v1/users/{id}");
                let now = self.call(Method::GET, &path, None).await?;
                if now["status"] != json!("DEPROVISIONED") {
                    self.call(Method::DELETE, &path, None).await?;
                }
                self.call(Method::DELETE, &path, None)
                    .await
                    .map(|_| String::new())
            }
            Step::Token(t) => {
                // A user makes a token once the account exists: after the IdP has delivered.
                self.delivered(Duration::from_secs(5)).await?;
                let login = encode(&format!("username:{}", Self::login(&t.user)));
                let (url, body, field) = match t.on {
                    TargetName::Space => (
                        format!(
                            "{}/api/http/team-directory/profiles/{login}/permanent-tokens",
                            self.targets.space.space_url
                        ),
                        json!({"name": format!("scenario-{}", self.tokens.len())}),
                        "second",
                    ),
                    TargetName::Teamcity => (
                        format!(
                            "{}/app/rest/users/{login}/tokens",
                            self.targets.teamcity.teamcity_url
                        ),
                        json!({"name": format!("scenario-{}", self.tokens.len())}),
                        "value",
                    ),
                };
                let (status, answer) = self.native(Method::POST, &url, Some(body), TOKEN).await?;
                let secret = answer[field]
                    .as_str()
                    .filter(|_| status == 200)
                    .ok_or_else(|| format!("POST {url}: {status} {answer}"))?;
                self.tokens.push((t.user.clone(), t.on, secret.to_owned()));
                Ok(String::new())
            }
            Step::Quirks(q) => {
                let base = match q.on {
                    TargetName::Space => &self.targets.space.space_url,
                    TargetName::Teamcity => &self.targets.teamcity.teamcity_url,
                };
                let url = format!("{base}/_sim/quirks");
                let (status, answer) = self
                    .native(Method::PUT, &url, Some(json!(q.quirks)), TOKEN)
                    .await?;
                if status == 200 {
                    Ok(String::new())
                } else {
                    Err(format!("PUT {url}: {status} {answer}"))
                }
            }
            Step::Wait(w) => {
                tokio::time::sleep(model::duration(w).unwrap_or_default()).await;
                Ok(String::new())
            }
            Step::Expect(e) => {
                let within = model::duration(&e.within).unwrap_or(Duration::from_secs(5));
                let deadline = Instant::now() + within;
                loop {
                    // Until the IdP has delivered every change, "no access" would hold only
                    // because the change has not arrived yet.
                    let pending = self.pending().await?;
                    let misses = if pending == 0 {
                        self.misses(&e.space, &e.teamcity).await
                    } else {
                        vec![format!("{pending} changes still in the IdP's outboxes")]
                    };
                    if misses.is_empty() {
                        return Ok(format!(
                            "{} expectations held",
                            e.space.len() + e.teamcity.len()
                        ));
                    }
                    if Instant::now() >= deadline {
                        return Err(format!("after {}: {}", e.within, misses.join("; ")));
                    }
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    /// Waits (at most `within`) until the IdP has delivered everything it accepted.
    async fn delivered(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            let pending = self.pending().await?;
            if pending == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{pending} changes still in the IdP's outboxes after {within:?}"
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Changes the IdP has accepted and not yet delivered to either app.
    async fn pending(&self) -> Result<usize, String> {
        let mut n = 0;
        for app in [&self.targets.space_app, &self.targets.teamcity_app] {
            let outbox = self
                .call(Method::GET, &format!("/api/v1/apps/{app}/outbox"), None)
                .await?;
            n += outbox.as_array().map_or(0, Vec::len);
        }
        Ok(n)
    }

    /// Reads a mock's permission view of a user; `None` when the user does not exist there.
    async fn permissions(&self, base: &str, user: &str) -> Result<Option<Value>, String> {
        let locator = format!("username:{}", Self::login(user));
        let url = format!("{base}/_sim/permissions/{}", encode(&locator));
        match self.native(Method::GET, &url, None, TOKEN).await? {
            (404, _) => Ok(None),
            (200, seen) if seen.is_object() => Ok(Some(seen)),
            (code, answer) => Err(format!("GET {url}: {code} {answer}")),
        }
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

    /// Why the user's tokens on a target are not in the wanted state.
    async fn token_miss(&self, user: &str, on: TargetName, want: Tokens) -> Option<String> {
        let login = encode(&format!("username:{}", Self::login(user)));
        let url = match on {
            TargetName::Space => format!(
                "{}/api/http/team-directory/profiles/{login}",
                self.targets.space.space_url
            ),
            TargetName::Teamcity => format!(
                "{}/app/rest/users/{login}",
                self.targets.teamcity.teamcity_url
            ),
        };
        let mut wrong = Vec::new();
        for (i, (_, _, secret)) in self
            .tokens
            .iter()
            .enumerate()
            .filter(|(_, (u, t, _))| u == user && *t == on)
        {
            match self.native(Method::GET, &url, None, secret).await {
                Ok((code, _)) => {
                    let accepted = (200..300).contains(&code);
                    if accepted != (want == Tokens::Accepted) {
                        wrong.push(format!("token {} answered {code}", i + 1));
                    }
                }
                Err(why) => wrong.push(why),
            }
        }
        (!wrong.is_empty()).then(|| {
            let wanted = if want == Tokens::Accepted {
                "accepted"
            } else {
                "refused"
            };
            format!("tokens should be {wanted}: {}", wrong.join(", "))
        })
    }

    /// Every expectation that does not hold now, with what was seen instead.
    async fn misses(&self, space: &[SpaceExpect], teamcity: &[TeamCityExpect]) -> Vec<String> {
        let mut out = Vec::new();
        let space_url = &self.targets.space.space_url;
        let teamcity_url = &self.targets.teamcity.teamcity_url;
        for (target, base, user, miss) in space
            .iter()
            .map(|e| {
                (
                    "space",
                    space_url,
                    &e.user,
                    Box::new(move |seen: Option<&Value>| space_miss(e, seen)) as Judge<'_>,
                )
            })
            .chain(teamcity.iter().map(|e| {
                (
                    "teamcity",
                    teamcity_url,
                    &e.user,
                    Box::new(move |seen: Option<&Value>| teamcity_miss(e, seen)) as Judge<'_>,
                )
            }))
        {
            match self.permissions(base, user).await {
                Ok(seen) => {
                    if let Some(why) = miss(seen.as_ref()) {
                        out.push(format!("{target}: {user}: {why}"));
                    }
                }
                Err(why) => out.push(why),
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
            if let Some(why) = self.token_miss(user, on, want).await {
                let target = if on == TargetName::Space {
                    "space"
                } else {
                    "teamcity"
                };
                out.push(format!("{target}: {user}: {why}"));
            }
        }
        out
    }
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
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

/// Runs `scenario` (read from `file`) in `dialect` with policies from `policies_dir`.
pub async fn run(
    scenario: &Scenario,
    file: &Path,
    dialect: DialectName,
    policies_dir: &Path,
) -> Result<ScenarioRun, RunError> {
    let started = Instant::now();
    let load = |name: &str| policies_dir.join(format!("{name}.toml"));
    let space_policy = mock_space::Policy::load(&load(&scenario.policies.space))
        .map_err(|e| RunError::Policy(scenario.policies.space.clone(), e.to_string()))?;
    let teamcity_policy = mock_teamcity::Policy::load(&load(&scenario.policies.teamcity))
        .map_err(|e| RunError::Policy(scenario.policies.teamcity.clone(), e.to_string()))?;
    let data = tempfile::tempdir()?;
    let idp_dialect = match dialect {
        DialectName::Okta => Dialect::Okta,
        DialectName::Entra => Dialect::Entra,
    };
    let targets = Targets::start_with_policies(
        Some(data.path().to_owned()),
        TOKEN,
        false,
        idp_dialect,
        (space_policy, teamcity_policy),
    )
    .await?;
    let mut world = World {
        client: reqwest::Client::new(),
        targets,
        users: Vec::new(),
        groups: Vec::new(),
        tokens: Vec::new(),
    };
    let mut steps = Vec::new();
    let mut setup = Ok(());
    for g in &scenario.groups {
        setup = world.create_group(g).await;
        if setup.is_err() {
            break;
        }
    }
    if let Err(why) = setup {
        steps.push(StepResult {
            index: 0,
            kind: "groups",
            ok: false,
            detail: why,
            millis: 0.0,
        });
    } else {
        for (i, step) in scenario.steps.iter().enumerate() {
            let at = Instant::now();
            let outcome = world.step(step).await;
            let ok = outcome.is_ok();
            steps.push(StepResult {
                index: i + 1,
                kind: step.kind(),
                ok,
                detail: outcome.unwrap_or_else(|e| e),
                millis: at.elapsed().as_secs_f64() * 1000.0,
            });
            if !ok && !matches!(step, Step::Expect(_)) {
                // A step the IdP refused leaves the rest meaningless.
                break;
            }
        }
    }
    world.targets.stop().await;
    let passed = steps.iter().all(|s| s.ok) && steps.len() == scenario.steps.len();
    Ok(ScenarioRun {
        file: file.display().to_string(),
        name: scenario.name.clone(),
        dialect: dialect.as_str(),
        passed,
        seconds: started.elapsed().as_secs_f64(),
        steps,
    })
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
