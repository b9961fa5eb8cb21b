//! The Space HTTP API (`/api/http/...`) over the directory, and the simulator's permission
//! endpoints (`/_sim/permissions/...`).
//!
//! Authentication: the organisation token(s) given at start act as an administrator; a personal
//! permanent token acts as its profile, which may read the directory and the repositories it
//! has `repo.read` on, and change nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::directory::{
    new_id, now, Email, Grant, Grantee, Membership, Name, Org, Profile, Project, Record,
    Repository, Team, Token, GRANTABLE_ROLES,
};
use crate::error::{ApiError, Result};
use crate::Space;

type Shared = Arc<Space>;

pub fn router(space: Shared) -> Router {
    let td = Router::new()
        .route("/profiles", get(list_profiles).post(create_profile))
        .route(
            "/profiles/{profile}",
            get(read_profile)
                .patch(update_profile)
                .delete(delete_profile),
        )
        .route("/profiles/{profile}/deactivate", delete(deactivate))
        .route("/profiles/{profile}/reactivate", patch(reactivate))
        .route(
            "/profiles/{profile}/permanent-tokens",
            get(list_tokens).post(create_token),
        )
        .route(
            "/profiles/{profile}/permanent-tokens/{token}",
            delete(delete_token),
        )
        .route("/teams", get(list_teams).post(create_team))
        .route(
            "/teams/{team}",
            get(read_team).patch(update_team).delete(archive_team),
        )
        .route("/teams/{team}/disband", delete(disband_team))
        .route("/teams/{team}/direct-members", get(direct_members))
        .route(
            "/memberships",
            get(list_memberships).post(create_membership),
        )
        .route("/memberships/{membership}", delete(delete_membership));
    let projects = Router::new()
        .route("/", get(list_projects).post(create_project))
        .route("/{project}", get(read_project))
        .route("/{project}/repositories", get(list_repositories))
        .route(
            "/{project}/repositories/{repository}",
            get(read_repository).post(create_repository),
        )
        .route("/{project}/access/{role}", get(read_access))
        .route("/{project}/access/{role}/{kind}", post(grant))
        .route("/{project}/access/{role}/{kind}/{id}", delete(revoke))
        .route("/{project}/access/member-profiles", get(member_profiles));
    Router::new()
        .nest("/api/http/team-directory", td)
        .nest("/api/http/projects", projects)
        .route("/_sim/permissions/{profile}", get(permissions))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(axum::middleware::map_response(json_errors))
        .with_state(space)
}

/// Gives the answers axum makes itself (a bad query string or path, a wrong method) the same
/// JSON error body as every other failure.
async fn json_errors(resp: axum::response::Response) -> axum::response::Response {
    let (status, text) = match scim::server::plain_rejection(resp).await {
        Ok(rejection) => rejection,
        Err(resp) => return resp,
    };
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too-large",
        _ => "validation-error",
    };
    ApiError::new(status.as_u16(), code, text).into_response()
}

/// Who is calling.
#[derive(Debug)]
enum Caller {
    Admin,
    Profile(String),
}

impl Caller {
    fn admin(&self) -> Result<()> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Profile(_) => Err(ApiError::forbidden(
                "a personal token may not change the organisation",
            )),
        }
    }
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, space: &Shared) -> Result<Caller> {
        let token = scim::auth::credentials(&parts.headers, &["Bearer"])
            .ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <token>"))?;
        if scim::auth::is_one_of(&space.admin_tokens, token) {
            return Ok(Caller::Admin);
        }
        // A deactivated profile's token is refused even when it was never revoked (as
        // happens while the quirk that keeps tokens is on): the quirk's effect ends with it.
        let keeps_tokens = space.quirk("deactivate-keeps-tokens");
        match space.directory.read().token_holder(token) {
            Some(p) if !p.archived || keeps_tokens => Ok(Caller::Profile(p.id.clone())),
            _ => Err(ApiError::unauthorized(
                "the token is unknown, revoked, expired, or its profile is deactivated",
            )),
        }
    }
}

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("bad body: {e}")))
}

/// Space's batch shape: `{next, totalCount, data}` paged by `$skip` / `$top`.
#[derive(Debug, Deserialize)]
struct Paging {
    #[serde(rename = "$skip")]
    skip: Option<String>,
    #[serde(rename = "$top")]
    top: Option<usize>,
    query: Option<String>,
    #[serde(rename = "reportPastMembers")]
    report_past_members: Option<bool>,
    #[serde(rename = "teamId")]
    team_id: Option<String>,
}

