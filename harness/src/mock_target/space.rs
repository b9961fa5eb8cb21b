//! mock-space behind its SCIM connector: profiles with an active flag, project roles granted
//! by team membership, permanent tokens.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    field_is, judgeable, matching, native_get, strings, AuditChange, Expectation, Judge, Launch,
    MockTarget, NativeSmoke, RunningMock, TargetName,
};
use crate::scenario::model::{Access, Tokens};
use crate::scenario::oracle::{Account, Holding};
use crate::scenario::run::Endpoint;

#[derive(Debug)]
pub struct Space;

pub const SPACE: TargetName = TargetName(&Space);

impl MockTarget for Space {
    fn name(&self) -> &'static str {
        "space"
    }

    fn label(&self) -> &'static str {
        "Space"
    }

    fn default_policy(&self) -> &'static str {
        <mock_space::policy::RoleGrant as mockkit::connector::PolicyGrant>::DEFAULT_POLICY
    }

    fn check_policy(&self, policy: &str) -> Result<(), String> {
        mock_space::Policy::parse(policy)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn launch(&self, how: Launch) -> BoxFuture<'_, Result<Box<dyn RunningMock>, String>> {
        Box::pin(async move {
            let policy = mock_space::Policy::parse(&how.policy).map_err(|e| e.to_string())?;
            let launched = mock_space::launch(mock_space::Options {
                port: how.native_port,
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
        true
    }

    fn audit_change(&self, kind: &str) -> Option<AuditChange> {
        Some(match kind {
            "team.created" | "team.updated" => AuditChange::GroupNamed,
            "profile.created" => AuditChange::Created,
            "profile.deleted" => AuditChange::Deleted,
            "profile.deactivated" => AuditChange::Active(false),
            "profile.reactivated" => AuditChange::Active(true),
            "membership.created" => AuditChange::Membership(true),
            "membership.deleted" => AuditChange::Membership(false),
            _ => return None,
        })
    }

    /// Space always records the deactivation.
    fn leaver_kinds(&self, _had_something: bool) -> Option<&'static [&'static str]> {
        Some(&["profile.deactivated", "profile.deleted"])
    }

    fn token_maker(&self, base: &str, locator: &str) -> (String, &'static str) {
        (
            format!("{base}/api/http/team-directory/profiles/{locator}/permanent-tokens"),
            "second",
        )
    }

    fn own_user(&self, base: &str, locator: &str) -> String {
        format!("{base}/api/http/team-directory/profiles/{locator}")
    }

    fn expectation(&self, e: &Value) -> Result<Expectation, String> {
        let e = SpaceExpect::deserialize(e).map_err(|e| e.to_string())?;
        if e.tokens.is_none()
            && e.access.is_none()
            && e.active.is_none()
            && (e.project.is_none() || e.roles.is_none())
        {
            return Err(format!(
                "space expectation for {} needs project and roles, access or active",
                e.user
            ));
        }
        Ok(Expectation {
            user: e.user.clone(),
            tokens: e.tokens,
            miss: Box::new(move |seen| miss(&e, seen)),
        })
    }

    /// The default policy gives `Engineering` push, not admin, on BACKEND's repositories;
    /// a leaver stays readable, archived, with no project left.
    fn smoke(&self) -> NativeSmoke {
        NativeSmoke {
            user: "ci.bob",
            joined_may: "push to BACKEND",
            joined_query: "?project=BACKEND&repository=api",
            joined: |v| {
                let perms = v["permissions"].to_string();
                if perms.contains("repo.push") && !perms.contains("repo.admin") {
                    Ok(())
                } else {
                    Err(format!("expected push without admin, got {perms}"))
                }
            },
            left: |v| {
                field_is(v, "/active", json!(false))?;
                field_is(v, "/projects", json!({}))
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
            let projects = native_get(client, end, "/api/http/projects?$top=1000").await?;
            let public = projects["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["private"] == json!(false))
                .filter_map(|p| p["key"].as_str().or_else(|| p["key"]["key"].as_str()))
                .map(str::to_owned)
                .collect();
            Ok(Box::new(SpaceJudge::new(policy, public, by_group_id)?) as Box<dyn Judge>)
        })
    }
}

impl RunningMock for mock_space::Launched {
    fn native_url(&self) -> &str {
        &self.space_url
    }

    fn scim_url(&self) -> &str {
        &self.scim_url
    }

    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin((*self).stop())
    }
}

/// In Space's vocabulary: project roles of a profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpaceExpect {
    user: String,
    /// With `roles`: exactly these roles on this project key.
    project: Option<String>,
    roles: Option<Vec<String>>,
    access: Option<Access>,
    /// The profile is readable and active (`true`) or archived (`false`).
    active: Option<bool>,
    /// Every token the user created on Space (`token` steps) is accepted, or refused.
    tokens: Option<Tokens>,
}

/// Why a Space expectation does not hold on `seen` (`/_sim/permissions/{profile}`).
fn miss(e: &SpaceExpect, seen: Option<&Value>) -> Option<String> {
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

/// The oracle's reading of Space: the policy's project roles, plus `organization-member` on
/// every public project.
#[derive(Debug)]
pub struct SpaceJudge {
    policy: mock_space::Policy,
    /// Project keys that are not private (their `organization-member` role is everyone's).
    public: BTreeSet<String>,
    by_group_id: bool,
}

impl SpaceJudge {
    pub fn new(
        policy: &str,
        public: BTreeSet<String>,
        by_group_id: bool,
    ) -> Result<SpaceJudge, String> {
        Ok(SpaceJudge {
            policy: judgeable(Space.label(), policy)?,
            public,
            by_group_id,
        })
    }
}

impl Judge for SpaceJudge {
    fn grants(&self, groups: &[(&String, &String)]) -> BTreeSet<String> {
        let mut items: BTreeSet<String> = matching(&self.policy.rules, groups, self.by_group_id)
            .into_iter()
            .map(|g| format!("{}/{}", g.project, g.role))
            .collect();
        items.extend(
            self.public
                .iter()
                .map(|k| format!("{k}/organization-member")),
        );
        items
    }

    fn holding(&self, seen: &Value) -> (Holding, BTreeMap<String, String>) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(v: Value) -> SpaceExpect {
        SpaceExpect::deserialize(v).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn expectations_report_missing_and_excess() {
        let seen = json!({"active": true, "projects": {"BACKEND": {"roles": {"member": ["team:t1"], "admin": ["direct"]}}}});
        let e = expect(json!({"user": "a", "project": "BACKEND", "roles": ["member", "viewer"]}));
        assert_eq!(
            miss(&e, Some(&seen)).as_deref(),
            Some("on BACKEND: missing [\"viewer\"], excess [\"admin (via direct)\"]")
        );
        let none = expect(json!({"user": "a", "access": "none"}));
        assert_eq!(
            miss(&none, Some(&seen)).as_deref(),
            Some("excess access: BACKEND admin (via direct), member (via team:t1)")
        );
        assert_eq!(miss(&none, None), None);
        let archived = expect(json!({"user": "a", "active": false}));
        assert_eq!(
            miss(&archived, Some(&seen)).as_deref(),
            Some("active is true")
        );
        assert!(Space
            .expectation(&json!({"user": "a", "project": "BACKEND"}))
            .is_err_and(|e| e.contains("needs project and roles")));
        assert!(Space
            .expectation(&json!({"user": "a", "rolez": []}))
            .is_err_and(|e| e.contains("unknown field")));
    }
}
