//! mock-teamcity behind its SCIM bridge: users without an active flag, roles at scopes held by
//! users and groups, projects in a tree, access tokens.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    field_is, judgeable, matching, native_find, native_get, strings, AuditChange, Expectation,
    Judge, Launch, MockTarget, NativeSmoke, RunningMock, TargetName,
};
use crate::scenario::model::{Access, Tokens};
use crate::scenario::oracle::{Account, Holding};
use crate::scenario::run::Endpoint;

#[derive(Debug)]
pub struct TeamCity;

pub const TEAMCITY: TargetName = TargetName(&TeamCity);

impl MockTarget for TeamCity {
    fn name(&self) -> &'static str {
        "teamcity"
    }

    fn label(&self) -> &'static str {
        "TeamCity"
    }

    fn default_policy(&self) -> &'static str {
        <mock_teamcity::bridge::RoleAt as mockkit::connector::PolicyGrant>::DEFAULT_POLICY
    }

    fn check_policy(&self, policy: &str) -> Result<(), String> {
        mock_teamcity::Policy::parse(policy)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn launch(&self, how: Launch) -> BoxFuture<'_, Result<Box<dyn RunningMock>, String>> {
        Box::pin(async move {
            let policy = mock_teamcity::Policy::parse(&how.policy).map_err(|e| e.to_string())?;
            let launched = mock_teamcity::launch(mock_teamcity::Options {
                target: mock_teamcity::Target::Simulator {
                    port: how.native_port,
                },
                token: how.token,
                policy,
                serving: how.serving,
            })
            .await
            .map_err(|e| e.to_string())?;
            Ok(Box::new(launched) as Box<dyn RunningMock>)
        })
    }

    fn has_active_flag(&self) -> bool {
        false
    }

    fn audit_change(&self, kind: &str) -> Option<AuditChange> {
        Some(match kind {
            "group.created" | "group.renamed" => AuditChange::GroupNamed,
            "user.created" => AuditChange::Created,
            "user.deleted" => AuditChange::Deleted,
            "user.groups.changed" => AuditChange::Groups,
            _ => return None,
        })
    }

    /// With no flag, TeamCity records what it took away: only a leaver who had something
    /// shows there.
    fn leaver_kinds(&self, had_something: bool) -> Option<&'static [&'static str]> {
        had_something.then_some(
            &[
                "user.groups.changed",
                "roles.changed",
                "token.deleted",
                "user.deleted",
            ][..],
        )
    }

    fn token_maker(&self, base: &str, locator: &str) -> (String, &'static str) {
        (format!("{base}/app/rest/users/{locator}/tokens"), "value")
    }

    fn own_user(&self, base: &str, locator: &str) -> String {
        format!("{base}/app/rest/users/{locator}")
    }

    fn expectation(&self, e: &Value) -> Result<Expectation, String> {
        let e = TeamCityExpect::deserialize(e).map_err(|e| e.to_string())?;
        if e.tokens.is_none()
            && e.access.is_none()
            && (e.project.is_none() || (e.may.is_empty() && e.may_not.is_empty()))
        {
            return Err(format!(
                "teamcity expectation for {} needs project with may / may_not, or access",
                e.user
            ));
        }
        Ok(Expectation {
            user: e.user.clone(),
            tokens: e.tokens,
            miss: Box::new(move |seen| miss(&e, seen)),
        })
    }

    /// The default policy lets `Engineering` run builds on Backend and its subprojects, not
    /// edit them; a leaver keeps a readable user with no groups, roles or tokens.
    fn smoke(&self) -> NativeSmoke {
        NativeSmoke {
            user: "ci.carol",
            joined_may: "run builds on Backend_Api",
            joined_query: "",
            joined: |v| {
                let api = v["projects"]["Backend_Api"].to_string();
                if api.contains("run_build") && !api.contains("edit_project") {
                    Ok(())
                } else {
                    Err(format!(
                        "expected run_build without edit_project, got {api}"
                    ))
                }
            },
            left: |v| {
                field_is(v, "/projects", json!({}))?;
                field_is(v, "/global", json!([]))
            },
        }
    }

    fn judge<'a>(
        &'a self,
        client: &'a reqwest::Client,
        end: &'a Endpoint,
        policy: &'a str,
        by_group_id: bool,
    ) -> BoxFuture<'a, Result<Box<dyn Judge>, String>> {
        Box::pin(async move {
            let roles = roles(&native_get(client, end, "/app/rest/roles").await?);
            let parents = native_get(client, end, "/app/rest/projects").await?["project"]
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
            Ok(
                Box::new(TeamCityJudge::new(policy, roles, parents, by_group_id)?)
                    as Box<dyn Judge>,
            )
        })
    }
}

