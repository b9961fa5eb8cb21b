//! The permission oracle: from the IdP's state (read through its Okta API) and the targets'
//! policies, what every user must hold on each target; compared in full with what each target
//! shows. The oracle shares no code with the engine or the connectors it judges: only the
//! policy files and the targets' fixed configuration (role definitions, project trees).

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};

use super::model::TargetName;

/// Okta statuses in which a user assigned to an app is provisioned there (docs/idp.md).
const PROVISIONED: [&str; 5] = [
    "PROVISIONED",
    "ACTIVE",
    "RECOVERY",
    "PASSWORD_EXPIRED",
    "LOCKED_OUT",
];

/// A user's account on a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Account {
    Absent,
    /// Readable but deactivated (Space archives; TeamCity, which has no flag, keeps the user).
    Inactive,
    Active,
}

/// What a user holds on one target: the account and every grant, as `PROJECT/role` (Space) or
/// `Project/permission` and `global/permission` (TeamCity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub account: Account,
    pub items: BTreeSet<String>,
}

impl Holding {
    fn none(account: Account) -> Holding {
        Holding {
            account,
            items: BTreeSet::new(),
        }
    }
}

/// Every (target, user) the oracle knows about.
pub type View = BTreeMap<(TargetName, String), Holding>;

/// The IdP, as the oracle reads it.
#[derive(Debug, Clone, Default)]
pub struct IdpState {
    /// User name -> status; deleted users are absent.
    pub status: BTreeMap<String, String>,
    /// Group id -> (name, member names).
    pub groups: BTreeMap<String, (String, BTreeSet<String>)>,
    /// Per target: users assigned to its app, and the groups pushed to it.
    pub assigned: BTreeMap<TargetName, BTreeSet<String>>,
    pub pushed: BTreeMap<TargetName, BTreeSet<String>>,
}

/// What the oracle needs to know of the targets' own configuration, read from their APIs.
#[derive(Debug, Clone, Default)]
pub struct TargetConfig {
    /// Space project keys that are not private (their `organization-member` role is everyone's).
    pub space_public: BTreeSet<String>,
    /// TeamCity role id -> permissions, included roles expanded.
    pub teamcity_roles: BTreeMap<String, BTreeSet<String>>,
    /// TeamCity project id -> parent project id.
    pub teamcity_parents: BTreeMap<String, Option<String>>,
}

/// One difference between the oracle and a target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub target: &'static str,
    pub user: String,
    /// `missing`, `excess` or `account`.
    pub kind: &'static str,
    /// The grant (`BACKEND/member`), or for `account` what was seen against what is due.
    pub what: String,
    /// The route the target says granted an excess item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The step (1-based) after which the item should have changed; `None` if the policy never
    /// granted it (or it was due from the start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {} {}",
            self.target, self.user, self.kind, self.what
        )?;
        if let Some(r) = &self.route {
            write!(f, " (via {r})")?;
        }
        match (self.kind, self.step) {
            ("excess", Some(s)) => write!(f, ", should have gone at step {s}"),
            ("excess", None) => write!(f, ", never granted by the policy"),
            (_, Some(0) | None) => write!(f, ", due from the start"),
            (_, Some(s)) => write!(f, ", due since step {s}"),
        }
    }
}

pub fn target_label(t: TargetName) -> &'static str {
    t.as_str()
}

