//! The TeamCity REST API (`/app/rest/...`, JSON) over the model, and `/_sim/permissions`.
//!
//! Authentication: the server token given at start acts as a system administrator; an access
//! token acts as its user, who may read what their permissions allow and change only what
//! `SYSTEM_ADMIN` may (`change_user`, `manage_groups`, `manage_roles` at global scope).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{RestError, Result};
use crate::model::{
    digest, Assignment, Group, Holder, Project, Record, Scope, Server, Token, User, ROOT_PROJECT,
};
use crate::TeamCity;

type Shared = Arc<TeamCity>;

pub fn router(tc: Shared) -> Router {
    // Each collection answers with and without a trailing slash, as TeamCity's Jersey does
    // (teamcity-client lists `projects/?locator=`).
    let all_users = get(list_users).post(create_user);
    let all_groups = get(list_groups).post(create_group);
    let all_projects = get(list_projects).post(create_project);
    let users = Router::new()
        .route("/", all_users.clone())
        .route(
            "/{user}",
            get(read_user).put(replace_user).delete(delete_user),
        )
        .route(
            "/{user}/roles",
            get(user_roles).put(replace_user_roles).post(add_user_role),
        )
        .route(
            "/{user}/roles/{role}/{scope}",
            get(read_user_role)
                .put(put_user_role)
                .delete(delete_user_role),
        )
        .route(
            "/{user}/groups",
            get(user_groups)
                .put(replace_user_groups)
                .post(add_user_group),
        )
        .route(
            "/{user}/groups/{group}",
            get(read_user_group).delete(delete_user_group),
        )
        .route("/{user}/tokens", get(list_tokens).post(create_token))
        .route("/{user}/tokens/{name}", axum::routing::delete(delete_token))
        .route("/{user}/permissions", get(permissions))
        .route(
            "/{user}/properties/{name}",
            get(read_property).put(put_property).delete(delete_property),
        )
        .route("/{user}/{field}", get(read_field).put(put_field));
    let groups = Router::new()
        .route("/", all_groups.clone())
        .route("/{group}", get(read_group).delete(delete_group))
        .route("/{group}/name", axum::routing::put(rename_group))
        .route("/{group}/roles", get(group_roles).post(add_group_role))
        .route(
            "/{group}/roles/{role}/{scope}",
            axum::routing::put(put_group_role).delete(delete_group_role),
        )
        .route(
            "/{group}/parent-groups",
            get(parent_groups).put(replace_parent_groups),
        );
    let projects = Router::new()
        .route("/", all_projects.clone())
        .route("/{project}", get(read_project).delete(delete_project));
    let api = Router::new()
        .nest("/app/rest/users", users)
        .nest("/app/rest/userGroups", groups)
        .nest("/app/rest/projects", projects)
        .route("/app/rest/users/", all_users)
        .route("/app/rest/userGroups/", all_groups)
        .route("/app/rest/projects/", all_projects)
        .route("/app/rest/roles", get(list_roles))
        .route("/app/rest/server", get(server_info))
        .route("/app/rest/server/version", get(server_version));
    Router::new()
        .merge(api.clone())
        .nest(HTTP_AUTH, api)
        .route("/_sim/permissions/{user}", get(sim_permissions))
        .fallback(|| async { RestError::not_found("No such resource.") })
        .layer(axum::middleware::from_fn(crate::xml::negotiate))
        .with_state(tc)
}

/// The prefix of TeamCity's older REST URLs (`/httpAuth/app/rest/...`, HTTP Basic), which
/// older clients such as pyteamcity still use: the same API under it.
pub const HTTP_AUTH: &str = "/httpAuth";

/// Who is calling.
#[derive(Debug)]
enum Caller {
    Admin,
    User(u64),
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = RestError;

    async fn from_request_parts(parts: &mut Parts, tc: &Shared) -> Result<Caller> {
        // A token as a bearer, or in place of the password of HTTP Basic as TeamCity allows
        // (the server token as the super user's password, whatever the user name; a user's
        // access token with that user's name).
        let (user, token) = match scim::auth::basic(&parts.headers) {
            Some((user, password)) => (Some(user), password),
            None => {
                let bearer = scim::auth::credentials(&parts.headers, &["Bearer"])
                    .ok_or_else(|| RestError::unauthorized("Authentication required."))?;
                (None, bearer.to_owned())
            }
        };
        if scim::auth::is_one_of(&tc.admin_tokens, &token) {
            return Ok(Caller::Admin);
        }
        tc.store
            .read()
            .token_user(&token)
            .filter(|u| user.as_ref().is_none_or(|name| *name == u.username))
            .map(|u| Caller::User(u.id))
            .ok_or_else(|| RestError::unauthorized("Incorrect or expired access token."))
    }
}

impl Caller {
    /// Refuses a caller that lacks a global permission.
    fn require(&self, tc: &TeamCity, server: &Server, permission: &str) -> Result<()> {
        let Caller::User(id) = self else {
            return Ok(());
        };
        let allowed = server
            .users
            .get(id)
            .is_some_and(|u| server.global_permissions(&tc.roles, u).contains(permission));
        if allowed {
            Ok(())
        } else {
            Err(RestError::forbidden(format!(
                "You do not have enough permissions: {permission} is required."
            )))
        }
    }