fn batch<T: serde::Serialize>(items: Vec<T>, paging: &Paging) -> Result<Json<Value>> {
    let skip: usize = match &paging.skip {
        Some(s) => s
            .parse()
            .map_err(|_| ApiError::bad_request(format!("$skip '{s}' is not one this API gave")))?,
        None => 0,
    };
    let top = paging.top.unwrap_or(100).min(1000);
    let total = items.len();
    let data: Vec<T> = items.into_iter().skip(skip).take(top).collect();
    let next = (skip + data.len()).to_string();
    Ok(Json(
        json!({"next": next, "totalCount": total, "data": data}),
    ))
}

// -- profiles -------------------------------------------------------------------------------

async fn list_profiles(
    State(space): State<Shared>,
    _caller: Caller,
    Query(paging): Query<Paging>,
) -> Result<Json<Value>> {
    let org = space.directory.read();
    let query = paging.query.as_deref().map(str::to_lowercase);
    let team_members = paging
        .team_id
        .as_deref()
        .map(|t| org.team(t).map(|t| t.id.clone()))
        .transpose()?;
    let items: Vec<Profile> = org
        .profiles
        .values()
        .filter(|p| paging.report_past_members.unwrap_or(false) || !p.archived)
        .filter(|p| {
            query.as_ref().is_none_or(|q| {
                p.username.to_lowercase().contains(q)
                    || format!("{} {}", p.name.first_name, p.name.last_name)
                        .to_lowercase()
                        .contains(q)
            })
        })
        .filter(|p| {
            team_members
                .as_ref()
                .is_none_or(|t| org.teams_of(&p.id).contains(t))
        })
        .cloned()
        .collect();
    batch(items, &paging)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileIn {
    username: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    emails: Option<Vec<String>>,
    external_id: Option<String>,
    joined: Option<String>,
}

fn check_username(org: &Org, username: &str, except: Option<&str>) -> Result<()> {
    if username.trim().is_empty() {
        return Err(ApiError::bad_request("username must not be empty"));
    }
    if org
        .username_owner(username)
        .is_some_and(|owner| Some(owner.as_str()) != except)
    {
        return Err(ApiError::conflict(format!(
            "username '{username}' is already taken"
        )));
    }
    Ok(())
}

fn check_external_id(org: &Org, external_id: Option<&str>, except: Option<&str>) -> Result<()> {
    let Some(x) = external_id else { return Ok(()) };
    if org
        .external_id_owner(x)
        .is_some_and(|owner| Some(owner.as_str()) != except)
    {
        return Err(ApiError::conflict(format!(
            "externalId '{x}' is already taken"
        )));
    }
    Ok(())
}

async fn create_profile(
    State(space): State<Shared>,
    caller: Caller,
    raw: Bytes,
) -> Result<impl IntoResponse> {
    caller.admin()?;
    let input: ProfileIn = body(&raw)?;
    let profile = space
        .directory
        .change(|org, c| {
            let username = input
                .username
                .clone()
                .ok_or_else(|| ApiError::bad_request("username is required"))?;
            check_username(org, &username, None)?;
            check_external_id(org, input.external_id.as_deref(), None)?;
            let profile = Profile {
                id: new_id(),
                username,
                name: Name {
                    first_name: input.first_name.clone().unwrap_or_default(),
                    last_name: input.last_name.clone().unwrap_or_default(),
                },
                emails: emails(input.emails.clone().unwrap_or_default())?,
                external_id: input.external_id.clone(),
                archived: false,
                joined: Some(input.joined.clone().unwrap_or_else(now)),
                left_at: None,
            };
            c.event(
                "profile.created",
                &profile.id,
                json!({"username": profile.username}),
            );
            c.put(Record::Profile(profile.clone()));
            Ok(profile)
        })
        .await?;
    Ok((StatusCode::OK, Json(profile)))
}

fn emails(list: Vec<String>) -> Result<Vec<Email>> {
    list.into_iter()
        .map(|e| {
            if e.contains('@') {
                Ok(Email { email: e })
            } else {
                Err(ApiError::bad_request(format!(
                    "'{e}' is not an email address"
                )))
            }
        })
        .collect()
}

fn caller_profile_id<'a>(caller: &'a Caller, identifier: &'a str) -> &'a str {
    match (caller, identifier) {
        (Caller::Profile(id), "me") => id,
        _ => identifier,
    }
}

fn resolve_profile(org: &Org, caller: &Caller, identifier: &str) -> Result<Profile> {
    let identifier = caller_profile_id(caller, identifier);
    if identifier == "me" {
        return Err(ApiError::bad_request(
            "'me' needs a personal token; the organisation token is no profile",
        ));
    }
    match (caller, org.profiles.get(identifier)) {
        (Caller::Profile(_), Some(p)) => Ok(p.clone()),
        _ => org.profile(identifier).cloned(),
    }
}

async fn read_profile(
    State(space): State<Shared>,
    caller: Caller,
    Path(profile): Path<String>,
) -> Result<Json<Profile>> {
    resolve_profile(&space.directory.read(), &caller, &profile).map(Json)
}

async fn update_profile(
    State(space): State<Shared>,
    caller: Caller,
    Path(identifier): Path<String>,
    raw: Bytes,
) -> Result<Json<Profile>> {
    caller.admin()?;
    let input: ProfileIn = body(&raw)?;
    let profile = space
        .directory
        .change(|org, c| {
            let mut p = org.profile(&identifier)?.clone();
            if let Some(u) = &input.username {
                check_username(org, u, Some(&p.id))?;
                p.username = u.clone();
            }
            if input.external_id.is_some() {
                check_external_id(org, input.external_id.as_deref(), Some(&p.id))?;
                p.external_id = input.external_id.clone();
            }
            if let Some(f) = &input.first_name {
                p.name.first_name = f.clone();
            }
            if let Some(l) = &input.last_name {
                p.name.last_name = l.clone();
            }
            if let Some(e) = &input.emails {
                p.emails = emails(e.clone())?;
            }
            c.event("profile.updated", &p.id, json!({"username": p.username}));
            c.put(Record::Profile(p.clone()));
            Ok(p)
        })
        .await?;
    Ok(Json(profile))
}

/// Leaver: the profile stays readable, loses every right and every token at once.
async fn deactivate(
    State(space): State<Shared>,
    caller: Caller,
    Path(identifier): Path<String>,
) -> Result<Json<Profile>> {
    caller.admin()?;
    let profile = space
        .directory
        .change(|org, c| {
            let mut p = org.profile(&identifier)?.clone();
            if p.archived {
                return Ok(p);
            }
            p.archived = true;
            p.left_at = Some(now());
            let mut revoked = Vec::new();
            let keep_tokens = space.quirk("deactivate-keeps-tokens");
            for t in org
                .tokens
                .values()
                .filter(|t| t.profile_id == p.id && !t.revoked && !keep_tokens)
            {
                let mut t = t.clone();
                t.revoked = true;
                revoked.push(t.id.clone());
                c.put(Record::Token(t));
            }
            if !space.quirk("deactivate-unaudited") {
                c.event(
                    "profile.deactivated",
                    &p.id,
                    json!({"revokedTokens": revoked}),
                );
            }
            c.put(Record::Profile(p.clone()));
            Ok(p)
        })
        .await?;
    Ok(Json(profile))
}

/// Rehire: the profile is active again; revoked tokens stay revoked.
async fn reactivate(
    State(space): State<Shared>,
    caller: Caller,
    Path(identifier): Path<String>,
) -> Result<Json<Profile>> {
    caller.admin()?;
    let profile = space
        .directory
        .change(|org, c| {
            let mut p = org.profile(&identifier)?.clone();
            if !p.archived {
                return Ok(p);
            }
            p.archived = false;
            p.left_at = None;
            c.event("profile.reactivated", &p.id, json!({}));
            c.put(Record::Profile(p.clone()));
            Ok(p)
        })
        .await?;
    Ok(Json(profile))
}

async fn delete_profile(
    State(space): State<Shared>,
    caller: Caller,
    Path(identifier): Path<String>,
) -> Result<StatusCode> {
    caller.admin()?;
    space
        .directory
        .change(|org, c| {
            let p = org.profile(&identifier)?.clone();
            for m in org.memberships_of(&p.id) {
                c.remove(Record::Membership(m.clone()));
            }
            for g in org
                .grants
                .iter()
                .filter(|g| g.grantee == Grantee::Profile(p.id.clone()))
            {
                c.remove(Record::Grant(g.clone()));
            }
            for t in org.tokens.values().filter(|t| t.profile_id == p.id) {
                c.remove(Record::Token(t.clone()));
            }
            c.event("profile.deleted", &p.id, json!({"username": p.username}));
            c.remove(Record::Profile(p));
            Ok(())
        })
        .await?;
    Ok(StatusCode::OK)
}

// -- tokens ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct TokenIn {
    name: String,
    #[serde(default)]
    scope: Option<String>,
    expires: Option<String>,
}