/// The oracle for one run: the policies, the targets' configuration, and which accounts the
/// IdP has provisioned so far (a deprovisioned account stays readable, a never-provisioned one
/// does not exist).
#[derive(Debug)]
pub struct Oracle {
    space: mock_space::Policy,
    teamcity: mock_teamcity::Policy,
    config: TargetConfig,
    /// Entra sends the IdP group id as `externalId` and deletes users in the target.
    entra: bool,
    provisioned_once: BTreeSet<(TargetName, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    #[error("policy rule {0} of {1} matches a group by connector id, which the IdP cannot know: the oracle cannot judge it")]
    UnknowableRule(usize, &'static str),
}

impl Oracle {
    pub fn new(
        space: mock_space::Policy,
        teamcity: mock_teamcity::Policy,
        config: TargetConfig,
        entra: bool,
    ) -> Result<Oracle, OracleError> {
        if let Some(i) = space.rules.iter().position(|r| r.group.id.is_some()) {
            return Err(OracleError::UnknowableRule(i + 1, "the Space policy"));
        }
        if let Some(i) = teamcity.rules.iter().position(|r| r.group.id.is_some()) {
            return Err(OracleError::UnknowableRule(i + 1, "the TeamCity policy"));
        }
        Ok(Oracle {
            space,
            teamcity,
            config,
            entra,
            provisioned_once: BTreeSet::new(),
        })
    }

    /// Records accounts known to have been provisioned, for a caller that reads the IdP only
    /// at the end (a deprovisioned account stays readable, a never-provisioned one does not).
    pub fn provisioned(&mut self, accounts: impl IntoIterator<Item = (TargetName, String)>) {
        self.provisioned_once.extend(accounts);
    }

    /// What every user the IdP has (had) must hold on each target now.
    pub fn expected(&mut self, idp: &IdpState, users: &[String]) -> View {
        let mut out = View::new();
        for target in [TargetName::Space, TargetName::Teamcity] {
            let assigned = idp.assigned.get(&target);
            let pushed = idp.pushed.get(&target);
            for user in users {
                let status = idp.status.get(user);
                let provisioned = status.is_some_and(|s| PROVISIONED.contains(&s.as_str()))
                    && assigned.is_some_and(|a| a.contains(user));
                let key = (target, user.clone());
                let holding = if provisioned {
                    self.provisioned_once.insert(key.clone());
                    let groups: Vec<(&String, &String)> = idp
                        .groups
                        .iter()
                        .filter(|(id, (_, members))| {
                            members.contains(user) && pushed.is_some_and(|p| p.contains(*id))
                        })
                        .map(|(id, (name, _))| (id, name))
                        .collect();
                    Holding {
                        account: Account::Active,
                        items: self.grants(target, &groups),
                    }
                } else if !self.provisioned_once.contains(&key) || (status.is_none() && self.entra)
                {
                    Holding::none(Account::Absent)
                } else {
                    Holding::none(Account::Inactive)
                };
                out.insert(key, holding);
            }
        }
        out
    }

    /// The items an active member of `groups` (id, name) holds on `target`. The rules are
    /// matched here, by the oracle's own reading, not by the connectors' `grants_for`: a bug
    /// there must not hide here.
    fn grants(&self, target: TargetName, groups: &[(&String, &String)]) -> BTreeSet<String> {
        match target {
            TargetName::Space => {
                let mut items: BTreeSet<String> = groups
                    .iter()
                    .flat_map(|(id, name)| self.matching(&self.space.rules, id, name))
                    .map(|g| format!("{}/{}", g.project, g.role))
                    .collect();
                items.extend(
                    self.config
                        .space_public
                        .iter()
                        .map(|k| format!("{k}/organization-member")),
                );
                items
            }
            TargetName::Teamcity => {
                let held: Vec<(String, String)> = groups
                    .iter()
                    .flat_map(|(id, name)| self.matching(&self.teamcity.rules, id, name))
                    .map(|g| (g.role.clone(), g.scope.clone()))
                    .collect();
                self.teamcity_items(&held)
            }
        }
    }

    /// The grants of every rule that names the IdP group `id` called `name` as the target
    /// sees it: by its name, or (Entra only, which sends the IdP's group id as `externalId`)
    /// by that id. Rules by connector id were refused in `new`.
    fn matching<'a, G>(
        &self,
        rules: &'a [scim::connector::Rule<G>],
        id: &str,
        name: &str,
    ) -> Vec<&'a G> {
        rules
            .iter()
            .filter(|r| {
                r.group.display_name.as_deref() == Some(name)
                    || (self.entra && r.group.external_id.as_deref() == Some(id))
            })
            .flat_map(|r| r.grants.iter())
            .collect()
    }

    /// TeamCity's effective permissions of roles held at scopes: global ones everywhere, a
    /// project's on it and every subproject.
    fn teamcity_items(&self, held: &[(String, String)]) -> BTreeSet<String> {
        let perms = |role: &str| {
            self.config
                .teamcity_roles
                .get(role)
                .cloned()
                .unwrap_or_default()
        };
        let global: BTreeSet<String> = held
            .iter()
            .filter(|(_, s)| s == "g")
            .flat_map(|(r, _)| perms(r))
            .collect();
        let mut items: BTreeSet<String> = global.iter().map(|p| format!("global/{p}")).collect();
        for project in self.config.teamcity_parents.keys() {
            let lineage = self.lineage(project);
            let mut here = global.clone();
            for (role, scope) in held {
                if scope
                    .strip_prefix("p:")
                    .is_some_and(|p| lineage.iter().any(|l| l == p))
                {
                    here.extend(perms(role));
                }
            }
            items.extend(here.iter().map(|p| format!("{project}/{p}")));
        }
        items
    }

