//! The SCIM connector: a `scim` provider whose every change is applied to Space through its
//! HTTP API first. User <-> profile (`active:false` <-> deactivate), Group <-> team,
//! membership <-> team membership, and the policy's project roles granted to each team.
//!
//! Each resource's link (profile id; team id, membership ids, grants) is stored inside the
//! SCIM document by the provider in the same write. A request whose native calls fail part way
//! undoes the calls already made, in reverse, and answers 503 (Space unreachable or failing)
//! or the matching SCIM error, with the SCIM side unchanged.

use std::sync::Arc;

use mockkit::connector::{is_active, link_str, lookup, Call, HttpApi, Plan};
use reqwest::Method;
use scim::provider::{Backend, BackendChange, BoxFuture, Links};
use scim::schema::ResourceKind;
use scim::store::LINK_KEY;
use scim::tls::ClientTls;
use scim::{ScimError, ScimType};
use serde_json::{json, Map, Value};

use crate::policy::{Policy, RoleGrant};

const USERS: usize = 0;

/// Space's own refusals as SCIM errors: a duplicate is 409, a refused value 400.
fn space_error(status: u16, said: String) -> Option<ScimError> {
    match status {
        409 => Some(ScimError::uniqueness(said)),
        400 => Some(ScimError::bad_request(ScimType::InvalidValue, said)),
        _ => None,
    }
}

/// The Space API client the connector uses, against the mock or a real organisation alike.
pub fn space_client(base: &str, token: &str, tls: &ClientTls) -> Result<HttpApi, ScimError> {
    HttpApi::new(
        "Space",
        &format!("{}/api/http", base.trim_end_matches('/')),
        token,
        tls,
        space_error,
    )
}

#[derive(Debug)]
pub struct SpaceBackend {
    client: HttpApi,
    policy: Arc<Policy>,
}

impl SpaceBackend {
    pub fn new(client: HttpApi, policy: Policy) -> SpaceBackend {
        SpaceBackend {
            client,
            policy: Arc::new(policy),
        }
    }

