//! The SCIM bridge: a `scim` provider whose every change goes to a TeamCity server's REST API
//! (the mock or a real one) first. User <-> user; Group <-> user group (key `SCIM_<id>`), its
//! members edited from the user side as TeamCity does; the policy's roles put on the group.
//!
//! TeamCity has no disabled flag, so `active: false` (the leaver) takes the user out of every
//! group, removes their own role assignments and deletes their access tokens; the user stays
//! readable. `active: true` again puts them back into the groups SCIM lists them in; roles and
//! tokens of their own do not come back.

use std::collections::BTreeSet;

use axum::http::Method;
use mockkit::connector::{is_active, link_str, lookup, Call, HttpApi, Plan, PolicyGrant};
use scim::provider::{Backend, BackendChange, BoxFuture, Links};
use scim::schema::ResourceKind;
use scim::store::LINK_KEY;
use scim::tls::ClientTls;
use scim::{ScimError, ScimType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

const USERS: usize = 0;
const GROUPS: usize = 1;
/// The keys of the groups the bridge manages start with this.
const GROUP_KEY_PREFIX: &str = "SCIM_";
/// Where the bridge keeps a user's SCIM `externalId` in TeamCity.
pub const EXTERNAL_ID_PROPERTY: &str = "scim.externalId";

/// A role at a scope that a policy rule gives a group: `{ role = "PROJECT_DEVELOPER", scope =
/// "p:Backend" }`, put on the TeamCity group (default) or, with `on = "members"`, assigned to
/// each active member directly.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleAt {
    pub role: String,
    pub scope: String,
    #[serde(default)]
    pub on: On,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum On {
    #[default]
    Group,
    Members,
}

const DEFAULT_POLICY: &str = include_str!("../../scenarios/policies/teamcity-default.toml");
const ROLES: [&str; 5] = [
    "SYSTEM_ADMIN",
    "PROJECT_ADMIN",
    "PROJECT_DEVELOPER",
    "PROJECT_VIEWER",
    "AGENT_MANAGER",
];

impl PolicyGrant for RoleAt {
    const DEFAULT_POLICY: &'static str = DEFAULT_POLICY;

    fn problem(&self) -> Option<String> {
        let scope_ok =
            self.scope == "g" || self.scope.strip_prefix("p:").is_some_and(|p| !p.is_empty());
        if !ROLES.contains(&self.role.as_str()) {
            Some(format!(
                "role '{}' is not one of {}",
                self.role,
                ROLES.join(", ")
            ))
        } else if !scope_ok {
            Some(format!(
                "scope '{}' is not 'g' or 'p:<projectId>'",
                self.scope
            ))
        } else if self.role == "SYSTEM_ADMIN" && self.scope != "g" {
            Some("SYSTEM_ADMIN can only be granted at scope 'g'".into())
        } else {
            None
        }
    }
}

pub type Policy = mockkit::connector::Policy<RoleAt>;

/// TeamCity's own refusals as SCIM errors. TeamCity says 400 for a duplicate username or group.
fn teamcity_error(status: u16, said: String) -> Option<ScimError> {
    Some(match status {
        400 if said.contains("already exists") || said.contains("already used") => {
            ScimError::uniqueness(said)
        }
        400 => ScimError::bad_request(ScimType::InvalidValue, said),
        401 | 403 => ScimError::new(
            502,
            None,
            format!("{said} (the bridge's TeamCity token lacks the rights it needs)"),
        ),
        _ => return None,
    })
}

/// The TeamCity REST client the bridge uses, for the mock or a real server.
pub fn teamcity_client(base: &str, token: &str, tls: &ClientTls) -> Result<HttpApi, ScimError> {
    HttpApi::new(
        "TeamCity",
        &format!("{}/app/rest", base.trim_end_matches('/')),
        token,
        tls,
        teamcity_error,
    )
}

#[derive(Debug)]
pub struct TeamCityBackend {
    client: HttpApi,
    policy: Policy,
}

impl TeamCityBackend {
    pub fn new(client: HttpApi, policy: Policy) -> TeamCityBackend {
        TeamCityBackend { client, policy }
    }

    async fn apply_user(
        &self,
        c: &BackendChange<'_>,
        plan: &mut Plan<'_>,
    ) -> Result<Option<Value>, ScimError> {
        let linked = c.link.and_then(|l| l.get("user")).and_then(Value::as_u64);
        let Some(new) = c.new else {
            if let (Some(id), Some(old)) = (linked, c.old) {
                // Gone, or the id is someone else's now: a 404, and nobody is deleted.
                plan.remove(Call::new(Method::DELETE, user_path(id, old), None), None)
                    .await?;
            }
            return Ok(None);
        };
        let Some(id) = linked else {
            let mut body = user_fields(new);
            if let Some(x) = new.get("externalId").and_then(Value::as_str) {
                body["properties"] =
                    json!({"property": [{"name": EXTERNAL_ID_PROPERTY, "value": x}]});
            }
            let created = match plan
                .run(Call::new(Method::POST, "/users", Some(body)), None)
                .await
            {
                Ok(created) => created,
                // A crash after TeamCity made the user and before the bridge stored its link
                // leaves that user behind; the retried create finds it.
                Err(e) if e.status == 409 => match self.orphan(new).await? {
                    Some(id) => return self.adopt(new, id, plan).await,
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            };
            let id = created.get("id").and_then(Value::as_u64).ok_or_else(|| {
                ScimError::new(502, None, "TeamCity created a user without an id")
            })?;
            plan.undo_with(Call::new(Method::DELETE, user_path(id, new), None));
            return Ok(Some(json!({"user": id})));
        };
        // The account as it was linked: a stale link (TeamCity reset, ids reused) finds no one
        // and the change is refused with 409 instead of landing on another person.
        let linked_path = user_path(id, c.old.unwrap_or(new));
        // Once renamed, the account answers to its new username only: every later call and
        // the rename's own undo address it so.
        let path = user_path(id, new);
        let (old_fields, new_fields) = (c.old.map(user_fields), user_fields(new));
        if old_fields.as_ref() != Some(&new_fields) {
            plan.run(
                Call::new(Method::PUT, linked_path, Some(new_fields)),
                old_fields.map(|b| Call::new(Method::PUT, path.clone(), Some(b))),
            )
            .await?;
        }
        match (c.old.is_none_or(is_active), is_active(new)) {
            (true, false) => {
                let removed = self.strip(&path, plan).await?;
                Ok(Some(json!({"user": id, "suspended": removed})))
            }
            (false, true) => {
                self.restore(c, &path, plan).await?;
                Ok(Some(json!({"user": id})))
            }
            _ => Ok(None),
        }
    }

    /// The user a create that crashed half-way left: same username, and the externalId this
    /// create carries in the bridge's property (so it is this person's, not a namesake's).
    async fn orphan(&self, new: &Map<String, Value>) -> Result<Option<u64>, ScimError> {
        let (Some(user_name), Some(external_id)) = (
            new.get("userName").and_then(Value::as_str),
            new.get("externalId").and_then(Value::as_str),
        ) else {
            return Ok(None);
        };
        let path = format!("/users/username:{}", encode(user_name));
        let Some(found) = lookup(&self.client, path).await? else {
            return Ok(None);
        };
        let marked = found
            .pointer("/properties/property")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|p| {
                p.get("name").and_then(Value::as_str) == Some(EXTERNAL_ID_PROPERTY)
                    && p.get("value").and_then(Value::as_str) == Some(external_id)
            });
        Ok(found.get("id").and_then(Value::as_u64).filter(|_| marked))
    }

    /// Links an orphaned user and brings it up to the create's attributes.
    async fn adopt(
        &self,
        new: &Map<String, Value>,
        id: u64,
        plan: &mut Plan<'_>,
    ) -> Result<Option<Value>, ScimError> {
        tracing::warn!("adopting TeamCity user {id}, left by an earlier attempt of this create");
        let path = user_path(id, new);
        plan.run(Call::new(Method::PUT, path, Some(user_fields(new))), None)
            .await?;
        Ok(Some(json!({"user": id})))
    }

    /// The rehire, exactly undoing the leaver: the user's own roles and the groups the bridge
    /// does not manage come back as they were; the bridge's groups are the ones SCIM lists now.
    /// Tokens stay revoked.
    async fn restore(
        &self,
        c: &BackendChange<'_>,
        path: &str,
        plan: &mut Plan<'_>,
    ) -> Result<(), ScimError> {
        let suspended = c.link.and_then(|l| l.get("suspended"));
        let mut keys: BTreeSet<String> = suspended
            .and_then(|s| s.get("groups"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|k| !k.starts_with(GROUP_KEY_PREFIX))
            .map(str::to_owned)
            .collect();
        keys.extend(self.group_keys_of(c, c.id));
        let groups: Vec<Value> = keys.iter().map(|k| json!({"key": k})).collect();
        let roles = suspended
            .and_then(|s| s.get("roles"))
            .cloned()
            .unwrap_or_else(|| json!([]));
        for (what, body, empty) in [
            ("groups", json!({"group": groups}), json!({"group": []})),
            ("roles", json!({"role": roles}), json!({"role": []})),
        ] {
            plan.run(
                Call::new(Method::PUT, format!("{path}/{what}"), Some(body)),
                Some(Call::new(
                    Method::PUT,
                    format!("{path}/{what}"),
                    Some(empty),
                )),
            )
            .await?;
        }
        Ok(())
    }

    /// The leaver: out of every group, no roles of their own, no tokens.
    /// Returns what it removed: `{groups: [key], roles: [{roleId, scope}]}`.
    async fn strip(&self, path: &str, plan: &mut Plan<'_>) -> Result<Value, ScimError> {
        // Every read before the first write: a failed read then has nothing to roll back.
        let read = |what: &str| Call::new(Method::GET, format!("{path}/{what}"), None);
        let groups = plan.run(read("groups"), None).await?;
        let roles = plan.run(read("roles"), None).await?;
        let tokens = plan.run(read("tokens"), None).await?;
        for (what, field, held) in [("groups", "group", &groups), ("roles", "role", &roles)] {
            let put = |list: Value| {
                Call::new(
                    Method::PUT,
                    format!("{path}/{what}"),
                    Some(json!({ field: list })),
                )
            };
            let before = held.get(field).cloned().unwrap_or_else(|| json!([]));
            plan.run(put(json!([])), Some(put(before))).await?;
        }
        let names: Vec<String> = tokens
            .get("token")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let removed = json!({
            "groups": groups.get("group").and_then(Value::as_array).into_iter().flatten()
                .filter_map(|g| g.get("key").cloned()).collect::<Vec<_>>(),
            "roles": roles.get("role").and_then(Value::as_array).into_iter().flatten()
                .map(|r| json!({"roleId": r.get("roleId"), "scope": r.get("scope")})).collect::<Vec<_>>(),
        });
        // Tokens last: a deleted token cannot be given back, so nothing may fail after them.
        for name in names {
            let call = Call::new(
                Method::DELETE,
                format!("{path}/tokens/{}", encode(&name)),
                None,
            );
            plan.remove(call, None).await?;
        }
        Ok(removed)
    }

    async fn apply_group(
        &self,
        c: &BackendChange<'_>,
        plan: &mut Plan<'_>,
    ) -> Result<Option<Value>, ScimError> {
        let Some(new) = c.new else {
            if let Some(key) = link_str(c.link, "key") {
                let direct: Vec<RoleAt> = c
                    .link
                    .and_then(|l| l.get("roles"))
                    .and_then(|r| serde_json::from_value::<Vec<RoleAt>>(r.clone()).ok())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| r.on == On::Members)
                    .collect();
                for (member, _) in c.left {
                    if let Some((path, true)) = self.user_of(c, member)? {
                        self.unassign(c, plan, member, &path, &direct).await?;
                    }
                }
                let path = format!("/userGroups/key:{key}");
                plan.remove(Call::new(Method::DELETE, path, None), None)
                    .await?;
            }
            return Ok(None);
        };
        let name = new
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let key = match link_str(c.link, "key") {
            Some(key) => {
                let old_name = c
                    .old
                    .and_then(|o| o.get("displayName"))
                    .and_then(Value::as_str);
                if old_name != Some(name) {
                    let path = format!("/userGroups/key:{key}/name");
                    plan.run(
                        Call::text(Method::PUT, path.clone(), name),
                        old_name.map(|n| Call::text(Method::PUT, path.clone(), n)),
                    )
                    .await?;
                }
                key.to_owned()
            }
            None => {
                let key = format!("{GROUP_KEY_PREFIX}{}", c.id.replace('-', "").to_uppercase());
                let body = json!({"key": key, "name": name,
                    "description": format!("Provisioned by scimlab from SCIM group {}", c.id)});
                plan.run(Call::new(Method::POST, "/userGroups", Some(body)), None)
                    .await?;
                plan.undo_with(Call::new(
                    Method::DELETE,
                    format!("/userGroups/key:{key}"),
                    None,
                ));
                key
            }
        };

        // Members: only active users are in the TeamCity group; leavers rejoin on reactivation.
        // A group made now (the connector came after it) gets every member.
        let fresh = link_str(c.link, "key").is_none();
        let joining = if fresh {
            c.members_after()
        } else {
            c.joined.to_vec()
        };
        let granted: Vec<RoleAt> = c
            .link
            .and_then(|l| l.get("roles"))
            .and_then(|r| serde_json::from_value(r.clone()).ok())
            .unwrap_or_default();
        let wanted = self.policy.grants_for(c.id, new);
        let direct = |roles: &[RoleAt]| -> Vec<RoleAt> {
            roles
                .iter()
                .filter(|r| r.on == On::Members)
                .cloned()
                .collect()
        };
        let (direct_before, direct_after) = (direct(&granted), direct(&wanted));
        for (member, _) in c.left.iter().filter(|_| !fresh) {
            if let Some((path, true)) = self.user_of(c, member)? {
                plan.remove(leave_call(&path, &key), Some(join_call(&path, &key)))
                    .await?;
                self.unassign(c, plan, member, &path, &direct_before)
                    .await?;
            }
        }
        for member in &joining {
            let Some((path, is_active)) = self.user_of(c, member)? else {
                return Err(ScimError::bad_request(
                    ScimType::InvalidValue,
                    format!("member '{member}' is not a User provisioned to TeamCity (nested groups are not bridged)"),
                ));
            };
            if is_active {
                plan.run(join_call(&path, &key), Some(leave_call(&path, &key)))
                    .await?;
                self.assign(plan, &path, &direct_after).await?;
            }
        }
        // Members who stay see the direct roles change with the policy.
        let dropped: Vec<RoleAt> = direct_before
            .iter()
            .filter(|r| !direct_after.contains(r))
            .cloned()
            .collect();
        let added: Vec<RoleAt> = direct_after
            .iter()
            .filter(|r| !direct_before.contains(r))
            .cloned()
            .collect();
        let unchanged = dropped.is_empty() && added.is_empty();
        let staying = if unchanged || fresh {
            Vec::new()
        } else {
            c.staying()
        };
        for member in &staying {
            if let Some((path, true)) = self.user_of(c, member)? {
                self.unassign(c, plan, member, &path, &dropped).await?;
                self.assign(plan, &path, &added).await?;
            }
        }

        // Roles from the policy on the group itself.
        let on_group = |roles: &[RoleAt]| -> Vec<RoleAt> {
            roles
                .iter()
                .filter(|r| r.on == On::Group)
                .cloned()
                .collect()
        };
        let (group_before, group_after) = (on_group(&granted), on_group(&wanted));
        let role_path = |r: &RoleAt| format!("/userGroups/key:{key}/roles/{}/{}", r.role, r.scope);
        for r in group_before.iter().filter(|r| !group_after.contains(r)) {
            plan.run(
                Call::new(Method::DELETE, role_path(r), None),
                Some(Call::new(Method::PUT, role_path(r), None)),
            )
            .await?;
        }
        for r in group_after.iter().filter(|r| !group_before.contains(r)) {
            plan.run(
                Call::new(Method::PUT, role_path(r), None),
                Some(Call::new(Method::DELETE, role_path(r), None)),
            )
            .await?;
        }
        Ok(Some(json!({"key": key, "roles": wanted})))
    }

    /// Assigns the policy's direct roles to a user (idempotent in TeamCity).
    async fn assign(
        &self,
        plan: &mut Plan<'_>,
        user_path: &str,
        roles: &[RoleAt],
    ) -> Result<(), ScimError> {
        for r in roles {
            let path = format!("{user_path}/roles/{}/{}", r.role, r.scope);
            plan.run(
                Call::new(Method::PUT, path.clone(), None),
                Some(Call::new(Method::DELETE, path, None)),
            )
            .await?;
        }
        Ok(())
    }

    /// Takes the policy's direct roles from a user, except those another of the user's SCIM
    /// groups still grants them: the union over groups decides.
    async fn unassign(
        &self,
        c: &BackendChange<'_>,
        plan: &mut Plan<'_>,
        member: &str,
        user_path: &str,
        roles: &[RoleAt],
    ) -> Result<(), ScimError> {
        let elsewhere: Vec<RoleAt> = c
            .store
            .direct_groups(member)
            .into_iter()
            .filter(|(gid, _)| gid != c.id)
            .filter_map(|(gid, _)| c.store.get(GROUPS, &gid).ok().flatten().map(|g| (gid, g)))
            .flat_map(|(gid, g)| self.policy.grants_for(&gid, &g))
            .filter(|r| r.on == On::Members)
            .collect();
        for r in roles.iter().filter(|r| !elsewhere.contains(r)) {
            let path = format!("{user_path}/roles/{}/{}", r.role, r.scope);
            plan.remove(
                Call::new(Method::DELETE, path.clone(), None),
                Some(Call::new(Method::PUT, path, None)),
            )
            .await?;
        }
        Ok(())
    }

    /// The TeamCity path of a SCIM User's account and whether it is active; `None` if it is
    /// no User here.
    fn user_of(
        &self,
        c: &BackendChange<'_>,
        member: &str,
    ) -> Result<Option<(String, bool)>, ScimError> {
        let Some(doc) = c.store.get(USERS, member)? else {
            return Ok(None);
        };
        Ok(doc
            .get(LINK_KEY)
            .and_then(|l| l.get("user"))
            .and_then(Value::as_u64)
            .map(|id| (user_path(id, &doc), is_active(&doc))))
    }

    /// The TeamCity keys of the groups SCIM lists a user in.
    fn group_keys_of(&self, c: &BackendChange<'_>, user: &str) -> Vec<String> {
        c.store
            .direct_groups(user)
            .into_iter()
            .filter_map(|(gid, _)| c.store.get(GROUPS, &gid).ok().flatten())
            .filter_map(|g| link_str(g.get(LINK_KEY), "key").map(str::to_owned))
            .collect()
    }
}

impl Backend for TeamCityBackend {
    fn apply<'a>(&'a self, c: BackendChange<'a>) -> BoxFuture<'a, Result<Links, ScimError>> {
        Box::pin(async move {
            let mut plan = Plan::new(&self.client);
            let result = match c.kind {
                ResourceKind::User => self.apply_user(&c, &mut plan).await,
                ResourceKind::Group => self.apply_group(&c, &mut plan).await,
            }
            .map(Links::from);
            plan.settle(result).await
        })
    }
}

/// SCIM User -> TeamCity user fields (dialects.md §5.1): `name` is `displayName`, else
/// "given family"; `email` the primary email, else the first.
fn user_fields(user: &Map<String, Value>) -> Value {
    let name = user
        .get("displayName")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            let n = user.get("name")?;
            let part = |k: &str| n.get(k).and_then(Value::as_str).unwrap_or("");
            let joined = format!("{} {}", part("givenName"), part("familyName"));
            let joined = joined.trim();
            (!joined.is_empty()).then(|| joined.to_owned())
        });
    let emails = user.get("emails").and_then(Value::as_array);
    let email = emails
        .and_then(|e| {
            e.iter()
                .find(|m| m.get("primary").and_then(Value::as_bool) == Some(true))
                .or_else(|| e.first())
        })
        .and_then(|m| m.get("value"))
        .cloned();
    json!({"username": user.get("userName"), "name": name, "email": email})
}

