//! The permission oracle: from the IdP's state (read through its Okta API) and the targets'
//! policies, what every user must hold on each target; compared in full with what each target
//! shows. The oracle shares no code with the engine or the connectors it judges: only the
//! policy files and the targets' fixed configuration (role definitions, project trees), which
//! each target's own [`Judge`] (in `mock_target`) evaluates.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use super::model::TargetName;
use crate::mock_target::Judge;

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
    pub fn none(account: Account) -> Holding {
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

/// The oracle for one run: each target's judge (its policy and configuration), and which
/// accounts the IdP has provisioned so far (a deprovisioned account stays readable, a
/// never-provisioned one does not exist).
#[derive(Debug)]
pub struct Oracle {
    judges: BTreeMap<TargetName, Box<dyn Judge>>,
    /// The dialect deletes users in the target (Entra) instead of deactivating them.
    deletes_users: bool,
    provisioned_once: BTreeSet<(TargetName, String)>,
}

impl Oracle {
    pub fn new(judges: BTreeMap<TargetName, Box<dyn Judge>>, deletes_users: bool) -> Oracle {
        Oracle {
            judges,
            deletes_users,
            provisioned_once: BTreeSet::new(),
        }
    }

    /// Each target's judge under its policy (TOML), from the target's configuration read
    /// through its API at `end(target)`.
    pub async fn read(
        client: &reqwest::Client,
        end: impl Fn(TargetName) -> crate::scenario::run::Endpoint,
        policies: &crate::targets::PolicyTexts,
        dialect: super::model::Dialect,
    ) -> Result<Oracle, String> {
        let client_speech = mock_idp::dialect::speech(dialect);
        let by_group_id = client_speech.sends_group_external_id();
        let mut judges = BTreeMap::new();
        for t in TargetName::all() {
            let policy = crate::targets::policy_of(policies, t);
            judges.insert(
                t,
                t.mock().judge(client, &end(t), policy, by_group_id).await?,
            );
        }
        Ok(Oracle::new(judges, client_speech.deletes_users()))
    }

    pub fn judge(&self, target: TargetName) -> Option<&dyn Judge> {
        self.judges.get(&target).map(|j| &**j)
    }

    /// Records accounts known to have been provisioned, for a caller that reads the IdP only
    /// at the end (a deprovisioned account stays readable, a never-provisioned one does not).
    pub fn provisioned(&mut self, accounts: impl IntoIterator<Item = (TargetName, String)>) {
        self.provisioned_once.extend(accounts);
    }

    /// What every user the IdP has (had) must hold on each target now.
    pub fn expected(&mut self, idp: &IdpState, users: &[String]) -> View {
        let mut out = View::new();
        for (&target, judge) in &self.judges {
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
                        items: judge.grants(&groups),
                    }
                } else if !self.provisioned_once.contains(&key)
                    || (status.is_none() && self.deletes_users)
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
}

/// Whether the account seen matches the one due. A target without an active flag shows any
/// present user as both active and inactive: its grants tell them apart.
fn same_account(target: TargetName, due: Account, seen: Account) -> bool {
    if target.mock().has_active_flag() {
        due == seen
    } else {
        (due == Account::Absent) == (seen == Account::Absent)
    }
}

/// What a target shows, with the route of each item where the target names one.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub view: View,
    pub routes: BTreeMap<(TargetName, String, String), String>,
}

impl Seen {
    /// Adds what a target's permission view (`None`: no such user) shows of a user, as
    /// `judge` reads it.
    pub fn add(&mut self, target: TargetName, judge: &dyn Judge, user: &str, view: Option<&Value>) {
        let holding = match view {
            None => Holding::none(Account::Absent),
            Some(v) => {
                let (holding, routes) = judge.holding(v);
                for (item, route) in routes {
                    self.routes.insert((target, user.to_owned(), item), route);
                }
                holding
            }
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
            target: target.as_str(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock_target::space::{SpaceJudge, SPACE};
    use crate::mock_target::teamcity::{TeamCityJudge, TEAMCITY};
    use serde_json::json;

    fn oracle(entra: bool) -> Oracle {
        let space = SpaceJudge::new(
            "[[rule]]\ngroup = { displayName = \"Eng\" }\ngrants = [{ project = \"BACKEND\", role = \"member\" }]",
            BTreeSet::from(["PUB".to_owned()]),
            entra,
        )
        .unwrap();
        let teamcity = TeamCityJudge::new(
            "[[rule]]\ngroup = { displayName = \"Eng\" }\ngrants = [{ role = \"PROJECT_DEVELOPER\", scope = \"p:Backend\" }]",
            BTreeMap::from([(
                "PROJECT_DEVELOPER".into(),
                BTreeSet::from(["run_build".into()]),
            )]),
            BTreeMap::from([
                ("_Root".into(), None),
                ("Backend".into(), Some("_Root".into())),
                ("Backend_Api".into(), Some("Backend".into())),
                ("Web".into(), Some("_Root".into())),
            ]),
            entra,
        )
        .unwrap();
        let judges: BTreeMap<TargetName, Box<dyn Judge>> = BTreeMap::from([
            (SPACE, Box::new(space) as Box<dyn Judge>),
            (TEAMCITY, Box::new(teamcity) as Box<dyn Judge>),
        ]);
        Oracle::new(judges, entra)
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
            assigned: [SPACE, TEAMCITY]
                .into_iter()
                .map(|t| (t, members.clone()))
                .collect(),
            pushed: [SPACE, TEAMCITY]
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
        assert_eq!(never[&(SPACE, "a".into())], Holding::none(Account::Absent));
        let joined = o.expected(&idp("ACTIVE", true), &users);
        let space = &joined[&(SPACE, "a".into())];
        assert_eq!(space.account, Account::Active);
        assert_eq!(
            space.items,
            BTreeSet::from(["BACKEND/member".into(), "PUB/organization-member".into()])
        );
        let tc = &joined[&(TEAMCITY, "a".into())];
        assert_eq!(
            tc.items,
            BTreeSet::from(["Backend/run_build".into(), "Backend_Api/run_build".into()]),
            "a project role reaches subprojects and nothing else"
        );
        let left = o.expected(&idp("DEPROVISIONED", true), &users);
        assert_eq!(left[&(SPACE, "a".into())], Holding::none(Account::Inactive));
        let mut gone = idp("ACTIVE", true);
        gone.status.clear();
        assert_eq!(
            o.expected(&gone, &users)[&(SPACE, "a".into())].account,
            Account::Inactive,
            "Okta never deletes in the target"
        );
        let mut entra = oracle(true);
        entra.expected(&idp("ACTIVE", true), &users);
        assert_eq!(
            entra.expected(&gone, &users)[&(SPACE, "a".into())].account,
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
            .get_mut(&(SPACE, "a".into()))
            .unwrap()
            .items
            .insert("INFRA/admin".into());
        seen.routes.insert(
            (SPACE, "a".into(), "BACKEND/member".into()),
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
    fn rules_by_connector_id_cannot_be_judged() {
        let e = SpaceJudge::new(
            "[[rule]]\ngroup = { id = \"x\" }\ngrants = [{ project = \"BACKEND\", role = \"member\" }]",
            BTreeSet::new(),
            false,
        )
        .unwrap_err();
        assert!(e.contains("rule 1 of the Space policy"), "{e}");
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
            let judge = SpaceJudge::new(&text, BTreeSet::new(), entra).unwrap();
            let (id, name) = (ids[id].to_owned(), names[name].to_owned());
            let ours: BTreeSet<String> = judge.grants(&[(&id, &name)]);
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