    async fn apply_user(
        &self,
        c: &BackendChange<'_>,
        plan: &mut Plan<'_>,
    ) -> Result<Option<Value>, ScimError> {
        let linked = link_str(c.link, "profile");
        match (c.new, linked) {
            (Some(new), None) => {
                let create = Call::new(
                    Method::POST,
                    "/team-directory/profiles",
                    Some(profile_body(new)),
                );
                let created = match plan.run(create, None).await {
                    Ok(created) => created,
                    // A crash after Space made the profile and before the connector stored
                    // its link leaves that profile behind; the retried create finds it.
                    Err(e) if e.status == 409 => match self.orphan(new).await? {
                        Some(id) => return self.adopt(new, &id, plan).await,
                        None => return Err(e),
                    },
                    Err(e) => return Err(e),
                };
                let id = created
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ScimError::new(502, None, "Space created a profile without an id")
                    })?
                    .to_owned();
                plan.undo_with(Call::new(
                    Method::DELETE,
                    format!("/team-directory/profiles/id:{id}"),
                    None,
                ));
                if !is_active(new) {
                    let path = format!("/team-directory/profiles/id:{id}/deactivate");
                    plan.run(Call::new(Method::DELETE, path, None), None)
                        .await?;
                }
                Ok(Some(json!({"profile": id})))
            }
            (Some(new), Some(id)) => {
                let path = format!("/team-directory/profiles/id:{id}");
                let (old_body, new_body) = (c.old.map(profile_body), profile_body(new));
                // A change Space does not hold (title, active, ...) needs no profile update.
                if old_body.as_ref() != Some(&new_body) {
                    plan.run(
                        Call::new(Method::PATCH, path.clone(), Some(new_body)),
                        old_body.map(|b| Call::new(Method::PATCH, path.clone(), Some(b))),
                    )
                    .await?;
                }
                let was_active = c.old.is_none_or(is_active);
                let deactivate = Call::new(Method::DELETE, format!("{path}/deactivate"), None);
                let reactivate =
                    Call::new(Method::PATCH, format!("{path}/reactivate"), Some(json!({})));
                match (was_active, is_active(new)) {
                    (true, false) => plan.run(deactivate, Some(reactivate)).await.map(drop)?,
                    (false, true) => plan.run(reactivate, Some(deactivate)).await.map(drop)?,
                    _ => {}
                }
                Ok(None)
            }
            (None, Some(id)) => {
                let path = format!("/team-directory/profiles/id:{id}");
                plan.remove(Call::new(Method::DELETE, path, None), None)
                    .await?;
                Ok(None)
            }
            (None, None) => Ok(None),
        }
    }

    async fn apply_group(
        &self,
        c: &BackendChange<'_>,
        plan: &mut Plan<'_>,
    ) -> Result<Links, ScimError> {
        let Some(new) = c.new else {
            if let Some(team) = link_str(c.link, "team") {
                let path = format!("/team-directory/teams/{team}/disband");
                plan.run(Call::new(Method::DELETE, path, None), None)
                    .await?;
            }
            return Ok(Links::default());
        };
        let name = new
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let external_id = new.get("externalId").cloned();
        let fresh = link_str(c.link, "team").is_none();
        let team = match link_str(c.link, "team") {
            Some(team) => {
                let old_name = c
                    .old
                    .and_then(|o| o.get("displayName"))
                    .and_then(Value::as_str);
                if old_name != Some(name) {
                    let path = format!("/team-directory/teams/{team}");
                    plan.run(
                        Call::new(Method::PATCH, path.clone(), Some(json!({"name": name}))),
                        old_name.map(|n| {
                            Call::new(Method::PATCH, path.clone(), Some(json!({"name": n})))
                        }),
                    )
                    .await?;
                }
                team.to_owned()
            }
            None => {
                let created = plan
                    .run(
                        Call::new(
                            Method::POST,
                            "/team-directory/teams",
                            Some(json!({"name": name, "externalId": external_id})),
                        ),
                        None,
                    )
                    .await?;
                let id = created
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ScimError::new(502, None, "Space created a team without an id"))?
                    .to_owned();
                plan.undo_with(Call::new(
                    Method::DELETE,
                    format!("/team-directory/teams/{id}/disband"),
                    None,
                ));
                id
            }
        };

        // Memberships: each member's link holds its Space membership id.
        for (member, link) in c.left {
            let profile = self.profile_of(c, member);
            let membership = match (link_str(link.as_ref(), "membership"), &profile) {
                (Some(id), _) => id.to_owned(),
                // Joined before memberships were linked per member: Space answers a request
                // for an existing membership with it.
                (None, Some(p)) => {
                    membership_id(&plan.run(membership_call(p, &team), None).await?)?
                }
                (None, None) => continue,
            };
            let path = format!("/team-directory/memberships/{membership}");
            let undo = profile.map(|p| membership_call(&p, &team));
            // A member deleted from Space took the membership along: already gone is fine.
            plan.remove(Call::new(Method::DELETE, path, None), undo)
                .await?;
        }
        // A team made now (the connector came after the group) gets every member.
        let joining = if fresh {
            c.members_after()
        } else {
            c.joined.to_vec()
        };
        let mut members = Vec::with_capacity(joining.len());
        for member in &joining {
            let Some(profile) = self.profile_of(c, member) else {
                return Err(ScimError::bad_request(
                    ScimType::InvalidValue,
                    format!("member '{member}' is not a User provisioned to Space (Space teams hold people, not teams)"),
                ));
            };
            let id = membership_id(&plan.run(membership_call(&profile, &team), None).await?)?;
            plan.undo_with(Call::new(
                Method::DELETE,
                format!("/team-directory/memberships/{id}"),
                None,
            ));
            members.push((member.clone(), json!({ "membership": id })));
        }

        // Project roles from the policy, granted to the team.
        let granted: Vec<RoleGrant> = c
            .link
            .and_then(|l| l.get("grants"))
            .and_then(|g| serde_json::from_value::<Vec<(String, String)>>(g.clone()).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|(project, role)| RoleGrant { project, role })
            .collect();
        let wanted = self.policy.grants_for(c.id, new);
        for g in granted.iter().filter(|g| !wanted.contains(g)) {
            plan.run(revoke_call(g, &team), Some(grant_call(g, &team)))
                .await?;
        }
        for g in wanted.iter().filter(|g| !granted.contains(g)) {
            plan.run(grant_call(g, &team), Some(revoke_call(g, &team)))
                .await?;
        }
        let grants: Vec<(String, String)> =
            wanted.into_iter().map(|g| (g.project, g.role)).collect();
        Ok(Links {
            resource: Some(json!({"team": team, "grants": grants})),
            members,
        })
    }

    /// The Space profile id of a SCIM User, read from the user's stored link.
    fn profile_of(&self, c: &BackendChange<'_>, user: &str) -> Option<String> {
        let doc = c.store.get(USERS, user).ok()??;
        link_str(doc.get(LINK_KEY), "profile").map(str::to_owned)
    }
}