fn token_view(t: &Token) -> Value {
    json!({"id": t.id, "name": t.name, "scope": t.scope, "expires": t.expires,
           "created": t.created, "revoked": t.revoked})
}

async fn list_tokens(
    State(space): State<Shared>,
    caller: Caller,
    Path(identifier): Path<String>,
) -> Result<Json<Value>> {
    let org = space.directory.read();
    let p = resolve_profile(&org, &caller, &identifier)?;
    if let Caller::Profile(me) = &caller {
        if *me != p.id {
            return Err(ApiError::forbidden("another profile's tokens"));
        }
    }
    let data: Vec<Value> = org
        .tokens
        .values()
        .filter(|t| t.profile_id == p.id)
        .map(token_view)
        .collect();
    Ok(Json(
        json!({"next": data.len().to_string(), "totalCount": data.len(), "data": data}),
    ))
}

/// Returns the token's metadata and its secret, once.
async fn create_token(
    State(space): State<Shared>,
    caller: Caller,
    Path(identifier): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    caller.admin()?;
    let input: TokenIn = body(&raw)?;
    if input.name.trim().is_empty() {
        return Err(ApiError::bad_request("a token needs a name"));
    }
    if let Some(e) = &input.expires {
        chrono::DateTime::parse_from_rfc3339(e)
            .map_err(|_| ApiError::bad_request(format!("expires '{e}' is not an RFC 3339 time")))?;
    }
    let secret = format!("spc.{}", uuid::Uuid::new_v4().simple());
    let token = space
        .directory
        .change(|org, c| {
            let p = org.profile(&identifier)?;
            if p.archived {
                return Err(ApiError::bad_request(
                    "a deactivated profile cannot get tokens",
                ));
            }
            let t = Token {
                id: new_id(),
                profile_id: p.id.clone(),
                name: input.name.clone(),
                scope: input.scope.clone().unwrap_or_else(|| "**".into()),
                expires: input.expires.clone(),
                created: now(),
                digest: crate::directory::digest(&secret),
                revoked: false,
            };
            c.event(
                "token.created",
                &p.id,
                json!({"token": t.id, "name": t.name}),
            );
            c.put(Record::Token(t.clone()));
            Ok(t)
        })
        .await?;
    Ok(Json(json!({"first": token_view(&token), "second": secret})))
}