    /// The holders among `held` (holder, role, scope) whose role grants a TeamCity item
    /// (`Project/permission` or `global/permission`).
    pub fn teamcity_routes(&self, item: &str, held: &[(String, &str, &str)]) -> Vec<String> {
        let Some((project, permission)) = item.split_once('/') else {
            return Vec::new();
        };
        let lineage = self.lineage(project);
        held.iter()
            .filter(|(_, role, scope)| {
                let reaches = *scope == "g"
                    || (project != "global"
                        && scope
                            .strip_prefix("p:")
                            .is_some_and(|p| lineage.iter().any(|l| l == p)));
                reaches
                    && self
                        .config
                        .teamcity_roles
                        .get(*role)
                        .is_some_and(|perms| perms.contains(permission))
            })
            .map(|(holder, role, scope)| format!("{holder}: {role} at {scope}"))
            .collect()
    }

    fn lineage(&self, project: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = Some(project.to_owned());
        while let Some(p) = next {
            if out.contains(&p) {
                break;
            }
            next = self.config.teamcity_parents.get(&p).cloned().flatten();
            out.push(p);
        }
        out
    }
}

/// Whether the account seen matches the one due. TeamCity has no disabled flag: any present
/// user counts as both active and inactive there, its grants tell them apart.
fn same_account(target: TargetName, due: Account, seen: Account) -> bool {
    match target {
        TargetName::Space => due == seen,
        TargetName::Teamcity => (due == Account::Absent) == (seen == Account::Absent),
    }
}

/// What a target shows, with the route of each item where the target names one.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub view: View,
    pub routes: BTreeMap<(TargetName, String, String), String>,
}

impl Seen {
    /// Adds what a target's permission view (`None`: no such user) shows of a user.
    pub fn add(&mut self, target: TargetName, user: &str, view: Option<&Value>) {
        let holding = match view {
            None => Holding::none(Account::Absent),
            Some(v) if target == TargetName::Space => {
                let (holding, routes) = space_holding(v);
                for (item, route) in routes {
                    self.routes.insert((target, user.to_owned(), item), route);
                }
                holding
            }
            Some(v) => teamcity_holding(v),
        };
        self.view.insert((target, user.to_owned()), holding);
    }
}

/// Every difference between the oracle's latest view and what the targets show. `history`
/// holds the oracle's view after each step (index 0: after set-up), so each finding names the
/// step since which it is due.
pub fn compare(history: &[View], seen: &Seen) -> Vec<Finding> {
    let Some(due) = history.last() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ((target, user), want) in due {
        let got = seen
            .view
            .get(&(*target, user.clone()))
            .cloned()
            .unwrap_or_else(|| Holding::none(Account::Absent));
        let finding = |kind: &'static str, what: String, route: Option<String>, step| Finding {
            target: target_label(*target),
            user: user.clone(),
            kind,
            what,
            route,
            step,
        };
        if !same_account(*target, want.account, got.account) {
            let step = since(history, *target, user, |h| h.account == want.account);
            out.push(finding(
                "account",
                format!("{:?}, due {:?}", got.account, want.account).to_lowercase(),
                None,
                step,
            ));
        }
        for item in want.items.difference(&got.items) {
            let step = since(history, *target, user, |h| h.items.contains(item));
            out.push(finding("missing", item.clone(), None, step));
        }
        for item in got.items.difference(&want.items) {
            let route = seen
                .routes
                .get(&(*target, user.clone(), item.clone()))
                .cloned();
            let step = since(history, *target, user, |h| !h.items.contains(item));
            let ever = history.iter().any(|v| {
                v.get(&(*target, user.clone()))
                    .is_some_and(|h| h.items.contains(item))
            });
            out.push(finding(
                "excess",
                item.clone(),
                route,
                if ever { step } else { None },
            ));
        }
    }
    out
}

/// The step after which `holds` became (and stayed) true for the user: the last change.
fn since(
    history: &[View],
    target: TargetName,
    user: &str,
    holds: impl Fn(&Holding) -> bool,
) -> Option<usize> {
    let key = (target, user.to_owned());
    let at = |i: usize| history[i].get(&key).is_some_and(&holds);
    (1..history.len())
        .rev()
        .find(|&i| at(i) && !at(i - 1))
        .or_else(|| at(0).then_some(0))
}

