//! The IdP side of a scenario, the same whatever the targets: people hired, moved and let go
//! through mock-idp's management API, groups made, assigned and pushed to every target's app,
//! contracts ending, and whether the IdP has delivered what it accepted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use super::model::{self, Step};
use super::run::Endpoint;
use crate::targets::idp_call;

/// How often the IdP's outboxes are read while waiting for delivery.
const POLL: Duration = Duration::from_millis(25);

/// A change the IdP has not delivered.
pub(crate) struct Undelivered {
    pub(crate) text: String,
    /// Parked (given up on after a refusal or too many attempts), or held back behind a
    /// parked one: it will not arrive by waiting.
    pub(crate) parked: bool,
}

/// What the scenario named, by the IdP's ids, and how to reach the IdP.
pub(crate) struct Directory {
    pub(crate) client: reqwest::Client,
    pub(crate) idp: Endpoint,
    /// The app of every target: each group is assigned and pushed to all of them.
    pub(crate) apps: Vec<String>,
    /// Keeps this run's logins (and, with `prefix_groups`, group names) apart from what the
    /// servers already hold: earlier runs', or a vendor's own data.
    pub(crate) tag: Option<String>,
    /// Group names carry the tag too (a foreign SCIM server), rather than being reused by name
    /// (remote mocks, whose policies match groups by name).
    pub(crate) prefix_groups: bool,
    /// (scenario name, IdP id) of everyone hired and every group made.
    pub(crate) users: Vec<(String, String)>,
    pub(crate) groups: Vec<(String, String)>,
    /// Contract ends not yet reached: (user, when).
    contracts: Vec<(String, Instant)>,
}

/// The IdP id of `name` in a list of (scenario name, IdP id).
fn id_of<'a>(named: &'a [(String, String)], name: &str) -> Option<&'a str> {
    named
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, id)| id.as_str())
}

impl Directory {
    pub(crate) fn new(client: reqwest::Client, idp: Endpoint, apps: Vec<String>) -> Directory {
        Directory {
            client,
            idp,
            apps,
            tag: None,
            prefix_groups: false,
            users: Vec::new(),
            groups: Vec::new(),
            contracts: Vec::new(),
        }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        idp_call(
            &self.client,
            &self.idp.url,
            &self.idp.token,
            method,
            path,
            body,
        )
        .await
    }

    pub(crate) fn user(&self, name: &str) -> Result<&str, String> {
        id_of(&self.users, name).ok_or_else(|| format!("{name} was not hired"))
    }

    pub(crate) fn group(&self, name: &str) -> Result<&str, String> {
        id_of(&self.groups, name).ok_or_else(|| format!("no group {name}"))
    }

    /// The login (and SCIM userName) of the scenario's `name`.
    pub(crate) fn login(&self, name: &str) -> String {
        match &self.tag {
            Some(tag) => format!("{name}.{tag}@scimlab.test"),
            None => format!("{name}@scimlab.test"),
        }
    }

    /// The IdP's (and the targets') name of the scenario's group `name`.
    pub(crate) fn group_name(&self, name: &str) -> String {
        match (&self.tag, self.prefix_groups) {
            (Some(tag), true) => format!("{tag}-{name}"),
            _ => name.to_owned(),
        }
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

    /// Creates a group (on remote mocks, reuses one of that name: policies match by name),
    /// assigns it to every app and pushes it to each.
    pub(crate) async fn create_group(&mut self, name: &str) -> Result<(), String> {
        let reuse = self.tag.is_some() && !self.prefix_groups;
        let shown = self.group_name(name);
        let idp = &self.idp;
        let id =
            crate::targets::group_named(&self.client, &idp.url, &idp.token, &shown, reuse).await?;
        for app in &self.apps {
            crate::targets::assign_and_push(&self.client, &idp.url, &idp.token, app, &id).await?;
        }
        self.groups.push((name.to_owned(), id));
        Ok(())
    }

    async fn hire(&mut self, name: &str, h: &model::Hire) -> Result<(), String> {
        let login = self.login(name);
        let mut profile = json!({"login": login, "email": login,
                                 "firstName": name, "lastName": "Scenario"});
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
                // With a password the user is ACTIVE (has signed in), so suspend applies.
                Some(json!({"profile": profile, "groupIds": group_ids,
                            "credentials": {"password": {"value": "Scenario-pass-1"}}})),
            )
            .await?;
        let id = u["id"]
            .as_str()
            .ok_or("the IdP gave the user no id")?
            .to_owned();
        self.users.push((name.to_owned(), id));
        if let Some(after) = h.expires.as_deref().and_then(model::duration) {
            self.contracts
                .push((name.to_owned(), Instant::now() + after));
        }
        Ok(())
    }