async fn delete_token(
    State(space): State<Shared>,
    caller: Caller,
    Path((identifier, token)): Path<(String, String)>,
) -> Result<StatusCode> {
    caller.admin()?;
    space
        .directory
        .change(|org, c| {
            let p = org.profile(&identifier)?;
            let t = org
                .tokens
                .get(&token)
                .filter(|t| t.profile_id == p.id)
                .ok_or_else(|| ApiError::not_found(format!("token '{token}' not found")))?;
            c.event("token.deleted", &p.id, json!({"token": t.id}));
            c.remove(Record::Token(t.clone()));
            Ok(())
        })
        .await?;
    Ok(StatusCode::OK)
}

// -- teams and memberships ------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TeamIn {
    name: Option<String>,
    description: Option<String>,
    parent_id: Option<String>,
    external_id: Option<String>,
}

async fn list_teams(
    State(space): State<Shared>,
    _caller: Caller,
    Query(paging): Query<Paging>,
) -> Result<Json<Value>> {
    let org = space.directory.read();
    let items: Vec<Team> = org
        .teams
        .values()
        .filter(|t| !t.archived)
        .cloned()
        .collect();
    batch(items, &paging)
}

fn check_team_name(org: &Org, name: &str, except: Option<&str>) -> Result<()> {
    if name.trim().is_empty() {
        return Err(ApiError::bad_request("a team needs a name"));
    }
    if org
        .teams
        .values()
        .any(|t| !t.archived && t.name == name && Some(t.id.as_str()) != except)
    {
        return Err(ApiError::conflict(format!("team '{name}' already exists")));
    }
    Ok(())
}