/// Reads the IdP's state for the oracle: every named user, every group with its members, and
/// each app's assignments and pushed groups.
pub async fn read_idp(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    users: &[(String, String)],
    apps: &[(TargetName, String)],
) -> Result<IdpState, String> {
    let get = |path: String| async move { pages(client, url, token, &path).await };
    let mut state = IdpState::default();
    let name_of: BTreeMap<&str, &str> = users
        .iter()
        .map(|(n, id)| (id.as_str(), n.as_str()))
        .collect();
    for (name, id) in users {
        let path = format!("/api/v1/users/{id}");
        if let Some(u) = crate::targets::idp_find(client, url, token, &path).await? {
            let status = u["status"].as_str().unwrap_or_default().to_owned();
            state.status.insert(name.clone(), status);
        }
    }
    for g in get("/api/v1/groups".into()).await? {
        let Some(id) = g["id"].as_str() else { continue };
        let members = get(format!("/api/v1/groups/{id}/users"))
            .await?
            .iter()
            .filter_map(|u| u["id"].as_str().and_then(|i| name_of.get(i)))
            .map(|n| (*n).to_owned())
            .collect();
        let name = g["profile"]["name"].as_str().unwrap_or_default().to_owned();
        state.groups.insert(id.to_owned(), (name, members));
    }
    for (target, app) in apps {
        let assigned = get(format!("/api/v1/apps/{app}/users"))
            .await?
            .iter()
            .filter_map(|u| u["id"].as_str().and_then(|i| name_of.get(i)))
            .map(|n| (*n).to_owned())
            .collect();
        let pushed = get(format!("/api/v1/apps/{app}/group-push/mappings"))
            .await?
            .iter()
            .filter(|m| m["status"] == "ACTIVE")
            .filter_map(|m| m["sourceGroupId"].as_str().map(str::to_owned))
            .collect();
        state.assigned.insert(*target, assigned);
        state.pushed.insert(*target, pushed);
    }
    Ok(state)
}

/// Every item of an Okta list, following `Link: <...>; rel="next"`.
pub(crate) async fn pages(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    path: &str,
) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    let mut next = Some(format!("{url}{path}"));
    while let Some(at) = next.take() {
        let resp = client
            .request(Method::GET, &at)
            .header("authorization", format!("SSWS {token}"))
            .send()
            .await
            .map_err(|e| format!("GET {at}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {at}: the IdP answered {}", resp.status()));
        }
        next = resp
            .headers()
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|l| l.contains("rel=\"next\""))
            .and_then(|l| l.split(['<', '>']).nth(1))
            .map(str::to_owned);
        let page: Value = resp.json().await.map_err(|e| format!("GET {at}: {e}"))?;
        out.extend(page.as_array().cloned().unwrap_or_default());
    }
    Ok(out)
}

/// Space's answer from `/_sim/permissions/{profile}` as items and routes.
pub fn space_holding(seen: &Value) -> (Holding, BTreeMap<String, String>) {
    let mut items = BTreeSet::new();
    let mut routes = BTreeMap::new();
    for (key, access) in seen["projects"].as_object().into_iter().flatten() {
        for (role, via) in access["roles"].as_object().into_iter().flatten() {
            let item = format!("{key}/{role}");
            let via: Vec<&str> = via
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            routes.insert(item.clone(), via.join(", "));
            items.insert(item);
        }
    }
    let account = if seen["active"] == json!(true) {
        Account::Active
    } else {
        Account::Inactive
    };
    (Holding { account, items }, routes)
}

/// TeamCity's answer from `/_sim/permissions/{user}` as items (its routes are read apart).
pub fn teamcity_holding(seen: &Value) -> Holding {
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()
    };
    let mut items: BTreeSet<String> = list(&seen["global"])
        .iter()
        .map(|p| format!("global/{p}"))
        .collect();
    for (project, perms) in seen["projects"].as_object().into_iter().flatten() {
        items.extend(list(perms).iter().map(|p| format!("{project}/{p}")));
    }
    // A present user with nothing: the leaver as TeamCity shows it.
    let account = if items.is_empty() {
        Account::Inactive
    } else {
        Account::Active
    };
    Holding { account, items }
}