    /// `current` means the caller's own user.
    fn locate<'a>(&self, server: &'a Server, locator: &str) -> Result<&'a User> {
        match (self, locator) {
            (Caller::User(id), "current") => server
                .users
                .get(id)
                .ok_or_else(|| RestError::not_found("The current user no longer exists.")),
            (Caller::Admin, "current") => Err(RestError::bad_request(
                "'current' needs a user's access token; the server token is no user.",
            )),
            _ => server.user(locator),
        }
    }

    /// Reading a user needs to be that user or to hold `change_user`.
    fn may_read(&self, tc: &TeamCity, server: &Server, user: &User) -> Result<()> {
        match self {
            Caller::User(id) if *id == user.id => Ok(()),
            _ => self.require(tc, server, "change_user"),
        }
    }
}

fn body<T: DeserializeOwned>(raw: &Bytes) -> Result<T> {
    serde_json::from_slice(raw).map_err(|e| RestError::bad_request(format!("Bad JSON: {e}")))
}

/// A plain-text value. Clients generated from TeamCity's API description (dohq-teamcity) send
/// it as a JSON string with `Content-Type: application/json`; that string is the value.
fn text(headers: &HeaderMap, raw: &Bytes) -> Result<String> {
    let value = String::from_utf8(raw.to_vec())
        .map_err(|_| RestError::bad_request("The body is not UTF-8 text."))?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    match serde_json::from_str::<Value>(&value) {
        Ok(Value::String(s)) if json => Ok(s),
        _ => Ok(value),
    }
}

fn user_href(u: &User) -> String {
    format!("/app/rest/users/id:{}", u.id)
}

fn role_json(a: &Assignment, href_base: &str) -> Value {
    json!({"roleId": a.role, "scope": a.scope, "href": format!("{href_base}/roles/{}/{}", a.role, a.scope)})
}

fn group_ref(g: &Group) -> Value {
    json!({"key": g.key, "name": g.name, "href": format!("/app/rest/userGroups/key:{}", g.key)})
}

fn user_json(server: &Server, u: &User) -> Value {
    let href = user_href(u);
    let roles: Vec<Value> = server
        .assignments
        .iter()
        .filter(|a| a.holder == Holder::User(u.id))
        .map(|a| role_json(a, &href))
        .collect();
    let groups: Vec<Value> = u
        .groups
        .iter()
        .filter_map(|k| server.groups.get(k))
        .map(group_ref)
        .collect();
    let properties: Vec<Value> = u
        .properties
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    json!({
        "id": u.id, "username": u.username, "name": u.name, "email": u.email, "href": href,
        "hasPassword": u.password_digest.is_some(),
        "properties": {"count": properties.len(), "property": properties},
        "roles": {"role": roles},
        "groups": {"count": groups.len(), "group": groups},
    })
}

fn group_json(server: &Server, g: &Group) -> Value {
    let href = format!("/app/rest/userGroups/key:{}", g.key);
    let roles: Vec<Value> = server
        .assignments
        .iter()
        .filter(|a| a.holder == Holder::Group(g.key.clone()))
        .map(|a| role_json(a, &href))
        .collect();
    let users: Vec<Value> = server
        .users
        .values()
        .filter(|u| u.groups.contains(&g.key))
        .map(|u| json!({"id": u.id, "username": u.username, "href": user_href(u)}))
        .collect();
    let parents: Vec<Value> = g
        .parents
        .iter()
        .filter_map(|k| server.groups.get(k))
        .map(group_ref)
        .collect();
    json!({"key": g.key, "name": g.name, "description": g.description, "href": href,
        "parent-groups": {"count": parents.len(), "group": parents},
        "users": {"count": users.len(), "user": users},
        "roles": {"role": roles}})
}

// -- users ----------------------------------------------------------------------------------

async fn list_users(State(tc): State<Shared>, caller: Caller) -> Result<Json<Value>> {
    let server = tc.store.read();
    caller.require(&tc, &server, "change_user")?;
    let users: Vec<Value> = server
        .users
        .values()
        .map(|u| json!({"id": u.id, "username": u.username, "name": u.name, "href": user_href(u)}))
        .collect();
    Ok(Json(json!({"count": users.len(), "user": users})))
}

#[derive(Debug, Deserialize)]
struct UserIn {
    username: Option<String>,
    name: Option<String>,
    email: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    properties: Option<PropertiesIn>,
    #[serde(default)]
    groups: Option<GroupsIn>,
    #[serde(default)]
    roles: Option<RolesIn>,
}

#[derive(Debug, Deserialize)]
struct PropertiesIn {
    #[serde(default)]
    property: Vec<PropertyIn>,
}

#[derive(Debug, Deserialize)]
struct PropertyIn {
    name: String,
    value: String,
}

#[derive(Debug, Deserialize)]
struct GroupsIn {
    #[serde(default)]
    group: Vec<GroupRef>,
}

#[derive(Debug, Deserialize)]
struct GroupRef {
    key: String,
}