/// A linked account's locator: its id *and* the username the bridge gave it, so a link that
/// went stale (the id reused by another account) reaches nobody (TeamCity answers 404).
fn user_path(id: u64, user: &Map<String, Value>) -> String {
    let username = user.get("userName").and_then(Value::as_str).unwrap_or("");
    let special = |c: char| matches!(c, ',' | ':' | '(' | ')');
    let value = if username.contains(special) {
        format!("({username})")
    } else {
        username.to_owned()
    };
    format!("/users/id:{id},username:{}", encode(&value))
}

fn join_call(user_path: &str, key: &str) -> Call {
    Call::new(
        Method::POST,
        format!("{user_path}/groups"),
        Some(json!({"key": key})),
    )
}

fn leave_call(user_path: &str, key: &str) -> Call {
    Call::new(
        Method::DELETE,
        format!("{user_path}/groups/key:{key}"),
        None,
    )
}

/// Token names go into a path segment.
fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_parses_and_bad_grants_are_named() {
        assert_eq!(
            Policy::parse(DEFAULT_POLICY).unwrap(),
            Policy::default_policy()
        );
        assert!(!Policy::default_policy().rules.is_empty());
        let bad = "[[rule]]\ngroup = { id = \"a\" }\ngrants = [{ role = \"SYSTEM_ADMIN\", scope = \"p:X\" }]";
        assert!(Policy::parse(bad)
            .unwrap_err()
            .to_string()
            .contains("SYSTEM_ADMIN"));
        let bad = "[[rule]]\ngroup = { id = \"a\" }\ngrants = [{ role = \"PROJECT_VIEWER\", scope = \"x\" }]";
        assert!(Policy::parse(bad)
            .unwrap_err()
            .to_string()
            .contains("scope"));
    }

    /// Answers `{}` to every call but those of one path, which it throttles; records them all.
    struct Throttling {
        path: &'static str,
        seen: std::sync::Mutex<Vec<String>>,
    }

    impl mockkit::connector::NativeApi for Throttling {
        fn send<'a>(
            &'a self,
            call: &'a Call,
        ) -> BoxFuture<'a, Result<Value, mockkit::connector::NativeError>> {
            let line = format!("{} {}", call.method, call.path);
            self.seen.lock().unwrap().push(line);
            let throttled = call.path == self.path;
            Box::pin(async move {
                if throttled {
                    return Err(mockkit::connector::NativeError {
                        status: Some(429),
                        error: ScimError::new(503, None, "throttled"),
                    });
                }
                Ok(json!({}))
            })
        }
    }

    #[tokio::test]
    async fn a_leaver_reads_everything_before_changing_anything() {
        let api = Throttling {
            path: "/users/id:7/tokens",
            seen: Default::default(),
        };
        let client =
            teamcity_client("http://127.0.0.1:9", "unused", &ClientTls::default()).unwrap();
        let backend = TeamCityBackend::new(client, Policy::default_policy());
        let mut plan = Plan::new(&api);
        let stripped = backend.strip("/users/id:7", &mut plan).await;
        plan.settle(stripped).await.unwrap_err();
        assert_eq!(
            *api.seen.lock().unwrap(),
            [
                "GET /users/id:7/groups",
                "GET /users/id:7/roles",
                "GET /users/id:7/tokens"
            ],
            "nothing written, so nothing to roll back"
        );
    }

    #[test]
    fn user_fields_prefer_display_name_and_the_primary_email() {
        let u = json!({"userName": "ann", "name": {"givenName": "Ann", "familyName": "Lee"},
            "emails": [{"value": "a@x"}, {"value": "b@x", "primary": true}]});
        let f = user_fields(u.as_object().unwrap());
        assert_eq!(
            f,
            json!({"username": "ann", "name": "Ann Lee", "email": "b@x"})
        );
        assert_eq!(encode("my token/1"), "my%20token%2F1");
    }
}