    /// Deactivates the users whose contract has ended, as HR's automation would (Okta has no
    /// expiry of its own); true when one was.
    pub(crate) async fn expire_contracts(&mut self) -> Result<bool, String> {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.contracts)
            .into_iter()
            .partition(|(_, at)| *at <= now);
        self.contracts = later;
        let mut expired = false;
        for (user, _) in due {
            let id = self.user(&user)?.to_owned();
            let path = format!("/api/v1/users/{id}");
            let status = match self.call(Method::GET, &path, None).await {
                Ok(u) => u["status"].as_str().unwrap_or_default().to_owned(),
                // Deleted before the contract ended: nothing to expire.
                Err(_) => continue,
            };
            if status != "DEPROVISIONED" {
                self.lifecycle(&user, "deactivate").await?;
                expired = true;
            }
        }
        Ok(expired)
    }

    /// Runs a step of the IdP's vocabulary; `None` for a step about the targets.
    pub(crate) async fn step(&mut self, step: &Step) -> Option<Result<String, String>> {
        Some(match step {
            Step::Hire(h) => {
                let names = h.names();
                let mut outcome = Ok(if names.len() > 1 {
                    format!("{} hired", names.len())
                } else {
                    String::new()
                });
                for name in &names {
                    if let Err(why) = self.hire(name, h).await {
                        outcome = Err(why);
                        break;
                    }
                }
                outcome
            }
            Step::Update(u) => match self.user(&u.user) {
                Ok(id) => {
                    let path = format!("/api/v1/users/{id}");
                    let body = json!({"profile": u.profile});
                    self.call(Method::POST, &path, Some(body))
                        .await
                        .map(|_| String::new())
                }
                Err(why) => Err(why),
            },
            Step::Join(m) => self.membership(&m.user, &m.group, true).await,
            Step::Leave(m) => self.membership(&m.user, &m.group, false).await,
            Step::Move(m) => match self.membership(&m.user, &m.to, true).await {
                Ok(_) => self.membership(&m.user, &m.from, false).await,
                Err(why) => Err(why),
            },
            Step::Reorg(r) => self.reorg(&r.from, &r.to).await,
            Step::Rename(r) => self.rename(&r.group, &r.to).await,
            Step::Suspend(u) => self.lifecycle(&u.user, "suspend").await,
            Step::Unsuspend(u) => self.lifecycle(&u.user, "unsuspend").await,
            Step::Terminate(u) => self.lifecycle(&u.user, "deactivate").await,
            Step::Rehire(u) => self.lifecycle(&u.user, "activate").await,
            Step::Delete(u) => self.delete(&u.user).await,
            Step::Wait(w) => {
                tokio::time::sleep(model::duration(w).unwrap_or_default()).await;
                Ok(String::new())
            }
            Step::Token(_)
            | Step::Quirks(_)
            | Step::Down(_)
            | Step::Up(_)
            | Step::Restart(_)
            | Step::Expect(_) => return None,
        })
    }

    /// Moves every member of `from` that the scenario hired into `to`.
    async fn reorg(&self, from: &str, to: &str) -> Result<String, String> {
        let from_id = self.group(from)?.to_owned();
        let members = self
            .call(
                Method::GET,
                &format!("/api/v1/groups/{from_id}/users"),
                None,
            )
            .await?;
        let names: Vec<String> = members
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u["id"].as_str())
            .filter_map(|id| self.users.iter().find(|(_, i)| i == id))
            .map(|(n, _)| n.clone())
            .collect();
        for name in &names {
            self.membership(name, to, true).await?;
            self.membership(name, from, false).await?;
        }
        Ok(format!("{} moved", names.len()))
    }

    async fn rename(&mut self, group: &str, to: &str) -> Result<String, String> {
        let id = self.group(group)?.to_owned();
        let name = self.group_name(to);
        self.call(
            Method::PUT,
            &format!("/api/v1/groups/{id}"),
            Some(json!({"profile": {"name": name}})),
        )
        .await?;
        if let Some(entry) = self.groups.iter_mut().find(|(n, _)| n == group) {
            entry.0 = to.to_owned();
        }
        Ok(String::new())
    }

    async fn delete(&self, user: &str) -> Result<String, String> {
        let id = self.user(user)?.to_owned();
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

    /// Changes the IdP has accepted and not yet delivered to any app.
    pub(crate) async fn pending(&self) -> Result<usize, String> {
        Ok(self.undelivered().await?.len())
    }

    /// Each change the IdP has accepted and not yet delivered: what it is, whether it is
    /// parked (given up on until someone retries it), and the target's last answer to it.
    pub(crate) async fn undelivered(&self) -> Result<Vec<Undelivered>, String> {
        let mut out = Vec::new();
        for app in &self.apps {
            let outbox = self
                .call(Method::GET, &format!("/api/v1/apps/{app}/outbox"), None)
                .await?;
            let entries = outbox.as_array().cloned().unwrap_or_default();
            let names = |e: &Value| -> Vec<String> {
                ["subjects", "sharedSubjects"]
                    .iter()
                    .flat_map(|k| e[*k].as_array().cloned().unwrap_or_default())
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            };
            // A parked entry holds back every later entry about the same user or group.
            let held: BTreeSet<String> = entries
                .iter()
                .filter(|e| e["status"] == "PARKED")
                .flat_map(names)
                .collect();
            for e in &entries {
                let what = e["type"].as_str().unwrap_or("change");
                let status = e["status"].as_str().unwrap_or("PENDING");
                let text = match e["lastError"].as_str() {
                    Some(err) => format!("{what} {status}: {err}"),
                    None => format!("{what} {status}"),
                };
                out.push(Undelivered {
                    text,
                    parked: status == "PARKED" || names(e).iter().any(|n| held.contains(n)),
                });
            }
        }
        Ok(out)
    }

    /// Why the IdP has not finished: how many changes wait, and why, each reason once.
    pub(crate) fn waiting(undelivered: &[Undelivered]) -> String {
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for u in undelivered {
            *reasons.entry(u.text.as_str()).or_default() += 1;
        }
        let shown: Vec<String> = reasons
            .iter()
            .take(3)
            .map(|(text, n)| format!("{n} x {text}"))
            .collect();
        format!(
            "{} changes still in the IdP's outboxes ({}{})",
            undelivered.len(),
            shown.join("; "),
            if reasons.len() > 3 { "; ..." } else { "" }
        )
    }

    /// Waits (at most `within`) until the IdP has delivered everything it accepted.
    pub(crate) async fn delivered(&self, within: Duration) -> Result<(), String> {
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
}