/// A parent must exist, and a team may not become its own ancestor. Returns the parent's id
/// (the reference may be `id:X`).
fn check_parent(org: &Org, team: Option<&str>, parent: &str) -> Result<String> {
    let parent = org.team(parent)?.id.clone();
    let mut next = Some(parent.clone());
    while let Some(t) = next {
        if Some(t.as_str()) == team {
            return Err(ApiError::bad_request(
                "a team cannot be placed under itself or its own subteam",
            ));
        }
        next = org.teams.get(&t).and_then(|t| t.parent_id.clone());
    }
    Ok(parent)
}

async fn create_team(
    State(space): State<Shared>,
    caller: Caller,
    raw: Bytes,
) -> Result<Json<Team>> {
    caller.admin()?;
    let input: TeamIn = body(&raw)?;
    let team = space
        .directory
        .change(|org, c| {
            let name = input.name.clone().unwrap_or_default();
            check_team_name(org, &name, None)?;
            let parent_id = match &input.parent_id {
                Some(parent) => Some(check_parent(org, None, parent)?),
                None => None,
            };
            let team = Team {
                id: new_id(),
                name,
                description: input.description.clone(),
                parent_id,
                external_id: input.external_id.clone(),
                archived: false,
            };
            c.event("team.created", &team.id, json!({"name": team.name}));
            c.put(Record::Team(team.clone()));
            Ok(team)
        })
        .await?;
    Ok(Json(team))
}

async fn read_team(
    State(space): State<Shared>,
    _caller: Caller,
    Path(team): Path<String>,
) -> Result<Json<Team>> {
    space.directory.read().team(&team).cloned().map(Json)
}