/// TeamCity's roles (`/app/rest/roles`) as role -> permissions, included roles expanded.
pub fn teamcity_roles(answer: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let ids = |v: &Value, list: &str, each: &str| -> Vec<String> {
        v[list][each]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["id"].as_str().map(str::to_owned))
            .collect()
    };
    let roles: BTreeMap<String, (Vec<String>, Vec<String>)> = answer["role"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let id = r["id"].as_str()?.to_owned();
            Some((
                id,
                (
                    ids(r, "permissions", "permission"),
                    ids(r, "included", "role"),
                ),
            ))
        })
        .collect();
    roles
        .keys()
        .map(|id| {
            let mut perms = BTreeSet::new();
            let mut seen = BTreeSet::new();
            let mut todo = vec![id.clone()];
            while let Some(r) = todo.pop() {
                if let Some((p, inc)) = roles.get(&r).filter(|_| seen.insert(r.clone())) {
                    perms.extend(p.iter().cloned());
                    todo.extend(inc.iter().cloned());
                }
            }
            (id.clone(), perms)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oracle(entra: bool) -> Oracle {
        let space = mock_space::Policy::parse(
            "[[rule]]\ngroup = { displayName = \"Eng\" }\ngrants = [{ project = \"BACKEND\", role = \"member\" }]",
        )
        .unwrap();
        let teamcity = mock_teamcity::Policy::parse(
            "[[rule]]\ngroup = { displayName = \"Eng\" }\ngrants = [{ role = \"PROJECT_DEVELOPER\", scope = \"p:Backend\" }]",
        )
        .unwrap();
        let config = TargetConfig {
            space_public: BTreeSet::from(["PUB".to_owned()]),
            teamcity_roles: BTreeMap::from([(
                "PROJECT_DEVELOPER".into(),
                BTreeSet::from(["run_build".into()]),
            )]),
            teamcity_parents: BTreeMap::from([
                ("_Root".into(), None),
                ("Backend".into(), Some("_Root".into())),
                ("Backend_Api".into(), Some("Backend".into())),
                ("Web".into(), Some("_Root".into())),
            ]),
        };
        Oracle::new(space, teamcity, config, entra).unwrap()
    }

    fn idp(status: &str, in_group: bool) -> IdpState {
        let members: BTreeSet<String> = if in_group {
            BTreeSet::from(["a".to_owned()])
        } else {
            BTreeSet::new()
        };
        IdpState {
            status: BTreeMap::from([("a".into(), status.into())]),
            groups: BTreeMap::from([("g1".into(), ("Eng".into(), members.clone()))]),
            assigned: [TargetName::Space, TargetName::Teamcity]
                .into_iter()
                .map(|t| (t, members.clone()))
                .collect(),
            pushed: [TargetName::Space, TargetName::Teamcity]
                .into_iter()
                .map(|t| (t, BTreeSet::from(["g1".to_owned()])))
                .collect(),
        }
    }

    #[test]
    fn the_lifecycle_of_one_user() {
        let mut o = oracle(false);
        let users = ["a".to_owned()];
        let never = o.expected(&idp("ACTIVE", false), &users);
        assert_eq!(
            never[&(TargetName::Space, "a".into())],
            Holding::none(Account::Absent)
        );
        let joined = o.expected(&idp("ACTIVE", true), &users);
        let space = &joined[&(TargetName::Space, "a".into())];
        assert_eq!(space.account, Account::Active);
        assert_eq!(
            space.items,
            BTreeSet::from(["BACKEND/member".into(), "PUB/organization-member".into()])
        );
        let tc = &joined[&(TargetName::Teamcity, "a".into())];
        assert_eq!(
            tc.items,
            BTreeSet::from(["Backend/run_build".into(), "Backend_Api/run_build".into()]),
            "a project role reaches subprojects and nothing else"
        );
        let left = o.expected(&idp("DEPROVISIONED", true), &users);
        assert_eq!(
            left[&(TargetName::Space, "a".into())],
            Holding::none(Account::Inactive)
        );
        let mut gone = idp("ACTIVE", true);
        gone.status.clear();
        assert_eq!(
            o.expected(&gone, &users)[&(TargetName::Space, "a".into())].account,
            Account::Inactive,
            "Okta never deletes in the target"
        );
        let mut entra = oracle(true);
        entra.expected(&idp("ACTIVE", true), &users);
        assert_eq!(
            entra.expected(&gone, &users)[&(TargetName::Space, "a".into())].account,
            Account::Absent,
            "Entra deletes"
        );
    }

    #[test]
    fn findings_name_the_route_and_the_step() {
        let mut o = oracle(false);
        let users = ["a".to_owned()];
        let history = vec![
            o.expected(&idp("ACTIVE", true), &users),
            o.expected(&idp("ACTIVE", true), &users),
            o.expected(&idp("DEPROVISIONED", true), &users),
        ];
        let mut seen = Seen {
            view: history[1].clone(),
            ..Seen::default()
        };
        seen.view
            .get_mut(&(TargetName::Space, "a".into()))
            .unwrap()
            .items
            .insert("INFRA/admin".into());
        seen.routes.insert(
            (TargetName::Space, "a".into(), "BACKEND/member".into()),
            "team:t1".into(),
        );
        let f = compare(&history, &seen);
        let show: Vec<String> = f.iter().map(ToString::to_string).collect();
        assert!(
            show.contains(&"space: a: account active, due inactive, due since step 2".to_owned()),
            "{show:#?}"
        );
        assert!(
            show.contains(
                &"space: a: excess BACKEND/member (via team:t1), should have gone at step 2"
                    .to_owned()
            ),
            "{show:#?}"
        );
        assert!(
            show.contains(&"space: a: excess INFRA/admin, never granted by the policy".to_owned()),
            "{show:#?}"
        );
        assert!(
            !show.iter().any(|s| s.starts_with("teamcity: a: account")),
            "TeamCity has no flag: a present leaver is judged by its grants: {show:#?}"
        );
        assert_eq!(
            compare(
                &history[..2],
                &Seen {
                    view: history[1].clone(),
                    ..Seen::default()
                }
            ),
            vec![]
        );
    }

    #[test]
    fn teamcity_roles_expand_included_roles() {
        let roles = teamcity_roles(&json!({"role": [
            {"id": "A", "permissions": {"permission": [{"id": "p1"}]}, "included": {"role": [{"id": "B"}]}},
            {"id": "B", "permissions": {"permission": [{"id": "p2"}]}, "included": {"role": [{"id": "A"}]}},
        ]}));
        assert_eq!(roles["A"], BTreeSet::from(["p1".into(), "p2".into()]));
        assert_eq!(roles["B"], roles["A"], "cycles end");
    }

    #[test]
    fn rules_by_connector_id_cannot_be_judged() {
        let space = mock_space::Policy::parse(
            "[[rule]]\ngroup = { id = \"x\" }\ngrants = [{ project = \"BACKEND\", role = \"member\" }]",
        )
        .unwrap();
        let e = Oracle::new(
            space,
            mock_teamcity::Policy::default(),
            TargetConfig::default(),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("rule 1 of the Space policy"), "{e}");
    }

    proptest::proptest! {
        /// The oracle's own rule matching and the connectors' `grants_for` are two readings
        /// of one policy: on any policy and any pushed group they must agree.
        #[test]
        fn the_oracles_reading_of_a_policy_agrees_with_the_connectors(
            rules in proptest::collection::vec(
                (proptest::bool::ANY, 0..3usize, 0..2usize, 0..2usize), 0..6),
            id in 0..3usize,
            name in 0..4usize,
            entra in proptest::bool::ANY,
        ) {
            let (names, ids) = (["A", "B", "C", "D"], ["g0", "g1", "g2"]);
            let mut text = String::new();
            for (by_name, key, project, role) in &rules {
                let group = if *by_name {
                    format!("displayName = \"{}\"", names[*key])
                } else {
                    format!("externalId = \"{}\"", ids[*key])
                };
                text.push_str(&format!(
                    "[[rule]]\ngroup = {{ {group} }}\ngrants = [{{ project = \"{}\", role = \"{}\" }}]\n",
                    ["BACKEND", "WEB"][*project],
                    ["member", "admin"][*role]
                ));
            }
            let space = mock_space::Policy::parse(&text).unwrap();
            let oracle = Oracle::new(
                space.clone(),
                mock_teamcity::Policy::default(),
                TargetConfig::default(),
                entra,
            )
            .unwrap();
            let (id, name) = (ids[id].to_owned(), names[name].to_owned());
            let ours: BTreeSet<String> = oracle
                .grants(TargetName::Space, &[(&id, &name)]);
            // What the connector gets: the name always, the IdP's id as externalId from Entra.
            let mut attrs = serde_json::Map::new();
            attrs.insert("displayName".into(), json!(name));
            if entra {
                attrs.insert("externalId".into(), json!(id));
            }
            let theirs: BTreeSet<String> = space
                .grants_for("connector-id", &attrs)
                .iter()
                .map(|g| format!("{}/{}", g.project, g.role))
                .collect();
            proptest::prop_assert_eq!(ours, theirs);
        }
    }
}