#[derive(Debug, Deserialize)]
struct RolesIn {
    #[serde(default)]
    role: Vec<RoleIn>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleIn {
    role_id: String,
    scope: String,
}

fn check_username(server: &Server, username: &str, except: Option<u64>) -> Result<()> {
    if username.trim().is_empty() {
        return Err(RestError::bad_request("Username must not be empty."));
    }
    if server
        .user_by_name(username)
        .is_some_and(|u| Some(u.id) != except)
    {
        return Err(RestError::bad_request(
            "Cannot create user as user with the same username already exists",
        ));
    }
    Ok(())
}

/// Validates role assignments for a holder; unknown roles are 404, global-only roles at
/// project scope 400.
fn assignments(
    tc: &TeamCity,
    server: &Server,
    holder: &Holder,
    roles: &[RoleIn],
) -> Result<Vec<Assignment>> {
    roles
        .iter()
        .map(|r| assignment(tc, server, holder, &r.role_id, &r.scope))
        .collect()
}

fn assignment(
    tc: &TeamCity,
    server: &Server,
    holder: &Holder,
    role: &str,
    scope: &str,
) -> Result<Assignment> {
    let def = tc
        .roles
        .roles
        .get(role)
        .ok_or_else(|| RestError::not_found(format!("No role with id '{role}' found.")))?;
    let scope = Scope::parse(server, scope)?;
    if def.global_only && scope != Scope::Global {
        return Err(RestError::bad_request(format!(
            "Role '{role}' can only be granted globally."
        )));
    }
    Ok(Assignment {
        holder: holder.clone(),
        role: role.to_owned(),
        scope: scope.text(),
    })
}

fn group_keys(server: &Server, refs: &[GroupRef]) -> Result<std::collections::BTreeSet<String>> {
    refs.iter()
        .map(|g| server.group(&g.key).map(|g| g.key.clone()))
        .collect()
}

async fn create_user(State(tc): State<Shared>, caller: Caller, raw: Bytes) -> Result<Json<Value>> {
    let input: UserIn = body(&raw)?;
    let user = tc
        .store
        .change(|server, c| {
            caller.require(&tc, server, "create_user")?;
            let username = input.username.clone().unwrap_or_default();
            check_username(server, &username, None)?;
            let user = User {
                id: server.next_user_id(),
                username,
                name: input.name.clone(),
                email: input.email.clone(),
                properties: input
                    .properties
                    .iter()
                    .flat_map(|p| &p.property)
                    .map(|p| (p.name.clone(), p.value.clone()))
                    .collect(),
                groups: group_keys(server, input.groups.as_ref().map_or(&[][..], |g| &g.group))?,
                password_digest: input.password.as_deref().map(digest),
            };
            let holder = Holder::User(user.id);
            for a in assignments(
                &tc,
                server,
                &holder,
                input.roles.as_ref().map_or(&[][..], |r| &r.role),
            )? {
                c.put(Record::Assignment(a));
            }
            c.event(
                "user.created",
                &user.id.to_string(),
                json!({"username": user.username}),
            );
            c.put(Record::User(user.clone()));
            Ok(user)
        })
        .await?;
    Ok(Json(user_json(&tc.store.read(), &user)))
}

async fn read_user(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
) -> Result<Json<Value>> {
    let server = tc.store.read();
    let user = caller.locate(&server, &locator)?;
    caller.may_read(&tc, &server, user)?;
    Ok(Json(user_json(&server, user)))
}

/// PUT replaces the user's fields (username, name, email, properties; groups and roles too
/// when the body has them).
async fn replace_user(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let input: UserIn = body(&raw)?;
    let user = change_user(&tc, &caller, &locator, "user.updated", |server, c, user| {
        if let Some(u) = &input.username {
            check_username(server, u, Some(user.id))?;
            user.username = u.clone();
        }
        user.name = input.name.clone();
        user.email = input.email.clone();
        if let Some(p) = &input.properties {
            user.properties = p
                .property
                .iter()
                .map(|p| (p.name.clone(), p.value.clone()))
                .collect();
        }
        if let Some(g) = &input.groups {
            user.groups = group_keys(server, &g.group)?;
        }
        if let Some(r) = &input.roles {
            replace_roles(&tc, server, c, &Holder::User(user.id), &r.role)?;
        }
        Ok(json!({"username": user.username}))
    })
    .await?;
    Ok(Json(user_json(&tc.store.read(), &user)))
}

/// Edits one user in one batch, recorded as `event` with the data `edit` returns; the caller
/// needs `change_user`. Returns the user as stored.
async fn change_user(
    tc: &TeamCity,
    caller: &Caller,
    locator: &str,
    event: &str,
    edit: impl FnOnce(&Server, &mut mockkit::sim::Changes<Record>, &mut User) -> Result<Value>,
) -> Result<User> {
    tc.store
        .change(|server, c| {
            caller.require(tc, server, "change_user")?;
            let mut user = caller.locate(server, locator)?.clone();
            let data = edit(server, c, &mut user)?;
            c.event(event, &user.id.to_string(), data);
            c.put(Record::User(user.clone()));
            Ok(user)
        })
        .await
}

fn replace_roles(
    tc: &TeamCity,
    server: &Server,
    c: &mut mockkit::sim::Changes<Record>,
    holder: &Holder,
    roles: &[RoleIn],
) -> Result<()> {
    let wanted = assignments(tc, server, holder, roles)?;
    for a in server.assignments.iter().filter(|a| a.holder == *holder) {
        if !wanted.contains(a) {
            c.remove(Record::Assignment(a.clone()));
        }
    }
    for a in wanted {
        c.put(Record::Assignment(a));
    }
    Ok(())
}

/// Removes the user with their tokens and role assignments.
async fn delete_user(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
) -> Result<StatusCode> {
    tc.store
        .change(|server, c| {
            caller.require(&tc, server, "change_user")?;
            let user = caller.locate(server, &locator)?.clone();
            for t in server.tokens.values().filter(|t| t.user == user.id) {
                c.remove(Record::Token(t.clone()));
            }
            for a in server
                .assignments
                .iter()
                .filter(|a| a.holder == Holder::User(user.id))
            {
                c.remove(Record::Assignment(a.clone()));
            }
            c.event(
                "user.deleted",
                &user.id.to_string(),
                json!({"username": user.username}),
            );
            c.remove(Record::User(user));
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// -- a user's fields and properties (text/plain) ---------------------------------------------

fn plain(s: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], s).into_response()
}

async fn read_field(
    State(tc): State<Shared>,
    caller: Caller,
    Path((locator, field)): Path<(String, String)>,
) -> Result<Response> {
    let server = tc.store.read();
    let user = caller.locate(&server, &locator)?;
    caller.may_read(&tc, &server, user)?;
    let value = match field.as_str() {
        "id" => Some(user.id.to_string()),
        "username" => Some(user.username.clone()),
        "name" => user.name.clone(),
        "email" => user.email.clone(),
        other => {
            return Err(RestError::bad_request(format!(
                "Unknown field '{other}'. Supported: id, username, name, email."
            )))
        }
    };
    Ok(plain(value.unwrap_or_default()))
}

async fn put_field(
    State(tc): State<Shared>,
    caller: Caller,
    Path((locator, field)): Path<(String, String)>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response> {
    let value = text(&headers, &raw)?;
    change_user(&tc, &caller, &locator, "user.updated", |server, _, user| {
        match field.as_str() {
            "username" => {
                check_username(server, &value, Some(user.id))?;
                user.username = value.clone();
            }
            "name" => user.name = Some(value.clone()),
            "email" => user.email = Some(value.clone()),
            other => {
                return Err(RestError::bad_request(format!(
                    "Field '{other}' cannot be set. Settable: username, name, email."
                )))
            }
        }
        Ok(json!({"field": field}))
    })
    .await?;
    Ok(plain(value))
}

async fn read_property(
    State(tc): State<Shared>,
    caller: Caller,
    Path((locator, name)): Path<(String, String)>,
) -> Result<Response> {
    let server = tc.store.read();
    let user = caller.locate(&server, &locator)?;
    caller.may_read(&tc, &server, user)?;
    user.properties
        .get(&name)
        .map(|v| plain(v.clone()))
        .ok_or_else(|| RestError::not_found(format!("No property '{name}' found.")))
}

async fn put_property(
    State(tc): State<Shared>,
    caller: Caller,
    Path((locator, name)): Path<(String, String)>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response> {
    let value = text(&headers, &raw)?;
    change_user(&tc, &caller, &locator, "user.property.set", |_, _, user| {
        user.properties.insert(name.clone(), value.clone());
        Ok(json!({"name": name}))
    })
    .await?;
    Ok(plain(value))
}

async fn delete_property(
    State(tc): State<Shared>,
    caller: Caller,
    Path((locator, name)): Path<(String, String)>,
) -> Result<StatusCode> {
    change_user(
        &tc,
        &caller,
        &locator,
        "user.property.removed",
        |_, _, user| {
            if user.properties.remove(&name).is_none() {
                return Err(RestError::not_found(format!("No property '{name}' found.")));
            }
            Ok(json!({"name": name}))
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// -- roles ----------------------------------------------------------------------------------

fn holder_roles(server: &Server, holder: &Holder, href: &str) -> Value {
    let roles: Vec<Value> = server
        .assignments
        .iter()
        .filter(|a| a.holder == *holder)
        .map(|a| role_json(a, href))
        .collect();
    json!({"role": roles})
}

async fn user_roles(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
) -> Result<Json<Value>> {
    let server = tc.store.read();
    let user = caller.locate(&server, &locator)?;
    caller.may_read(&tc, &server, user)?;
    Ok(Json(holder_roles(
        &server,
        &Holder::User(user.id),
        &user_href(user),
    )))
}

/// Changes one holder's role assignments and records it.
async fn change_roles(
    tc: &TeamCity,
    caller: &Caller,
    locate: impl FnOnce(&Server) -> Result<(Holder, String)>,
    edit: impl FnOnce(
        &TeamCity,
        &Server,
        &Holder,
        &mut mockkit::sim::Changes<Record>,
    ) -> Result<Option<Assignment>>,
) -> Result<(Option<Assignment>, String)> {
    tc.store
        .change(|server, c| {
            caller.require(tc, server, "manage_roles")?;
            let (holder, href) = locate(server)?;
            let out = edit(tc, server, &holder, c)?;
            let subject = match &holder {
                Holder::User(id) => id.to_string(),
                Holder::Group(key) => key.clone(),
            };
            c.event("roles.changed", &subject, json!({"holder": holder}));
            Ok((out, href))
        })
        .await
}

fn user_holder(caller: &Caller, locator: &str) -> impl FnOnce(&Server) -> Result<(Holder, String)> {
    let locator = locator.to_owned();
    let current = match caller {
        Caller::User(id) => Some(*id),
        Caller::Admin => None,
    };
    move |server| {
        let user = match (current, locator.as_str()) {
            (Some(id), "current") => server
                .users
                .get(&id)
                .ok_or_else(|| RestError::not_found("no current user"))?,
            _ => server.user(&locator)?,
        };
        Ok((Holder::User(user.id), user_href(user)))
    }
}

fn group_holder(locator: &str) -> impl FnOnce(&Server) -> Result<(Holder, String)> {
    let locator = locator.to_owned();
    move |server| {
        let g = server.group(&locator)?;
        Ok((
            Holder::Group(g.key.clone()),
            format!("/app/rest/userGroups/key:{}", g.key),
        ))
    }
}

async fn replace_user_roles(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let input: RolesIn = body(&raw)?;
    let (_, _) = change_roles(
        &tc,
        &caller,
        user_holder(&caller, &locator),
        |tc, server, holder, c| replace_roles(tc, server, c, holder, &input.role).map(|_| None),
    )
    .await?;
    user_roles(State(tc), caller, Path(locator)).await
}

async fn add_user_role(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let input: RoleIn = body(&raw)?;
    add_role(
        &tc,
        &caller,
        user_holder(&caller, &locator),
        &input.role_id,
        &input.scope,
    )
    .await
}

async fn put_user_role(
    State(tc): State<Shared>,
    caller: Caller,
    Path((locator, role, scope)): Path<(String, String, String)>,
) -> Result<Json<Value>> {
    add_role(&tc, &caller, user_holder(&caller, &locator), &role, &scope).await
}

async fn add_role(
    tc: &TeamCity,
    caller: &Caller,
    locate: impl FnOnce(&Server) -> Result<(Holder, String)>,
    role: &str,
    scope: &str,
) -> Result<Json<Value>> {
    let (a, href) = change_roles(tc, caller, locate, |tc, server, holder, c| {
        let a = assignment(tc, server, holder, role, scope)?;
        c.put(Record::Assignment(a.clone()));
        Ok(Some(a))
    })
    .await?;
    let a = a.ok_or_else(|| RestError::new(500, "OperationException", "no assignment"))?;
    Ok(Json(role_json(&a, &href)))
}

async fn remove_role(
    tc: &TeamCity,
    caller: &Caller,
    locate: impl FnOnce(&Server) -> Result<(Holder, String)>,
    role: &str,
    scope: &str,
) -> Result<StatusCode> {
    change_roles(tc, caller, locate, |_, server, holder, c| {
        let scope = Scope::parse(server, scope)?.text();
        let a = Assignment {
            holder: holder.clone(),
            role: role.to_owned(),
            scope,
        };
        if !server.assignments.contains(&a) {
            return Err(RestError::not_found(format!(
                "No role assignment '{role}' at '{}' found.",
                a.scope
            )));
        }
        c.remove(Record::Assignment(a));
        Ok(None)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn read_user_role(
    State(tc): State<Shared>,
    caller: Caller,
    Path((locator, role, scope)): Path<(String, String, String)>,
) -> Result<Json<Value>> {
    let server = tc.store.read();
    let user = caller.locate(&server, &locator)?;
    caller.may_read(&tc, &server, user)?;
    let a = Assignment {
        holder: Holder::User(user.id),
        role,
        scope: Scope::parse(&server, &scope)?.text(),
    };
    if server.assignments.contains(&a) {
        Ok(Json(role_json(&a, &user_href(user))))
    } else {
        Err(RestError::not_found("No such role assignment."))
    }
}

async fn delete_user_role(
    State(tc): State<Shared>,
    caller: Caller,
    Path((locator, role, scope)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    remove_role(&tc, &caller, user_holder(&caller, &locator), &role, &scope).await
}

async fn group_roles(
    State(tc): State<Shared>,
    _caller: Caller,
    Path(locator): Path<String>,
) -> Result<Json<Value>> {
    let server = tc.store.read();
    let g = server.group(&locator)?;
    let href = format!("/app/rest/userGroups/key:{}", g.key);
    Ok(Json(holder_roles(
        &server,
        &Holder::Group(g.key.clone()),
        &href,
    )))
}

async fn add_group_role(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let input: RoleIn = body(&raw)?;
    add_role(
        &tc,
        &caller,
        group_holder(&locator),
        &input.role_id,
        &input.scope,
    )
    .await
}

async fn put_group_role(
    State(tc): State<Shared>,
    caller: Caller,
    Path((locator, role, scope)): Path<(String, String, String)>,
) -> Result<Json<Value>> {
    add_role(&tc, &caller, group_holder(&locator), &role, &scope).await
}

async fn delete_group_role(
    State(tc): State<Shared>,
    caller: Caller,
    Path((locator, role, scope)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    remove_role(&tc, &caller, group_holder(&locator), &role, &scope).await
}

/// The version this simulator answers as; the build number says it is not a real server.
const VERSION: (u32, u32, &str) = (2025, 7, "2025.07 (build 0, scimlab mock-teamcity)");

/// `/app/rest/server`: what many TeamCity clients read first (version, then the entry points).
async fn server_info(_caller: Caller) -> Json<Value> {
    let (major, minor, version) = VERSION;
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%S%z").to_string();
    let link = |path: &str| json!({"href": format!("/app/rest/{path}")});
    Json(json!({
        "version": version, "versionMajor": major, "versionMinor": minor,
        "buildNumber": "0", "currentTime": now, "role": "main_node",
        "projects": link("projects"), "users": link("users"), "userGroups": link("userGroups"),
    }))
}

/// `/app/rest/server/version`: the version as plain text.
async fn server_version(_caller: Caller) -> &'static str {
    VERSION.2
}

async fn list_roles(State(tc): State<Shared>, _caller: Caller) -> Json<Value> {
    let roles: Vec<Value> = tc
        .roles
        .roles
        .iter()
        .map(|(id, def)| json!({"id": id, "name": def.name, "href": format!("/app/rest/roles/id:{id}"),
            "permissions": {"permission": def.permissions.iter().map(|p| json!({"id": p})).collect::<Vec<_>>()},
            "included": {"role": def.includes.iter().map(|r| json!({"id": r})).collect::<Vec<_>>()}}))
        .collect();
    Json(json!({"role": roles}))
}

// -- a user's groups (membership is edited from the user's side) -----------------------------

async fn user_groups(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
) -> Result<Json<Value>> {
    let server = tc.store.read();
    let user = caller.locate(&server, &locator)?;
    caller.may_read(&tc, &server, user)?;
    let groups: Vec<Value> = user
        .groups
        .iter()
        .filter_map(|k| server.groups.get(k))
        .map(group_ref)
        .collect();
    Ok(Json(json!({"count": groups.len(), "group": groups})))
}

async fn change_membership(
    tc: &TeamCity,
    caller: &Caller,
    locator: &str,
    edit: impl FnOnce(&Server, &mut User) -> Result<()>,
) -> Result<User> {
    tc.store
        .change(|server, c| {
            caller.require(tc, server, "manage_groups")?;
            let mut user = caller.locate(server, locator)?.clone();
            let before = user.groups.clone();
            edit(server, &mut user)?;
            if user.groups != before {
                c.event(
                    "user.groups.changed",
                    &user.id.to_string(),
                    json!({"added": user.groups.difference(&before).collect::<Vec<_>>(),
                           "removed": before.difference(&user.groups).collect::<Vec<_>>()}),
                );
                c.put(Record::User(user.clone()));
            }
            Ok(user)
        })
        .await
}

async fn replace_user_groups(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let input: GroupsIn = body(&raw)?;
    change_membership(&tc, &caller, &locator, |server, user| {
        user.groups = group_keys(server, &input.group)?;
        Ok(())
    })
    .await?;
    user_groups(State(tc), caller, Path(locator)).await
}

async fn add_user_group(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let input: GroupRef = body(&raw)?;
    let mut key = String::new();
    change_membership(&tc, &caller, &locator, |server, user| {
        key = server.group(&input.key)?.key.clone();
        user.groups.insert(key.clone());
        Ok(())
    })
    .await?;
    let server = tc.store.read();
    Ok(Json(group_ref(server.group(&key)?)))
}

async fn read_user_group(
    State(tc): State<Shared>,
    caller: Caller,
    Path((locator, group)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let server = tc.store.read();
    let user = caller.locate(&server, &locator)?;
    caller.may_read(&tc, &server, user)?;
    let g = server.group(&group)?;
    if user.groups.contains(&g.key) {
        Ok(Json(group_ref(g)))
    } else {
        Err(RestError::not_found(format!(
            "User is not a member of group '{}'.",
            g.key
        )))
    }
}

async fn delete_user_group(
    State(tc): State<Shared>,
    caller: Caller,
    Path((locator, group)): Path<(String, String)>,
) -> Result<StatusCode> {
    change_membership(&tc, &caller, &locator, |server, user| {
        let key = server.group(&group)?.key.clone();
        if !user.groups.remove(&key) {
            return Err(RestError::not_found(format!(
                "User is not a member of group '{key}'."
            )));
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// -- tokens ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenIn {
    name: Option<String>,
    expiration_time: Option<String>,
}

/// The value is returned once, at creation.
async fn create_token(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let input: TokenIn = body(&raw)?;
    let name = input
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| RestError::bad_request("Token name must not be empty."))?;
    if let Some(e) = &input.expiration_time {
        chrono::DateTime::parse_from_rfc3339(e).map_err(|_| {
            RestError::bad_request(format!("expirationTime '{e}' is not an ISO 8601 time."))
        })?;
    }
    let value = format!("eyJ0eXAiOiAiVENWMiJ9.{}", uuid::Uuid::new_v4().simple());
    let token = tc
        .store
        .change(|server, c| {
            let user = caller.locate(server, &locator)?.clone();
            if !matches!(caller, Caller::User(id) if id == user.id) {
                caller.require(&tc, server, "change_user")?;
            }
            if server.tokens.contains_key(&(user.id, name.clone())) {
                return Err(RestError::bad_request(format!(
                    "Token with name '{name}' already exists."
                )));
            }
            let t = Token {
                user: user.id,
                name: name.clone(),
                creation_time: chrono::Utc::now().to_rfc3339(),
                expiration_time: input.expiration_time.clone(),
                digest: digest(&value),
            };
            c.event("token.created", &user.id.to_string(), json!({"name": name}));
            c.put(Record::Token(t.clone()));
            Ok(t)
        })
        .await?;
    Ok(Json(
        json!({"name": token.name, "creationTime": token.creation_time,
        "expirationTime": token.expiration_time, "value": value}),
    ))
}

async fn list_tokens(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
) -> Result<Json<Value>> {
    let server = tc.store.read();
    let user = caller.locate(&server, &locator)?;
    caller.may_read(&tc, &server, user)?;
    let tokens: Vec<Value> = server
        .tokens
        .values()
        .filter(|t| t.user == user.id)
        .map(|t| json!({"name": t.name, "creationTime": t.creation_time, "expirationTime": t.expiration_time}))
        .collect();
    Ok(Json(json!({"count": tokens.len(), "token": tokens})))
}

async fn delete_token(
    State(tc): State<Shared>,
    caller: Caller,
    Path((locator, name)): Path<(String, String)>,
) -> Result<StatusCode> {
    tc.store
        .change(|server, c| {
            let user = caller.locate(server, &locator)?.clone();
            if !matches!(caller, Caller::User(id) if id == user.id) {
                caller.require(&tc, server, "change_user")?;
            }
            let t = server
                .tokens
                .get(&(user.id, name.clone()))
                .ok_or_else(|| RestError::not_found(format!("No token '{name}' found.")))?;
            c.event("token.deleted", &user.id.to_string(), json!({"name": name}));
            if !tc.quirk("token-delete-ignored") {
                c.remove(Record::Token(t.clone()));
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// -- permissions ----------------------------------------------------------------------------

fn permissions_json(tc: &TeamCity, server: &Server, user: &User) -> Value {
    let p = server.permissions(&tc.roles, user);
    let mut list = Vec::new();
    for perm in &p.global {
        list.push(json!({"id": perm, "global": true}));
    }
    for (project, perms) in &p.per_project {
        for perm in perms.iter().filter(|perm| !p.global.contains(*perm)) {
            list.push(json!({"id": perm, "global": false, "project": {"id": project}}));
        }
    }
    json!({"count": list.len(), "permission": list})
}

async fn permissions(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
) -> Result<Json<Value>> {
    let server = tc.store.read();
    let user = caller.locate(&server, &locator)?;
    caller.may_read(&tc, &server, user)?;
    Ok(Json(permissions_json(&tc, &server, user)))
}

/// The oracle's view: per project, every permission the user holds.
async fn sim_permissions(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
) -> Result<Json<Value>> {
    let server = tc.store.read();
    caller.require(&tc, &server, "change_user")?;
    let user = server.user(&locator)?;
    let p = server.permissions(&tc.roles, user);
    Ok(Json(json!({"user": user.id, "username": user.username,
        "global": p.global, "projects": p.per_project})))
}

// -- groups ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct GroupIn {
    key: Option<String>,
    name: Option<String>,
    description: Option<String>,
    #[serde(rename = "parent-groups")]
    parent_groups: Option<GroupsIn>,
}

async fn list_groups(State(tc): State<Shared>, _caller: Caller) -> Json<Value> {
    let server = tc.store.read();
    let groups: Vec<Value> = server.groups.values().map(group_ref).collect();
    Json(json!({"count": groups.len(), "group": groups}))
}

/// The keys a group may not take as parents: itself and its descendants.
fn descendants(server: &Server, key: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::from([key.to_owned()]);
    loop {
        let more: Vec<String> = server
            .groups
            .values()
            .filter(|g| !out.contains(&g.key) && g.parents.iter().any(|p| out.contains(p)))
            .map(|g| g.key.clone())
            .collect();
        if more.is_empty() {
            return out;
        }
        out.extend(more);
    }
}

async fn create_group(State(tc): State<Shared>, caller: Caller, raw: Bytes) -> Result<Json<Value>> {
    let input: GroupIn = body(&raw)?;
    let group = tc
        .store
        .change(|server, c| {
            caller.require(&tc, server, "manage_groups")?;
            let name = input
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| RestError::bad_request("Group name must not be empty."))?;
            let key = input.key.clone().unwrap_or_else(|| {
                name.to_uppercase()
                    .chars()
                    .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '_' })
                    .collect()
            });
            if server.groups.contains_key(&key) {
                return Err(RestError::bad_request(format!(
                    "Group with key '{key}' already exists."
                )));
            }
            if server.groups.values().any(|g| g.name == name) {
                return Err(RestError::bad_request(format!(
                    "Group with name '{name}' already exists."
                )));
            }
            let parents = group_keys(
                server,
                input.parent_groups.as_ref().map_or(&[][..], |p| &p.group),
            )?;
            let g = Group {
                key,
                name,
                description: input.description.clone(),
                parents,
            };
            c.event("group.created", &g.key, json!({"name": g.name}));
            c.put(Record::Group(g.clone()));
            Ok(g)
        })
        .await?;
    Ok(Json(group_json(&tc.store.read(), &group)))
}

async fn read_group(
    State(tc): State<Shared>,
    _caller: Caller,
    Path(locator): Path<String>,
) -> Result<Json<Value>> {
    let server = tc.store.read();
    Ok(Json(group_json(&server, server.group(&locator)?)))
}

/// Removes the group: its members leave it, its roles go, subgroups lose it as a parent.
async fn delete_group(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
) -> Result<StatusCode> {
    tc.store
        .change(|server, c| {
            caller.require(&tc, server, "manage_groups")?;
            let g = server.group(&locator)?.clone();
            for u in server.users.values().filter(|u| u.groups.contains(&g.key)) {
                let mut u = u.clone();
                u.groups.remove(&g.key);
                c.put(Record::User(u));
            }
            for child in server
                .groups
                .values()
                .filter(|x| x.parents.contains(&g.key))
            {
                let mut child = child.clone();
                child.parents.remove(&g.key);
                c.put(Record::Group(child));
            }
            for a in server
                .assignments
                .iter()
                .filter(|a| a.holder == Holder::Group(g.key.clone()))
            {
                c.remove(Record::Assignment(a.clone()));
            }
            c.event("group.deleted", &g.key, json!({"name": g.name}));
            c.remove(Record::Group(g));
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Renames a group (text/plain body); the key never changes.
async fn rename_group(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response> {
    let name = text(&headers, &raw)?;
    tc.store
        .change(|server, c| {
            caller.require(&tc, server, "manage_groups")?;
            let mut g = server.group(&locator)?.clone();
            if name.trim().is_empty() {
                return Err(RestError::bad_request("Group name must not be empty."));
            }
            if server
                .groups
                .values()
                .any(|x| x.name == name && x.key != g.key)
            {
                return Err(RestError::bad_request(format!(
                    "Group with name '{name}' already exists."
                )));
            }
            g.name = name.clone();
            c.event("group.renamed", &g.key, json!({"name": name}));
            c.put(Record::Group(g));
            Ok(())
        })
        .await?;
    Ok(plain(name))
}

async fn parent_groups(
    State(tc): State<Shared>,
    _caller: Caller,
    Path(locator): Path<String>,
) -> Result<Json<Value>> {
    let server = tc.store.read();
    let g = server.group(&locator)?;
    let parents: Vec<Value> = g
        .parents
        .iter()
        .filter_map(|k| server.groups.get(k))
        .map(group_ref)
        .collect();
    Ok(Json(json!({"count": parents.len(), "group": parents})))
}

async fn replace_parent_groups(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let input: GroupsIn = body(&raw)?;
    tc.store
        .change(|server, c| {
            caller.require(&tc, server, "manage_groups")?;
            let mut g = server.group(&locator)?.clone();
            let parents = group_keys(server, &input.group)?;
            let below = descendants(server, &g.key);
            if let Some(bad) = parents.iter().find(|p| below.contains(*p)) {
                return Err(RestError::bad_request(format!(
                    "Group '{bad}' cannot be a parent of '{}': that would make a cycle.",
                    g.key
                )));
            }
            g.parents = parents;
            c.event(
                "group.parents.changed",
                &g.key,
                json!({"parents": g.parents}),
            );
            c.put(Record::Group(g));
            Ok(())
        })
        .await?;
    parent_groups(State(tc), caller, Path(locator)).await
}

// -- projects -------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjectIn {
    id: Option<String>,
    name: String,
    parent_project: Option<LocatorRef>,
}

#[derive(Debug, Deserialize)]
struct LocatorRef {
    locator: String,
}

fn project_json(p: &Project) -> Value {
    json!({"id": p.id, "name": p.name, "parentProjectId": p.parent,
        "href": format!("/app/rest/projects/id:{}", p.id)})
}

/// A user sees the projects they have `view_project` on.
fn may_view(tc: &TeamCity, server: &Server, caller: &Caller, project: &str) -> bool {
    match caller {
        Caller::Admin => true,
        Caller::User(id) => server.users.get(id).is_some_and(|u| {
            server
                .permissions(&tc.roles, u)
                .per_project
                .get(project)
                .is_some_and(|p| p.contains("view_project"))
        }),
    }
}

async fn list_projects(State(tc): State<Shared>, caller: Caller) -> Json<Value> {
    let server = tc.store.read();
    let projects: Vec<Value> = server
        .projects
        .values()
        .filter(|p| may_view(&tc, &server, &caller, &p.id))
        .map(project_json)
        .collect();
    Json(json!({"count": projects.len(), "project": projects}))
}

async fn read_project(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
) -> Result<Json<Value>> {
    let server = tc.store.read();
    let p = server.project(&locator)?;
    if !may_view(&tc, &server, &caller, &p.id) {
        return Err(RestError::forbidden(format!(
            "You do not have \"View project\" permission in project '{}'.",
            p.id
        )));
    }
    Ok(Json(project_json(p)))
}

async fn create_project(
    State(tc): State<Shared>,
    caller: Caller,
    raw: Bytes,
) -> Result<Json<Value>> {
    let input: ProjectIn = body(&raw)?;
    let project = tc
        .store
        .change(|server, c| {
            caller.require(&tc, server, "edit_project")?;
            let id = input.id.clone().unwrap_or_else(|| {
                input
                    .name
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect()
            });
            if id.is_empty() || !id.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                return Err(RestError::bad_request(format!(
                    "Project ID '{id}' is invalid: use Latin letters, digits and '_'."
                )));
            }
            if server.projects.contains_key(&id) {
                return Err(RestError::bad_request(format!(
                    "Project ID '{id}' is already used by another project."
                )));
            }
            let parent = match &input.parent_project {
                Some(l) => server.project(&l.locator)?.id.clone(),
                None => ROOT_PROJECT.to_owned(),
            };
            let p = Project {
                id,
                name: input.name.clone(),
                parent: Some(parent),
            };
            c.event("project.created", &p.id, json!({"name": p.name}));
            c.put(Record::Project(p.clone()));
            Ok(p)
        })
        .await?;
    Ok(Json(project_json(&project)))
}

/// Deletes the project with its subprojects and every role assignment scoped to them.
async fn delete_project(
    State(tc): State<Shared>,
    caller: Caller,
    Path(locator): Path<String>,
) -> Result<StatusCode> {
    tc.store
        .change(|server, c| {
            caller.require(&tc, server, "edit_project")?;
            let p = server.project(&locator)?.clone();
            if p.id == ROOT_PROJECT {
                return Err(RestError::bad_request(
                    "The root project cannot be deleted.",
                ));
            }
            let mut gone = BTreeSet::from([p.id.clone()]);
            loop {
                let more: Vec<String> = server
                    .projects
                    .values()
                    .filter(|x| {
                        !gone.contains(&x.id)
                            && x.parent.as_ref().is_some_and(|pp| gone.contains(pp))
                    })
                    .map(|x| x.id.clone())
                    .collect();
                if more.is_empty() {
                    break;
                }
                gone.extend(more);
            }
            for a in server.assignments.iter().filter(|a| {
                a.scope
                    .strip_prefix("p:")
                    .is_some_and(|id| gone.contains(id))
            }) {
                c.remove(Record::Assignment(a.clone()));
            }
            for id in &gone {
                if let Some(x) = server.projects.get(id) {
                    c.remove(Record::Project(x.clone()));
                }
            }
            c.event("project.deleted", &p.id, json!({"projects": gone}));
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