impl Backend for SpaceBackend {
    fn apply<'a>(&'a self, c: BackendChange<'a>) -> BoxFuture<'a, Result<Links, ScimError>> {
        Box::pin(async move {
            let mut plan = Plan::new(&self.client);
            let result = match c.kind {
                ResourceKind::User => self.apply_user(&c, &mut plan).await.map(Links::from),
                ResourceKind::Group => self.apply_group(&c, &mut plan).await,
            };
            plan.settle(result).await
        })
    }
}

/// The id of the membership Space answered with.
fn membership_id(answer: &Value) -> Result<String, ScimError> {
    answer
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ScimError::new(502, None, "Space answered a membership without an id"))
}

/// SCIM User -> Space profile fields (dialects.md §5.1).
impl SpaceBackend {
    /// The profile a create that crashed half-way left: same username, and the externalId
    /// this create carries (so it is this person's, not someone else's by chance).
    async fn orphan(&self, new: &Map<String, Value>) -> Result<Option<String>, ScimError> {
        let (Some(user_name), Some(external_id)) = (
            new.get("userName").and_then(Value::as_str),
            new.get("externalId").and_then(Value::as_str),
        ) else {
            return Ok(None);
        };
        let segment =
            percent_encoding::utf8_percent_encode(user_name, percent_encoding::NON_ALPHANUMERIC);
        let path = format!("/team-directory/profiles/username:{segment}");
        Ok(lookup(&self.client, path)
            .await?
            .filter(|p| p.get("externalId").and_then(Value::as_str) == Some(external_id))
            .and_then(|p| p.get("id").and_then(Value::as_str).map(str::to_owned)))
    }

    /// Links an orphaned profile and brings it up to the create's attributes.
    async fn adopt(
        &self,
        new: &Map<String, Value>,
        id: &str,
        plan: &mut Plan<'_>,
    ) -> Result<Option<Value>, ScimError> {
        tracing::warn!("adopting Space profile {id}, left by an earlier attempt of this create");
        let path = format!("/team-directory/profiles/id:{id}");
        plan.run(
            Call::new(Method::PATCH, path.clone(), Some(profile_body(new))),
            None,
        )
        .await?;
        if !is_active(new) {
            plan.run(
                Call::new(Method::DELETE, format!("{path}/deactivate"), None),
                None,
            )
            .await?;
        }
        Ok(Some(json!({"profile": id})))
    }
}

fn profile_body(user: &Map<String, Value>) -> Value {
    let name = user.get("name");
    let part = |k: &str| {
        name.and_then(|n| n.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let emails: Vec<&str> = user
        .get("emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("value").and_then(Value::as_str))
        .collect();
    json!({
        "username": user.get("userName"),
        "firstName": part("givenName"),
        "lastName": part("familyName"),
        "emails": emails,
        "externalId": user.get("externalId"),
    })
}

fn membership_call(profile: &str, team: &str) -> Call {
    Call::new(
        Method::POST,
        "/team-directory/memberships",
        Some(json!({"member": format!("id:{profile}"), "teamId": team})),
    )
}

fn access_list(role: &str) -> &'static str {
    match role {
        "admin" => "admins",
        "collaborator" => "collaborators",
        _ => "members",
    }
}

fn grant_call(g: &RoleGrant, team: &str) -> Call {
    Call::new(
        Method::POST,
        format!(
            "/projects/key:{}/access/{}/teams",
            g.project,
            access_list(&g.role)
        ),
        Some(json!({"teamId": team})),
    )
}

fn revoke_call(g: &RoleGrant, team: &str) -> Call {
    Call::new(
        Method::DELETE,
        format!(
            "/projects/key:{}/access/{}/teams/{team}",
            g.project,
            access_list(&g.role)
        ),
        None,
    )
}