async fn update_team(
    State(space): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<Team>> {
    caller.admin()?;
    let input: TeamIn = body(&raw)?;
    let team = space
        .directory
        .change(|org, c| {
            let mut t = org.team(&id)?.clone();
            if let Some(name) = &input.name {
                check_team_name(org, name, Some(&t.id))?;
                t.name = name.clone();
            }
            if let Some(parent) = &input.parent_id {
                t.parent_id = Some(check_parent(org, Some(&t.id), parent)?);
            }
            if input.description.is_some() {
                t.description = input.description.clone();
            }
            if input.external_id.is_some() {
                t.external_id = input.external_id.clone();
            }
            c.event("team.updated", &t.id, json!({"name": t.name}));
            c.put(Record::Team(t.clone()));
            Ok(t)
        })
        .await?;
    Ok(Json(team))
}

/// Archiving keeps the team's record; it grants nothing any more.
async fn archive_team(
    State(space): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    caller.admin()?;
    space
        .directory
        .change(|org, c| {
            let mut t = org.team(&id)?.clone();
            t.archived = true;
            c.event("team.archived", &t.id, json!({"name": t.name}));
            c.put(Record::Team(t));
            Ok(())
        })
        .await?;
    Ok(StatusCode::OK)
}

/// Disbanding removes the team, its memberships and its project grants.
async fn disband_team(
    State(space): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    caller.admin()?;
    space
        .directory
        .change(|org, c| {
            let t = org.team(&id)?.clone();
            if org
                .teams
                .values()
                .any(|child| child.parent_id.as_deref() == Some(&t.id))
            {
                return Err(ApiError::bad_request(
                    "the team has subteams; move or disband them first",
                ));
            }
            for m in org.memberships.values().filter(|m| m.team_id == t.id) {
                c.remove(Record::Membership(m.clone()));
            }
            for g in org
                .grants
                .iter()
                .filter(|g| g.grantee == Grantee::Team(t.id.clone()))
            {
                c.remove(Record::Grant(g.clone()));
            }
            c.event("team.disbanded", &t.id, json!({"name": t.name}));
            c.remove(Record::Team(t));
            Ok(())
        })
        .await?;
    Ok(StatusCode::OK)
}

async fn direct_members(
    State(space): State<Shared>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let org = space.directory.read();
    let team = org.team(&id)?;
    let data: Vec<&Profile> = org
        .memberships
        .values()
        .filter(|m| m.team_id == team.id)
        .filter_map(|m| org.profiles.get(&m.member))
        .collect();
    Ok(Json(json!(data)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembershipIn {
    member: String,
    team_id: String,
    role_id: Option<String>,
    #[serde(default)]
    lead: bool,
}

#[derive(Debug, Deserialize)]
struct MembershipQuery {
    profiles: Option<String>,
    teams: Option<String>,
}

async fn list_memberships(
    State(space): State<Shared>,
    _caller: Caller,
    Query(q): Query<MembershipQuery>,
) -> Result<Json<Value>> {
    let org = space.directory.read();
    let split = |s: &Option<String>| -> Option<Vec<String>> {
        s.as_ref()
            .map(|s| s.split(',').map(|x| x.trim().to_owned()).collect())
    };
    let profiles = split(&q.profiles)
        .map(|ids| {
            ids.iter()
                .map(|i| org.profile(i).map(|p| p.id.clone()))
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    let teams = split(&q.teams);
    let data: Vec<&Membership> = org
        .memberships
        .values()
        .filter(|m| profiles.as_ref().is_none_or(|p| p.contains(&m.member)))
        .filter(|m| teams.as_ref().is_none_or(|t| t.contains(&m.team_id)))
        .collect();
    Ok(Json(
        json!({"next": data.len().to_string(), "totalCount": data.len(), "data": data}),
    ))
}

async fn create_membership(
    State(space): State<Shared>,
    caller: Caller,
    raw: Bytes,
) -> Result<Json<Membership>> {
    caller.admin()?;
    let input: MembershipIn = body(&raw)?;
    let m = space
        .directory
        .change(|org, c| {
            let p = org.profile(&input.member)?;
            let t = org.team(&input.team_id)?;
            if let Some(existing) = org.memberships_of(&p.id).find(|m| m.team_id == t.id) {
                return Ok(existing.clone());
            }
            let m = Membership {
                id: new_id(),
                member: p.id.clone(),
                team_id: t.id.clone(),
                role_id: input.role_id.clone(),
                lead: input.lead,
            };
            c.event(
                "membership.created",
                &p.id,
                json!({"team": t.id, "membership": m.id}),
            );
            c.put(Record::Membership(m.clone()));
            Ok(m)
        })
        .await?;
    Ok(Json(m))
}

async fn delete_membership(
    State(space): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    caller.admin()?;
    space
        .directory
        .change(|org, c| {
            let m = org
                .memberships
                .get(&id)
                .ok_or_else(|| ApiError::not_found(format!("membership '{id}' not found")))?;
            c.event(
                "membership.deleted",
                &m.member,
                json!({"team": m.team_id, "membership": m.id}),
            );
            if !space.quirk("membership-delete-ignored") {
                c.remove(Record::Membership(m.clone()));
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::OK)
}

// -- projects, repositories, access ---------------------------------------------------------

#[derive(Debug, Deserialize)]
struct ProjectIn {
    key: Value,
    name: String,
    #[serde(default = "yes")]
    private: bool,
}

fn yes() -> bool {
    true
}

async fn list_projects(
    State(space): State<Shared>,
    _caller: Caller,
    Query(paging): Query<Paging>,
) -> Result<Json<Value>> {
    let items: Vec<Project> = space.directory.read().projects.values().cloned().collect();
    batch(items, &paging)
}

async fn create_project(
    State(space): State<Shared>,
    caller: Caller,
    raw: Bytes,
) -> Result<Json<Project>> {
    caller.admin()?;
    let input: ProjectIn = body(&raw)?;
    // Space sends the key as `{"key": "ABC"}`; a bare string is accepted too.
    let key = match &input.key {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    };
    if key.is_empty()
        || !key
            .chars()
            .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '-')
    {
        return Err(ApiError::bad_request(format!(
            "project key '{key}' must be upper-case letters, digits and '-'"
        )));
    }
    let project = space
        .directory
        .change(|org, c| {
            if org.projects.values().any(|p| p.key == key) {
                return Err(ApiError::conflict(format!("project key '{key}' is taken")));
            }
            let p = Project {
                id: new_id(),
                key: key.clone(),
                name: input.name.clone(),
                private: input.private,
            };
            c.event("project.created", &p.id, json!({"key": p.key}));
            c.put(Record::Project(p.clone()));
            Ok(p)
        })
        .await?;
    Ok(Json(project))
}

async fn read_project(
    State(space): State<Shared>,
    _caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<Project>> {
    space.directory.read().project(&project).cloned().map(Json)
}

async fn list_repositories(
    State(space): State<Shared>,
    _caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<Value>> {
    let org = space.directory.read();
    let p = org.project(&project)?;
    let data: Vec<&Repository> = org
        .repositories
        .iter()
        .filter(|r| r.project_id == p.id)
        .collect();
    Ok(Json(json!({"repos": data})))
}

async fn create_repository(
    State(space): State<Shared>,
    caller: Caller,
    Path((project, name)): Path<(String, String)>,
) -> Result<Json<Repository>> {
    caller.admin()?;
    if name.is_empty()
        || !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
    {
        return Err(ApiError::bad_request(format!(
            "repository name '{name}' may hold letters, digits, '-', '_' and '.'"
        )));
    }
    let repo = space
        .directory
        .change(|org, c| {
            let p = org.project(&project)?;
            let r = Repository {
                project_id: p.id.clone(),
                name: name.clone(),
            };
            if org.repositories.contains(&r) {
                return Err(ApiError::conflict(format!(
                    "repository '{name}' exists in {}",
                    p.key
                )));
            }
            c.event("repository.created", &p.id, json!({"repository": name}));
            c.put(Record::Repository(r.clone()));
            Ok(r)
        })
        .await?;
    Ok(Json(repo))
}

/// A personal token reads a repository only with `repo.read` on its project.
async fn read_repository(
    State(space): State<Shared>,
    caller: Caller,
    Path((project, name)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let org = space.directory.read();
    let p = org.project(&project)?;
    let repo = Repository {
        project_id: p.id.clone(),
        name: name.clone(),
    };
    if !org.repositories.contains(&repo) {
        return Err(ApiError::not_found(format!(
            "repository '{name}' not found in {}",
            p.key
        )));
    }
    if let Caller::Profile(id) = &caller {
        let profile = org.profile(&format!("id:{id}"))?;
        let may = org
            .effective(&space.rules, profile)
            .get(&p.id)
            .is_some_and(|a| a.permissions.contains("repo.read"));
        if !may {
            return Err(ApiError::forbidden(format!(
                "no read access to {}/{name}",
                p.key
            )));
        }
    }
    Ok(Json(json!({"project": p.key, "name": name})))
}

fn role_of(path_role: &str) -> Result<&'static str> {
    let role = match path_role {
        "admins" => "admin",
        "members" => "member",
        "collaborators" => "collaborator",
        other => {
            return Err(ApiError::not_found(format!(
                "no access list '{other}': use admins, members or collaborators"
            )))
        }
    };
    debug_assert!(GRANTABLE_ROLES.contains(&role));
    Ok(role)
}

async fn read_access(
    State(space): State<Shared>,
    _caller: Caller,
    Path((project, role)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let org = space.directory.read();
    let p = org.project(&project)?;
    let role = role_of(&role)?;
    let mut profiles = Vec::new();
    let mut teams = Vec::new();
    for g in org
        .grants
        .iter()
        .filter(|g| g.project_id == p.id && g.role == role)
    {
        match &g.grantee {
            Grantee::Profile(id) => profiles.extend(org.profiles.get(id)),
            Grantee::Team(id) => teams.extend(org.teams.get(id)),
        }
    }
    Ok(Json(json!({"profiles": profiles, "teams": teams})))
}

/// The body of a grant: `{"profile": "..."}` under `profiles`, `{"teamId": "..."}` under `teams`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GranteeRef {
    profile: Option<String>,
    team_id: Option<String>,
}

/// Which list an access path names: `profiles` or `teams`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum GranteeKind {
    Profile,
    Team,
}

fn grantee_kind(segment: &str) -> Result<GranteeKind> {
    match segment {
        "profiles" => Ok(GranteeKind::Profile),
        "teams" => Ok(GranteeKind::Team),
        other => Err(ApiError::not_found(format!(
            "no grantee list '{other}': use profiles or teams"
        ))),
    }
}

/// The grantee `id` names: a profile identifier or a team id.
fn grantee(org: &Org, kind: GranteeKind, id: &str) -> Result<Grantee> {
    Ok(match kind {
        GranteeKind::Profile => Grantee::Profile(org.profile(id)?.id.clone()),
        GranteeKind::Team => Grantee::Team(org.team(id)?.id.clone()),
    })
}

async fn change_grant(
    space: &Space,
    project: &str,
    role: &str,
    grantee: impl FnOnce(&Org) -> Result<Grantee>,
    add: bool,
) -> Result<StatusCode> {
    let role = role_of(role)?;
    space
        .directory
        .change(|org, c| {
            let p = org.project(project)?;
            let g = Grant {
                project_id: p.id.clone(),
                role: role.to_owned(),
                grantee: grantee(org)?,
            };
            let present = org.grants.contains(&g);
            let subject = match &g.grantee {
                Grantee::Profile(id) | Grantee::Team(id) => id.clone(),
            };
            let data = json!({"project": p.key, "role": role, "grantee": g.grantee});
            match (add, present) {
                (true, false) => {
                    c.event("access.granted", &subject, data);
                    c.put(Record::Grant(g));
                }
                (false, true) => {
                    c.event("access.revoked", &subject, data);
                    c.remove(Record::Grant(g));
                }
                (false, false) => {
                    return Err(ApiError::not_found(format!(
                        "no {role} grant of {} to remove",
                        p.key
                    )))
                }
                (true, true) => {}
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::OK)
}

async fn grant(
    State(space): State<Shared>,
    caller: Caller,
    Path((project, role, list)): Path<(String, String, String)>,
    raw: Bytes,
) -> Result<StatusCode> {
    caller.admin()?;
    let kind = grantee_kind(&list)?;
    let input: GranteeRef = body(&raw)?;
    let id = match kind {
        GranteeKind::Profile => input.profile,
        GranteeKind::Team => input.team_id,
    }
    .ok_or_else(|| {
        ApiError::bad_request(format!(
            "a grant to {list} names its grantee: {{\"profile\": ...}} for profiles, {{\"teamId\": ...}} for teams"
        ))
    })?;
    change_grant(&space, &project, &role, |org| grantee(org, kind, &id), true).await
}

async fn revoke(
    State(space): State<Shared>,
    caller: Caller,
    Path((project, role, list, id)): Path<(String, String, String, String)>,
) -> Result<StatusCode> {
    caller.admin()?;
    let kind = grantee_kind(&list)?;
    change_grant(
        &space,
        &project,
        &role,
        |org| grantee(org, kind, &id),
        false,
    )
    .await
}

async fn member_profiles(
    State(space): State<Shared>,
    _caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<Value>> {
    let org = space.directory.read();
    let p = org.project(&project)?;
    let data: Vec<&Profile> = org
        .profiles
        .values()
        .filter(|profile| {
            org.effective(&space.rules, profile)
                .get(&p.id)
                .is_some_and(|a| a.roles.contains_key("member") || a.roles.contains_key("admin"))
        })
        .collect();
    Ok(Json(
        json!({"next": data.len().to_string(), "totalCount": data.len(), "data": data}),
    ))
}

// -- the oracle's view ----------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct PermissionQuery {
    project: Option<String>,
    repository: Option<String>,
}

/// What a profile may do: everywhere, on one project, or on one repository.
async fn permissions(
    State(space): State<Shared>,
    caller: Caller,
    Path(profile): Path<String>,
    Query(q): Query<PermissionQuery>,
) -> Result<Json<Value>> {
    caller.admin()?;
    let org = space.directory.read();
    let p = org.profile(&profile)?;
    let all = org.effective(&space.rules, p);
    let by_key: BTreeMap<String, _> = all
        .iter()
        .filter_map(|(pid, a)| org.projects.get(pid).map(|proj| (proj.key.clone(), a)))
        .collect();
    let Some(project) = q.project else {
        if q.repository.is_some() {
            return Err(ApiError::bad_request("repository needs project"));
        }
        return Ok(Json(json!({"profile": p.id, "username": p.username,
            "active": !p.archived, "projects": by_key})));
    };
    let proj = org.project(&project)?;
    if let Some(r) = &q.repository {
        let repo = Repository {
            project_id: proj.id.clone(),
            name: r.clone(),
        };
        if !org.repositories.contains(&repo) {
            return Err(ApiError::not_found(format!(
                "repository '{r}' not found in {}",
                proj.key
            )));
        }
    }
    let access = all.get(&proj.id).cloned().unwrap_or_default();
    let permissions: Vec<&String> = access
        .permissions
        .iter()
        .filter(|perm| q.repository.is_none() || perm.starts_with("repo."))
        .collect();
    Ok(Json(
        json!({"profile": p.id, "project": proj.key, "repository": q.repository,
        "roles": access.roles, "permissions": permissions}),
    ))
}