impl RunningMock for mock_teamcity::Launched {
    fn native_url(&self) -> &str {
        &self.teamcity_url
    }

    fn scim_url(&self) -> &str {
        &self.scim_url
    }

    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin((*self).stop())
    }
}

/// In TeamCity's vocabulary: permissions of a user on a project (subprojects inherit).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamCityExpect {
    user: String,
    project: Option<String>,
    #[serde(default)]
    may: Vec<String>,
    #[serde(default)]
    may_not: Vec<String>,
    access: Option<Access>,
    /// Every token the user created on TeamCity (`token` steps) is accepted, or refused.
    tokens: Option<Tokens>,
}

/// Why a TeamCity expectation does not hold on `seen` (`/_sim/permissions/{locator}`).
fn miss(e: &TeamCityExpect, seen: Option<&Value>) -> Option<String> {
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

/// TeamCity's roles (`/app/rest/roles`) as role -> permissions, included roles expanded.
pub fn roles(answer: &Value) -> BTreeMap<String, BTreeSet<String>> {
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

/// The oracle's reading of TeamCity: roles at scopes from the policy, expanded into
/// permissions on every project of the tree they reach.
#[derive(Debug)]
pub struct TeamCityJudge {
    policy: mock_teamcity::Policy,
    /// Role id -> permissions, included roles expanded.
    roles: BTreeMap<String, BTreeSet<String>>,
    /// Project id -> parent project id.
    parents: BTreeMap<String, Option<String>>,
    by_group_id: bool,
}

impl TeamCityJudge {
    pub fn new(
        policy: &str,
        roles: BTreeMap<String, BTreeSet<String>>,
        parents: BTreeMap<String, Option<String>>,
        by_group_id: bool,
    ) -> Result<TeamCityJudge, String> {
        Ok(TeamCityJudge {
            policy: judgeable(TeamCity.label(), policy)?,
            roles,
            parents,
            by_group_id,
        })
    }

    fn perms(&self, role: &str) -> BTreeSet<String> {
        self.roles.get(role).cloned().unwrap_or_default()
    }

    /// Effective permissions of roles held at scopes: global ones everywhere, a project's on
    /// it and every subproject.
    fn items(&self, held: &[(String, String)]) -> BTreeSet<String> {
        let global: BTreeSet<String> = held
            .iter()
            .filter(|(_, s)| s == "g")
            .flat_map(|(r, _)| self.perms(r))
            .collect();
        let mut items: BTreeSet<String> = global.iter().map(|p| format!("global/{p}")).collect();
        for project in self.parents.keys() {
            let lineage = self.lineage(project);
            let mut here = global.clone();
            for (role, scope) in held {
                if scope
                    .strip_prefix("p:")
                    .is_some_and(|p| lineage.iter().any(|l| l == p))
                {
                    here.extend(self.perms(role));
                }
            }
            items.extend(here.iter().map(|p| format!("{project}/{p}")));
        }
        items
    }

    /// The holders among `held` (holder, role, scope) whose role grants an item
    /// (`Project/permission` or `global/permission`).
    fn routes(&self, item: &str, held: &[(String, &str, &str)]) -> Vec<String> {
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
                reaches && self.perms(role).contains(permission)
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
            next = self.parents.get(&p).cloned().flatten();
            out.push(p);
        }
        out
    }
}

impl Judge for TeamCityJudge {
    fn grants(&self, groups: &[(&String, &String)]) -> BTreeSet<String> {
        let held: Vec<(String, String)> = matching(&self.policy.rules, groups, self.by_group_id)
            .into_iter()
            .map(|g| (g.role.clone(), g.scope.clone()))
            .collect();
        self.items(&held)
    }

    /// Items only: the view does not say which role gave a permission (`excess_route` reads it).
    fn holding(&self, seen: &Value) -> (Holding, BTreeMap<String, String>) {
        let mut items: BTreeSet<String> = strings(&seen["global"])
            .iter()
            .map(|p| format!("global/{p}"))
            .collect();
        for (project, perms) in seen["projects"].as_object().into_iter().flatten() {
            items.extend(strings(perms).iter().map(|p| format!("{project}/{p}")));
        }
        // A present user with nothing: the leaver as TeamCity shows it.
        let account = if items.is_empty() {
            Account::Inactive
        } else {
            Account::Active
        };
        (Holding { account, items }, BTreeMap::new())
    }

    /// Which of the user's role assignments (own or through a group) grants `item`.
    fn excess_route<'a>(
        &'a self,
        client: &'a reqwest::Client,
        end: &'a Endpoint,
        locator: &'a str,
        item: &'a str,
    ) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            let get =
                |path: String| async move { native_find(client, end, &path).await.ok().flatten() };
            let user = get(format!("/app/rest/users/{locator}")).await?;
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
            let mut holders = vec![("own role".to_owned(), roles(&user))];
            for g in user["groups"]["group"].as_array().into_iter().flatten() {
                let Some(key) = g["key"].as_str() else {
                    continue;
                };
                let path = format!("/app/rest/userGroups/key:{}", crate::encode(key));
                if let Some(group) = get(path).await {
                    let name = group["name"].as_str().unwrap_or(key).to_owned();
                    holders.push((format!("group {name}"), roles(&group)));
                }
            }
            let held: Vec<(String, &str, &str)> = holders
                .iter()
                .flat_map(|(holder, list)| {
                    list.iter()
                        .map(move |(r, s)| (holder.clone(), r.as_str(), s.as_str()))
                })
                .collect();
            let routes = self.routes(item, &held);
            (!routes.is_empty()).then(|| routes.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expectations_read_permissions() {
        let seen = json!({"global": [], "projects": {"Backend": ["run_build", "view_project"]}});
        let e = json!({"user": "a", "project": "Backend", "may": ["run_build"], "may_not": ["edit_project"]});
        let miss = |e: &Value, seen: Option<&Value>| {
            (TeamCity
                .expectation(e)
                .unwrap_or_else(|why| panic!("{why}"))
                .miss)(seen)
        };
        assert_eq!(miss(&e, Some(&seen)), None);
        let e = json!({"user": "a", "project": "Backend", "may_not": ["run_build"]});
        assert!(miss(&e, Some(&seen)).is_some_and(|m| m.contains("excess [\"run_build\"]")));
        let none = json!({"user": "a", "access": "none"});
        assert!(miss(&none, Some(&seen)).is_some());
        assert_eq!(miss(&none, None), None);
        assert!(TeamCity
            .expectation(&json!({"user": "a", "project": "Backend"}))
            .is_err_and(|e| e.contains("needs project with may")));
    }

    #[test]
    fn roles_expand_included_roles() {
        let roles = roles(&json!({"role": [
            {"id": "A", "permissions": {"permission": [{"id": "p1"}]}, "included": {"role": [{"id": "B"}]}},
            {"id": "B", "permissions": {"permission": [{"id": "p2"}]}, "included": {"role": [{"id": "A"}]}},
        ]}));
        assert_eq!(roles["A"], BTreeSet::from(["p1".into(), "p2".into()]));
        assert_eq!(roles["B"], roles["A"], "cycles end");
    }

    #[test]
    fn a_route_names_the_holder_whose_role_reaches_the_project() {
        let judge = TeamCityJudge::new(
            "",
            BTreeMap::from([("DEV".into(), BTreeSet::from(["run_build".into()]))]),
            BTreeMap::from([
                ("_Root".into(), None),
                ("Backend".into(), Some("_Root".into())),
                ("Web".into(), Some("_Root".into())),
            ]),
            false,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let held = [
            ("group Eng".to_owned(), "DEV", "p:Backend"),
            ("own role".to_owned(), "DEV", "p:Web"),
        ];
        assert_eq!(
            judge.routes("Backend/run_build", &held),
            ["group Eng: DEV at p:Backend"]
        );
    }
}
