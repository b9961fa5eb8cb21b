//! The Okta-shaped management API (`/api/v1/...`): users and their lifecycle, groups and
//! memberships, apps with provisioning connection, features, assignments and group push, the
//! System Log, and the outbox (a scimlab extension: Okta shows failed tasks only in its admin
//! console). Authentication: `Authorization: SSWS <token>` (or `Bearer`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use mockkit::sim::AuditEvent;
use scim::filter::{CompareOp, Filter, Literal};
use serde_json::{json, Map, Value};

use crate::engine;
use crate::error::{OktaError, Result};
use crate::mapping::{self, Mapping};
use crate::model::{
    app_target, group_target, new_id, now, user_target, App, AppGroup, AppUser, Connection,
    Dialect, Features, Group, OAuthConnection, Org, Push, Status, Tx, User,
};
use crate::Idp;

type Shared = Arc<Idp>;
type Params = Query<BTreeMap<String, String>>;

pub fn router(idp: Shared) -> Router {
    let apps = Router::new()
        .route("/", get(list_apps).post(create_app))
        .route("/{app}", get(read_app).put(update_app).delete(delete_app))
        .route("/{app}/lifecycle/{op}", post(app_lifecycle))
        .route(
            "/{app}/connections/default",
            get(read_connection).post(set_connection),
        )
        .route(
            "/{app}/connections/default/lifecycle/{op}",
            post(connection_lifecycle),
        )
        .route("/{app}/features", get(list_features))
        .route(
            "/{app}/features/{feature}",
            get(read_feature).put(update_feature),
        )
        .route("/{app}/users", get(list_app_users).post(assign_user))
        .route(
            "/{app}/users/{user}",
            get(read_app_user).delete(unassign_user),
        )
        .route("/{app}/groups", get(list_app_groups))
        .route(
            "/{app}/groups/{group}",
            get(read_app_group).put(assign_group).delete(unassign_group),
        )
        .route(
            "/{app}/group-push/mappings",
            get(list_pushes).post(create_push),
        )
        .route(
            "/{app}/group-push/mappings/{mapping}",
            get(read_push).patch(update_push).delete(delete_push),
        )
        .route("/{app}/outbox", get(list_outbox))
        .route("/{app}/outbox/retry", post(retry_all))
        .route("/{app}/outbox/{seq}/retry", post(retry_entry));
    Router::new()
        .route("/api/v1/users", get(list_users).post(create_user))
        .route(
            "/api/v1/users/{user}",
            get(read_user)
                .post(update_user)
                .put(replace_user)
                .delete(delete_user),
        )
        .route("/api/v1/users/{user}/lifecycle/{op}", post(lifecycle))
        .route("/api/v1/users/{user}/groups", get(user_groups))
        .route("/api/v1/groups", get(list_groups).post(create_group))
        .route(
            "/api/v1/groups/{group}",
            get(read_group).put(update_group).delete(delete_group),
        )
        .route("/api/v1/groups/{group}/users", get(group_users))
        .route(
            "/api/v1/groups/{group}/users/{user}",
            put(add_member).delete(remove_member),
        )
        .nest("/api/v1/apps", apps)
        .route("/api/v1/logs", get(logs))
        .route(crate::oauth::TOKEN_PATH, post(crate::oauth::token))
        .fallback(|uri: axum::http::Uri| async move { OktaError::not_found(uri.path(), "Unknown") })
        .layer(axum::middleware::map_response(okta_errors))
        .with_state(idp)
}

/// Gives axum's own rejections (bad query or path, wrong method) Okta's error body.
async fn okta_errors(resp: Response) -> Response {
    let (status, text) = match scim::server::plain_rejection(resp).await {
        Ok(rejection) => rejection,
        Err(resp) => return resp,
    };
    match status {
        StatusCode::METHOD_NOT_ALLOWED => OktaError::new(
            405,
            "E0000022",
            "The endpoint does not support the provided HTTP method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => OktaError {
            status: 413,
            ..OktaError::bad_body("the request body is larger than this server accepts")
        },
        _ => OktaError::bad_body(text),
    }
    .into_response()
}

/// An administrator holding one of the IdP's API tokens.
#[derive(Debug)]
pub struct Admin;

impl FromRequestParts<Shared> for Admin {
    type Rejection = OktaError;

    async fn from_request_parts(parts: &mut Parts, idp: &Shared) -> Result<Admin> {
        // Okta's Python SDK 3.x sends `SSWS<token>`, without the blank.
        let presented = scim::auth::credentials(&parts.headers, &["SSWS", "Bearer"])
            .or_else(|| scim::auth::glued(&parts.headers, "SSWS"));
        match presented {
            Some(t) if scim::auth::is_one_of(&idp.tokens, t) => Ok(Admin),
            _ => Err(OktaError::invalid_token()),
        }
    }
}

fn body(raw: &Bytes) -> Result<Map<String, Value>> {
    match scim::json::parse_unique(raw, scim::json::Keys::Exact) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(OktaError::bad_body("the body must be a JSON object")),
        Err(e) => Err(OktaError::bad_body(format!("the body is not JSON: {e}"))),
    }
}

fn flag(params: &BTreeMap<String, String>, name: &str, default: bool) -> Result<bool> {
    match params.get(name).map(String::as_str) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(OktaError::validation(format!(
            "{name}: '{other}' is not true or false"
        ))),
    }
}

fn limit(params: &BTreeMap<String, String>, default: usize, max: usize) -> Result<usize> {
    match params.get("limit") {
        None => Ok(default),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n.min(max)),
            _ => Err(OktaError::validation(format!(
                "limit: '{l}' is not a positive number"
            ))),
        },
    }
}

/// A query parameter's name or value, percent-encoded.
fn query_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Runs one change through a transaction and wakes the apps it gave work to.
async fn apply<T: Send>(idp: &Shared, f: impl FnOnce(&mut Tx) -> Result<T> + Send) -> Result<T> {
    let (out, woken) = idp
        .store
        .change(|org, c| {
            let mut tx = Tx::new(org);
            let out = f(&mut tx)?;
            Ok((out, tx.finish(c)))
        })
        .await?;
    engine::wake(idp, woken);
    Ok(out)
}

/// A page of results with Okta's `Link` headers (`self`, and `next` when there may be more).
/// The links keep the request's other parameters (`q`, `filter`, `search`, `since`...): SDKs
/// follow `next` as it is, so a next link without them would page through something else.
fn page(
    idp: &Idp,
    path: &str,
    params: &BTreeMap<String, String>,
    items: Vec<Value>,
    next: Option<String>,
    size: usize,
) -> Response {
    let kept: String = params
        .iter()
        .filter(|(k, _)| k.as_str() != "after" && k.as_str() != "limit")
        .map(|(k, v)| format!("{}={}&", query_encode(k), query_encode(v)))
        .collect();
    let mut headers = HeaderMap::new();
    let mut links = vec![format!(
        "<{}{path}?{kept}limit={size}>; rel=\"self\"",
        idp.base_url
    )];
    if let Some(after) = next {
        links.push(format!(
            "<{}{path}?{kept}after={}&limit={size}>; rel=\"next\"",
            idp.base_url,
            query_encode(&after)
        ));
    }
    for l in links {
        if let Ok(v) = HeaderValue::from_str(&l) {
            headers.append(header::LINK, v);
        }
    }
    (headers, Json(Value::Array(items))).into_response()
}

/// The values of an id-keyed map past Okta's paging cursor, so a page renders only its own
/// items.
fn after<'a, V>(
    map: &'a BTreeMap<String, V>,
    params: &BTreeMap<String, String>,
) -> impl Iterator<Item = &'a V> {
    use std::ops::Bound;
    let start = match params.get("after") {
        Some(cursor) => Bound::Excluded(cursor.clone()),
        None => Bound::Unbounded,
    };
    map.range((start, Bound::Unbounded)).map(|(_, v)| v)
}

/// The first `size` items, and the cursor of the next page when there is more.
fn paged<'a, T: 'a>(
    items: impl Iterator<Item = (&'a str, T)>,
    size: usize,
) -> (Vec<T>, Option<String>) {
    let mut out = Vec::new();
    let mut last = None;
    for (id, item) in items {
        if out.len() == size {
            return (out, last);
        }
        last = Some(id.to_owned());
        out.push(item);
    }
    (out, None)
}

// ---------------------------------------------------------------- users

fn user_json(idp: &Idp, u: &User) -> Value {
    let mut credentials = json!({"provider": {"type": "OKTA", "name": "OKTA"}});
    if u.password_changed.is_some() {
        credentials["password"] = json!({});
    }
    json!({
        "id": u.id,
        "status": u.status,
        "created": u.created,
        "activated": u.activated,
        "statusChanged": u.status_changed,
        "lastLogin": null,
        "lastUpdated": u.last_updated,
        "passwordChanged": u.password_changed,
        "type": {"id": "oty1scimlabdefault000"},
        "profile": u.profile,
        "credentials": credentials,
        "_links": {"self": {"href": format!("{}/api/v1/users/{}", idp.base_url, u.id)}},
    })
}

const REQUIRED_PROFILE: &[&str] = &["login", "email", "firstName", "lastName"];

/// Checks a profile as Okta's base user schema does.
fn check_profile(profile: &Map<String, Value>) -> Result<()> {
    for name in REQUIRED_PROFILE {
        match profile.get(*name) {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            _ => {
                return Err(OktaError::validation(format!(
                    "{name}: The field cannot be left blank"
                )))
            }
        }
    }
    for (name, value) in profile {
        let multi_line = !REQUIRED_PROFILE.contains(&name.as_str());
        let texts = std::iter::once(value).chain(value.as_array().into_iter().flatten());
        if let Some(c) = texts
            .filter_map(Value::as_str)
            .find_map(|s| scim::json::control_character(s, multi_line))
        {
            return Err(OktaError::validation(format!(
                "{name}: contains the control character {c}"
            )));
        }
        let ok = match value {
            Value::Object(_) => false,
            Value::Array(items) => items.iter().all(|i| !i.is_object() && !i.is_array()),
            _ => true,
        };
        if !ok {
            return Err(OktaError::validation(format!(
                "{name}: a profile attribute holds a string, number, boolean or a list of them"
            )));
        }
    }
    let email = profile
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let valid = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !valid {
        return Err(OktaError::validation(format!(
            "email: Does not match required pattern ('{email}')"
        )));
    }
    Ok(())
}

fn check_login(tx: &Tx, login: &str, id: &str) -> Result<()> {
    match tx.org().user_by_login(login) {
        Some(other) if other.id != id && tx.user(&other.id).is_some() => {
            Err(OktaError::validation(
                "login: An object with this field already exists in the current organization",
            ))
        }
        _ => Ok(()),
    }
}

fn password_of(body: &Map<String, Value>) -> Result<Option<String>> {
    match body.get("credentials").and_then(|c| c.get("password")) {
        None | Some(Value::Null) => Ok(None),
        Some(p) => match p.get("value").and_then(Value::as_str) {
            Some(v) if v.chars().count() >= 8 => Ok(Some(v.to_owned())),
            _ => Err(OktaError::validation(
                "password: Password requirements: at least 8 characters",
            )),
        },
    }
}

fn find_user<'t>(tx: &'t Tx, key: &str) -> Result<&'t User> {
    let id = tx
        .org()
        .find_user(key)
        .map(|u| u.id.clone())
        .unwrap_or_else(|| key.to_owned());
    tx.user(&id)
        .ok_or_else(|| OktaError::not_found(key, "User"))
}

fn find_group<'t>(tx: &'t Tx, id: &str) -> Result<&'t Group> {
    tx.group(id)
        .ok_or_else(|| OktaError::not_found(id, "UserGroup"))
}

async fn create_user(
    _: Admin,
    State(idp): State<Shared>,
    Query(params): Params,
    raw: Bytes,
) -> Result<Json<Value>> {
    let b = body(&raw)?;
    let activate = flag(&params, "activate", true)?;
    let profile = b
        .get("profile")
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| OktaError::validation("profile: The field cannot be left blank"))?;
    check_profile(&profile)?;
    let password = password_of(&b)?;
    let group_ids: Vec<String> = match b.get("groupIds") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| OktaError::validation("groupIds: ids are strings"))
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(OktaError::validation("groupIds: a list of group ids")),
    };
    let user = apply(&idp, |tx| {
        let id = new_id("00u");
        let login = profile
            .get("login")
            .and_then(Value::as_str)
            .unwrap_or_default();
        check_login(tx, login, &id)?;
        for g in &group_ids {
            find_group(tx, g)?;
        }
        let at = now();
        let status = match (activate, &password) {
            (false, _) => Status::Staged,
            (true, Some(_)) => Status::Active,
            (true, None) => Status::Provisioned,
        };
        let user = User {
            id: id.clone(),
            status,
            created: at.clone(),
            activated: activate.then(|| at.clone()),
            status_changed: activate.then(|| at.clone()),
            last_updated: at.clone(),
            password_changed: password.as_ref().map(|_| at.clone()),
            profile,
        };
        tx.put_user(user.clone());
        tx.log(
            "user.lifecycle.create",
            "Create Okta user",
            vec![user_target(&user)],
        );
        if activate {
            tx.log(
                "user.lifecycle.activate",
                "Activate Okta user",
                vec![user_target(&user)],
            );
        }
        for g in &group_ids {
            tx.set_member(g, &id, true);
            let group = find_group(tx, g)?.clone();
            tx.log(
                "group.user_membership.add",
                "Add user to group membership",
                vec![user_target(&user), group_target(&group)],
            );
        }
        Ok(user)
    })
    .await?;
    Ok(Json(user_json(&idp, &user)))
}

async fn read_user(
    _: Admin,
    State(idp): State<Shared>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    let u = org
        .find_user(&key)
        .ok_or_else(|| OktaError::not_found(&key, "User"))?;
    Ok(Json(user_json(&idp, u)))
}

fn profile_text(u: &User) -> String {
    ["firstName", "lastName", "email", "login"]
        .iter()
        .filter_map(|k| u.profile.get(*k).and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase()
}

async fn list_users(
    _: Admin,
    State(idp): State<Shared>,
    Query(params): Params,
) -> Result<Response> {
    let size = limit(&params, 200, 200)?;
    let filter = match params.get("search").or_else(|| params.get("filter")) {
        Some(f) => Some(parse_filter(f)?),
        None => None,
    };
    let q = params.get("q").map(|q| q.to_lowercase());
    let org = idp.store.read();
    let items = after(&org.users, &params).filter_map(|u| {
        if let Some(q) = &q {
            if !profile_text(u)
                .split('\n')
                .any(|f| f.starts_with(q.as_str()))
            {
                return None;
            }
        }
        let doc = user_json(&idp, u);
        if filter.as_ref().is_some_and(|f| !matches(f, &doc)) {
            return None;
        }
        Some((u.id.as_str(), doc))
    });
    let (items, next) = paged(items, size);
    Ok(page(&idp, "/api/v1/users", &params, items, next, size))
}

/// Partial (`POST`) or full (`PUT`) profile update.
async fn write_profile(idp: Shared, key: String, raw: Bytes, partial: bool) -> Result<Json<Value>> {
    let b = body(&raw)?;
    let changes = b
        .get("profile")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let password = password_of(&b)?;
    if !partial && !b.contains_key("profile") {
        return Err(OktaError::validation(
            "profile: The field cannot be left blank",
        ));
    }
    let user = apply(&idp, |tx| {
        let mut user = find_user(tx, &key)?.clone();
        if partial {
            for (k, v) in changes {
                if v.is_null() {
                    user.profile.remove(&k);
                } else {
                    user.profile.insert(k, v);
                }
            }
        } else {
            user.profile = changes;
        }
        check_profile(&user.profile)?;
        check_login(tx, user.login(), &user.id)?;
        let at = now();
        if password.is_some() {
            user.password_changed = Some(at.clone());
        }
        user.last_updated = at;
        tx.put_user(user.clone());
        tx.log(
            "user.account.update_profile",
            "Update user profile for Okta",
            vec![user_target(&user)],
        );
        Ok(user)
    })
    .await?;
    Ok(Json(user_json(&idp, &user)))
}

async fn update_user(
    _: Admin,
    State(idp): State<Shared>,
    Path(key): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    write_profile(idp, key, raw, true).await
}

async fn replace_user(
    _: Admin,
    State(idp): State<Shared>,
    Path(key): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    write_profile(idp, key, raw, false).await
}

/// The status a lifecycle operation leads to from `from`, or why it cannot.
fn transition(op: &str, from: Status, has_password: bool) -> Result<(Status, &'static str)> {
    use Status::*;
    let activated = if has_password { Active } else { Provisioned };
    match (op, from) {
        ("activate", Staged | Deprovisioned) => Ok((activated, "user.lifecycle.activate")),
        ("activate", _) => Err(OktaError::new(
            403,
            "E0000016",
            "Activation failed because the user is already active",
        )),
        ("deactivate", Deprovisioned) => Err(OktaError::wrong_status(
            "This operation is not allowed in the user's current status.",
        )),
        ("deactivate", _) => Ok((Deprovisioned, "user.lifecycle.deactivate")),
        ("suspend", Active) => Ok((Suspended, "user.lifecycle.suspend")),
        ("suspend", _) => Err(OktaError::validation(
            "status: Cannot suspend a user that is not active",
        )),
        ("unsuspend", Suspended) => Ok((Active, "user.lifecycle.unsuspend")),
        ("unsuspend", _) => Err(OktaError::validation(
            "status: Cannot unsuspend a user that is not suspended",
        )),
        ("reactivate", Provisioned) => Ok((Provisioned, "user.lifecycle.reactivate")),
        ("reactivate", _) => Err(OktaError::wrong_status(
            "This operation is not allowed in the user's current status.",
        )),
        _ => Err(OktaError::not_found(op, "Lifecycle operation")),
    }
}

async fn set_status(idp: &Shared, key: &str, op: &str) -> Result<()> {
    apply(idp, |tx| {
        let mut user = find_user(tx, key)?.clone();
        let (status, event) = transition(op, user.status, user.password_changed.is_some())?;
        let at = now();
        if status != user.status {
            user.status_changed = Some(at.clone());
        }
        if op == "activate" {
            user.activated = Some(at.clone());
        }
        user.status = status;
        user.last_updated = at;
        let message = match op {
            "activate" => "Activate Okta user",
            "deactivate" => "Deactivate Okta user",
            "suspend" => "Suspend Okta user",
            "unsuspend" => "Unsuspend Okta user",
            _ => "Reactivate Okta user",
        };
        tx.log(event, message, vec![user_target(&user)]);
        tx.put_user(user);
        Ok(())
    })
    .await
}

async fn lifecycle(
    _: Admin,
    State(idp): State<Shared>,
    Path((key, op)): Path<(String, String)>,
) -> Result<Json<Value>> {
    set_status(&idp, &key, &op).await?;
    Ok(Json(json!({})))
}

/// Okta's two-step delete: the first DELETE deactivates, the second deletes.
async fn delete_user(
    _: Admin,
    State(idp): State<Shared>,
    Path(key): Path<String>,
) -> Result<StatusCode> {
    let status = {
        let org = idp.store.read();
        org.find_user(&key)
            .map(|u| u.status)
            .ok_or_else(|| OktaError::not_found(&key, "User"))?
    };
    if status != Status::Deprovisioned {
        set_status(&idp, &key, "deactivate").await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    apply(&idp, |tx| {
        let user = find_user(tx, &key)?.clone();
        tx.delete_user(&user.id);
        tx.log(
            "user.lifecycle.delete.completed",
            "Delete Okta user",
            vec![user_target(&user)],
        );
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn user_groups(
    _: Admin,
    State(idp): State<Shared>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    let u = org
        .find_user(&key)
        .ok_or_else(|| OktaError::not_found(&key, "User"))?;
    let groups: Vec<Value> = org
        .groups_of(&u.id)
        .filter_map(|g| org.groups.get(g))
        .map(|g| group_json(&idp, g))
        .collect();
    Ok(Json(Value::Array(groups)))
}

// ---------------------------------------------------------------- groups

fn group_json(idp: &Idp, g: &Group) -> Value {
    json!({
        "id": g.id,
        "created": g.created,
        "lastUpdated": g.last_updated,
        "lastMembershipUpdated": g.last_membership_updated,
        "objectClass": ["okta:user_group"],
        "type": "OKTA_GROUP",
        "profile": {"name": g.name, "description": g.description},
        "_links": {"self": {"href": format!("{}/api/v1/groups/{}", idp.base_url, g.id)}},
    })
}

fn group_profile(raw: &Bytes) -> Result<(String, Option<String>)> {
    let b = body(raw)?;
    let profile = b
        .get("profile")
        .and_then(Value::as_object)
        .ok_or_else(|| OktaError::validation("profile: The field cannot be left blank"))?;
    let name = profile
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| OktaError::validation("name: The field cannot be left blank"))?;
    let description = profile
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok((name.to_owned(), description))
}

async fn create_group(_: Admin, State(idp): State<Shared>, raw: Bytes) -> Result<Json<Value>> {
    let (name, description) = group_profile(&raw)?;
    let group = apply(&idp, |tx| {
        let id = new_id("00g");
        if tx.group_name_taken(&name, &id) {
            return Err(OktaError::validation(
                "name: An object with this field already exists in the current organization",
            ));
        }
        let at = now();
        let g = Group {
            id,
            created: at.clone(),
            last_updated: at.clone(),
            last_membership_updated: at,
            name,
            description,
        };
        tx.put_group(g.clone());
        tx.log(
            "group.lifecycle.create",
            "Create Okta group",
            vec![group_target(&g)],
        );
        Ok(g)
    })
    .await?;
    Ok(Json(group_json(&idp, &group)))
}

async fn read_group(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    let g = org
        .groups
        .get(&id)
        .ok_or_else(|| OktaError::not_found(&id, "UserGroup"))?;
    Ok(Json(group_json(&idp, g)))
}

async fn list_groups(
    _: Admin,
    State(idp): State<Shared>,
    Query(params): Params,
) -> Result<Response> {
    let size = limit(&params, 10_000, 10_000)?;
    let q = params.get("q").map(|q| q.to_lowercase());
    let filter = match params.get("search").or_else(|| params.get("filter")) {
        Some(f) => Some(parse_filter(f)?),
        None => None,
    };
    let org = idp.store.read();
    let items = after(&org.groups, &params).filter_map(|g| {
        if q.as_ref()
            .is_some_and(|q| !g.name.to_lowercase().starts_with(q.as_str()))
        {
            return None;
        }
        let doc = group_json(&idp, g);
        if filter.as_ref().is_some_and(|f| !matches(f, &doc)) {
            return None;
        }
        Some((g.id.as_str(), doc))
    });
    let (items, next) = paged(items, size);
    Ok(page(&idp, "/api/v1/groups", &params, items, next, size))
}

async fn update_group(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let (name, description) = group_profile(&raw)?;
    let group = apply(&idp, |tx| {
        let mut g = find_group(tx, &id)?.clone();
        if tx.group_name_taken(&name, &id) {
            return Err(OktaError::validation(
                "name: An object with this field already exists in the current organization",
            ));
        }
        g.name = name;
        g.description = description;
        g.last_updated = now();
        tx.put_group(g.clone());
        tx.log(
            "group.profile.update",
            "Update group profile",
            vec![group_target(&g)],
        );
        Ok(g)
    })
    .await?;
    Ok(Json(group_json(&idp, &group)))
}

async fn delete_group(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    apply(&idp, |tx| {
        let g = find_group(tx, &id)?.clone();
        tx.delete_group(&id);
        tx.log(
            "group.lifecycle.delete",
            "Delete Okta group",
            vec![group_target(&g)],
        );
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn group_users(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    if !org.groups.contains_key(&id) {
        return Err(OktaError::not_found(&id, "UserGroup"));
    }
    let users: Vec<Value> = org
        .members_of(&id)
        .filter_map(|u| org.users.get(u))
        .map(|u| user_json(&idp, u))
        .collect();
    Ok(Json(Value::Array(users)))
}

async fn membership(idp: &Shared, group: &str, key: &str, member: bool) -> Result<StatusCode> {
    apply(idp, |tx| {
        let mut g = find_group(tx, group)?.clone();
        let user = find_user(tx, key)?.clone();
        if tx.is_member(group, &user.id) == member {
            return Ok(());
        }
        tx.set_member(group, &user.id, member);
        g.last_membership_updated = now();
        let (kind, message) = if member {
            ("group.user_membership.add", "Add user to group membership")
        } else {
            (
                "group.user_membership.remove",
                "Remove user from group membership",
            )
        };
        tx.log(kind, message, vec![user_target(&user), group_target(&g)]);
        tx.put_group(g);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_member(
    _: Admin,
    State(idp): State<Shared>,
    Path((group, user)): Path<(String, String)>,
) -> Result<StatusCode> {
    membership(&idp, &group, &user, true).await
}

async fn remove_member(
    _: Admin,
    State(idp): State<Shared>,
    Path((group, user)): Path<(String, String)>,
) -> Result<StatusCode> {
    membership(&idp, &group, &user, false).await
}

// ---------------------------------------------------------------- apps

fn status_word(on: bool) -> &'static str {
    if on {
        "ENABLED"
    } else {
        "DISABLED"
    }
}

fn app_json(idp: &Idp, a: &App) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "label": a.label,
        "status": if a.active { "ACTIVE" } else { "INACTIVE" },
        "created": a.created,
        "lastUpdated": a.last_updated,
        "signOnMode": a.sign_on_mode,
        "features": if a.connection.is_some() { json!(["PUSH_NEW_USERS", "PUSH_PROFILE_UPDATES", "PUSH_USER_DEACTIVATION", "GROUP_PUSH"]) } else { json!([]) },
        "settings": {"app": {"scimDialect": a.dialect, "scimMappings": a.mappings}},
        "_links": {"self": {"href": format!("{}/api/v1/apps/{}", idp.base_url, a.id)}},
    })
}

/// The scimlab settings of an app: its dialect and attribute mappings.
fn app_settings(b: &Map<String, Value>) -> Result<(Option<Dialect>, Option<Vec<Mapping>>)> {
    let settings = b.get("settings").and_then(|s| s.get("app"));
    let dialect = match settings.and_then(|s| s.get("scimDialect")) {
        None | Some(Value::Null) => None,
        Some(d) => Some(serde_json::from_value(d.clone()).map_err(|_| {
            OktaError::validation(format!(
                "scimDialect: {d} is not one of \"okta\", \"entra\""
            ))
        })?),
    };
    let mappings = match settings.and_then(|s| s.get("scimMappings")) {
        None | Some(Value::Null) => None,
        Some(m) => {
            let list: Vec<Mapping> = serde_json::from_value(m.clone()).map_err(|e| {
                OktaError::validation(format!(
                    "scimMappings: a list of {{\"to\": SCIM path, \"from\": template}}: {e}"
                ))
            })?;
            mapping::validate(&list)
                .map_err(|e| OktaError::validation(format!("scimMappings: {e}")))?;
            Some(list)
        }
    };
    Ok((dialect, mappings))
}

fn find_app<'t>(tx: &'t Tx, id: &str) -> Result<&'t App> {
    tx.app(id)
        .ok_or_else(|| OktaError::not_found(id, "AppInstance"))
}

async fn create_app(
    _: Admin,
    State(idp): State<Shared>,
    Query(params): Params,
    raw: Bytes,
) -> Result<Json<Value>> {
    let b = body(&raw)?;
    let activate = flag(&params, "activate", true)?;
    let label = b
        .get("label")
        .and_then(Value::as_str)
        .filter(|l| !l.trim().is_empty())
        .ok_or_else(|| OktaError::validation("label: The field cannot be left blank"))?
        .to_owned();
    let text = |k: &str, default: &str| {
        b.get(k)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    let (dialect, mappings) = app_settings(&b)?;
    let app = apply(&idp, |tx| {
        let at = now();
        let app = App {
            id: new_id("0oa"),
            name: text("name", "scimlab_scim2"),
            label,
            active: activate,
            created: at.clone(),
            last_updated: at,
            sign_on_mode: text("signOnMode", "AUTO_LOGIN"),
            dialect: dialect.unwrap_or(Dialect::Okta),
            mappings: mappings.unwrap_or_else(mapping::defaults),
            connection: None,
            features: Features::default(),
        };
        tx.put_app(app.clone());
        tx.log(
            "application.lifecycle.create",
            "Add application",
            vec![app_target(&app)],
        );
        Ok(app)
    })
    .await?;
    Ok(Json(app_json(&idp, &app)))
}

async fn read_app(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    let a = org.app(&id)?;
    Ok(Json(app_json(&idp, a)))
}

async fn list_apps(_: Admin, State(idp): State<Shared>) -> Json<Value> {
    let org = idp.store.read();
    Json(Value::Array(
        org.apps.values().map(|a| app_json(&idp, a)).collect(),
    ))
}

/// Runs `edit` on an app and stores it, re-planning what it provisions.
async fn edit_app(
    idp: &Shared,
    id: &str,
    event: (&str, &str),
    edit: impl FnOnce(&mut App) -> Result<()> + Send,
) -> Result<App> {
    apply(idp, |tx| {
        let mut app = find_app(tx, id)?.clone();
        edit(&mut app)?;
        app.last_updated = now();
        tx.put_app(app.clone());
        tx.log(event.0, event.1, vec![app_target(&app)]);
        Ok(app)
    })
    .await
}

async fn update_app(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let b = body(&raw)?;
    let (dialect, mappings) = app_settings(&b)?;
    let label = b.get("label").and_then(Value::as_str).map(str::to_owned);
    let app = edit_app(
        &idp,
        &id,
        ("application.lifecycle.update", "Update application"),
        |app| {
            if let Some(l) = label {
                app.label = l;
            }
            if let Some(d) = dialect {
                app.dialect = d;
            }
            if let Some(m) = mappings {
                app.mappings = m;
            }
            Ok(())
        },
    )
    .await?;
    Ok(Json(app_json(&idp, &app)))
}

async fn app_lifecycle(
    _: Admin,
    State(idp): State<Shared>,
    Path((id, op)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let active = switch(&op)?;
    let event = if active {
        ("application.lifecycle.activate", "Activate application")
    } else {
        ("application.lifecycle.deactivate", "Deactivate application")
    };
    edit_app(&idp, &id, event, |app| {
        app.active = active;
        Ok(())
    })
    .await?;
    Ok(Json(json!({})))
}

/// `activate` -> on, `deactivate` -> off.
fn switch(op: &str) -> Result<bool> {
    match op {
        "activate" => Ok(true),
        "deactivate" => Ok(false),
        _ => Err(OktaError::not_found(op, "Lifecycle operation")),
    }
}

/// Okta deletes only inactive apps. The app's outbox goes with it.
async fn delete_app(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    apply(&idp, |tx| {
        let app = find_app(tx, &id)?.clone();
        if app.active {
            return Err(OktaError::new(
                403,
                "E0000056",
                "Delete application forbidden.",
            ));
        }
        tx.delete_app(&id);
        tx.log(
            "application.lifecycle.delete",
            "Delete application",
            vec![app_target(&app)],
        );
        Ok(())
    })
    .await?;
    engine::wake(&idp, [id]);
    Ok(StatusCode::NO_CONTENT)
}

fn connection_json(idp: &Idp, a: &App) -> Value {
    match &a.connection {
        Some(c) => {
            json!({"authScheme": if c.oauth.is_some() { "OAUTH2" } else { "TOKEN" }, "baseUrl": c.base_url,
            "status": status_word(c.enabled),
            "_links": {"self": {"href": format!("{}/api/v1/apps/{}/connections/default", idp.base_url, a.id)}}})
        }
        None => json!({"authScheme": "UNKNOWN", "status": "DISABLED"}),
    }
}

async fn read_connection(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    let a = org.app(&id)?;
    Ok(Json(connection_json(&idp, a)))
}

async fn set_connection(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
    Query(params): Params,
    raw: Bytes,
) -> Result<Json<Value>> {
    let b = body(&raw)?;
    let activate = flag(&params, "activate", true)?;
    let profile = b.get("profile").cloned().unwrap_or(Value::Null);
    let field = |name: &str| {
        profile
            .get(name)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| OktaError::validation(format!("{name}: The field cannot be left blank")))
    };
    let (token, oauth) = match profile.get("authScheme").and_then(Value::as_str) {
        Some("TOKEN") => (field("token")?, None),
        Some("OAUTH2") => {
            let token_url = field("tokenUrl")?;
            if !token_url.starts_with("http://") && !token_url.starts_with("https://") {
                return Err(OktaError::validation(
                    "tokenUrl: an http:// or https:// URL",
                ));
            }
            let oauth = OAuthConnection {
                token_url,
                client_id: field("clientId")?,
                client_secret: field("clientSecret")?,
            };
            (String::new(), Some(oauth))
        }
        _ => {
            return Err(OktaError::validation(
                "authScheme: TOKEN (a static bearer token) or OAUTH2 (client credentials: \
                 tokenUrl, clientId, clientSecret)",
            ))
        }
    };
    let base_url = b
        .get("baseUrl")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .ok_or_else(|| OktaError::validation("baseUrl: an http:// or https:// URL"))?
        .to_owned();
    let app = edit_app(
        &idp,
        &id,
        (
            "application.lifecycle.update",
            "Update provisioning connection",
        ),
        |app| {
            app.connection = Some(Connection {
                base_url,
                token,
                enabled: activate,
                oauth,
            });
            Ok(())
        },
    )
    .await?;
    Ok(Json(connection_json(&idp, &app)))
}

async fn connection_lifecycle(
    _: Admin,
    State(idp): State<Shared>,
    Path((id, op)): Path<(String, String)>,
) -> Result<StatusCode> {
    let enabled = switch(&op)?;
    edit_app(
        &idp,
        &id,
        (
            "application.lifecycle.update",
            "Update provisioning connection",
        ),
        |app| match &mut app.connection {
            Some(c) => {
                c.enabled = enabled;
                Ok(())
            }
            None => Err(OktaError::validation(
                "connection: the app has no provisioning connection",
            )),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn feature_json(idp: &Idp, a: &App) -> Value {
    let f = a.features;
    json!({
        "name": "USER_PROVISIONING",
        "status": status_word(a.connection.is_some()),
        "description": "User provisioning settings from Okta to a downstream app",
        "capabilities": {
            "create": {"lifecycleCreate": {"status": status_word(f.create)}},
            "update": {
                "profile": {"status": status_word(f.update)},
                "lifecycleDeactivate": {"status": status_word(f.deactivate)},
                "password": {"status": "DISABLED", "seed": "RANDOM", "change": "KEEP_EXISTING"},
            },
        },
        "_links": {"self": {"href": format!("{}/api/v1/apps/{}/features/USER_PROVISIONING", idp.base_url, a.id)}},
    })
}

async fn list_features(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    let a = org.app(&id)?;
    Ok(Json(json!([feature_json(&idp, a)])))
}

async fn read_feature(
    _: Admin,
    State(idp): State<Shared>,
    Path((id, feature)): Path<(String, String)>,
) -> Result<Json<Value>> {
    if feature != "USER_PROVISIONING" {
        return Err(OktaError::not_found(&feature, "ApplicationFeature"));
    }
    let org = idp.store.read();
    let a = org.app(&id)?;
    Ok(Json(feature_json(&idp, a)))
}

fn capability(caps: &Value, path: &[&str]) -> Result<Option<bool>> {
    let mut v = caps;
    for p in path {
        match v.get(*p) {
            Some(next) => v = next,
            None => return Ok(None),
        }
    }
    match v.get("status").and_then(Value::as_str) {
        Some("ENABLED") => Ok(Some(true)),
        Some("DISABLED") => Ok(Some(false)),
        _ => Err(OktaError::validation(format!(
            "capabilities.{}.status: ENABLED or DISABLED",
            path.join(".")
        ))),
    }
}

async fn update_feature(
    _: Admin,
    State(idp): State<Shared>,
    Path((id, feature)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Json<Value>> {
    if feature != "USER_PROVISIONING" {
        return Err(OktaError::not_found(&feature, "ApplicationFeature"));
    }
    let b = body(&raw)?;
    let caps = b.get("capabilities").cloned().unwrap_or(Value::Null);
    let create = capability(&caps, &["create", "lifecycleCreate"])?;
    let update = capability(&caps, &["update", "profile"])?;
    let deactivate = capability(&caps, &["update", "lifecycleDeactivate"])?;
    let app = edit_app(
        &idp,
        &id,
        (
            "application.lifecycle.update",
            "Update provisioning features",
        ),
        |app| {
            let f = &mut app.features;
            f.create = create.unwrap_or(f.create);
            f.update = update.unwrap_or(f.update);
            f.deactivate = deactivate.unwrap_or(f.deactivate);
            Ok(())
        },
    )
    .await?;
    Ok(Json(feature_json(&idp, &app)))
}

fn app_user_json(idp: &Idp, org: &Org, app: &str, user: &User, direct: Option<&AppUser>) -> Value {
    let sync = org.user_sync(app, &user.id);
    json!({
        "id": user.id,
        "externalId": org.link(app, &user.id),
        "created": direct.map(|d| d.created.clone()).unwrap_or_else(|| user.created.clone()),
        "lastUpdated": user.last_updated,
        "scope": if direct.is_some() { "USER" } else { "GROUP" },
        "status": match sync { Some(s) if s.active => "PROVISIONED", Some(_) => "INACTIVE", None => "STAGED" },
        "syncState": org.sync_state(app, &user.id),
        "credentials": {"userName": user.login()},
        "profile": direct.map(|d| Value::Object(d.profile.clone())).unwrap_or_else(|| json!({})),
        "_links": {"app": {"href": format!("{}/api/v1/apps/{app}", idp.base_url)},
            "user": {"href": format!("{}/api/v1/users/{}", idp.base_url, user.id)}},
    })
}

async fn list_app_users(
    _: Admin,
    State(idp): State<Shared>,
    Path(app): Path<String>,
    Query(params): Params,
) -> Result<Response> {
    let size = limit(&params, 500, 500)?;
    let org = idp.store.read();
    org.app(&app)?;
    let items = after(&org.users, &params)
        .filter(|u| org.is_assigned(&app, &u.id))
        .map(|u| {
            let direct = org.app_users.get(&(app.clone(), u.id.clone()));
            (u.id.as_str(), app_user_json(&idp, &org, &app, u, direct))
        });
    let (items, next) = paged(items, size);
    Ok(page(
        &idp,
        &format!("/api/v1/apps/{app}/users"),
        &params,
        items,
        next,
        size,
    ))
}

async fn read_app_user(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, user)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    let u = org
        .users
        .get(&user)
        .filter(|u| org.is_assigned(&app, &u.id))
        .ok_or_else(|| OktaError::not_found(&user, "AppUser"))?;
    let direct = org.app_users.get(&(app.clone(), user.clone()));
    Ok(Json(app_user_json(&idp, &org, &app, u, direct)))
}

async fn assign_user(
    _: Admin,
    State(idp): State<Shared>,
    Path(app): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let b = body(&raw)?;
    let user = b
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| OktaError::validation("id: The field cannot be left blank"))?
        .to_owned();
    match b.get("scope").and_then(Value::as_str) {
        None | Some("USER") => {}
        Some(other) => {
            return Err(OktaError::validation(format!(
                "scope: '{other}': only USER assignments are made here; assign a group with PUT /apps/{{app}}/groups/{{group}}"
            )))
        }
    }
    let profile = b
        .get("profile")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    apply(&idp, |tx| {
        let a = find_app(tx, &app)?.clone();
        let u = find_user(tx, &user)?.clone();
        let created = tx
            .app_user(&app, &u.id)
            .map(|d| d.created.clone())
            .unwrap_or_else(now);
        tx.set_app_user(
            &app,
            &u.id,
            Some(AppUser {
                app: app.clone(),
                user: u.id.clone(),
                created,
                profile,
            }),
        );
        tx.log(
            "application.user_membership.add",
            "Add user to application membership",
            vec![user_target(&u), app_target(&a)],
        );
        Ok(())
    })
    .await?;
    let org = idp.store.read();
    let u = org
        .users
        .get(&user)
        .ok_or_else(|| OktaError::not_found(&user, "User"))?;
    let direct = org.app_users.get(&(app.clone(), user.clone()));
    Ok(Json(app_user_json(&idp, &org, &app, u, direct)))
}

async fn unassign_user(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, user)): Path<(String, String)>,
) -> Result<StatusCode> {
    apply(&idp, |tx| {
        let a = find_app(tx, &app)?.clone();
        if tx.app_user(&app, &user).is_none() {
            return Err(OktaError::not_found(&user, "AppUser"));
        }
        let u = find_user(tx, &user)?.clone();
        tx.set_app_user(&app, &user, None);
        tx.log(
            "application.user_membership.remove",
            "Remove user from application membership",
            vec![user_target(&u), app_target(&a)],
        );
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn app_group_json(idp: &Idp, a: &AppGroup) -> Value {
    json!({"id": a.group, "priority": a.priority, "lastUpdated": a.created, "profile": {},
        "_links": {"app": {"href": format!("{}/api/v1/apps/{}", idp.base_url, a.app)},
            "group": {"href": format!("{}/api/v1/groups/{}", idp.base_url, a.group)}}})
}

async fn list_app_groups(
    _: Admin,
    State(idp): State<Shared>,
    Path(app): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    org.app(&app)?;
    let items: Vec<Value> = org
        .app_groups
        .values()
        .filter(|a| a.app == app)
        .map(|a| app_group_json(&idp, a))
        .collect();
    Ok(Json(Value::Array(items)))
}

async fn read_app_group(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, group)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    let a = org
        .app_groups
        .get(&(app, group.clone()))
        .ok_or_else(|| OktaError::not_found(&group, "ApplicationGroupAssignment"))?;
    Ok(Json(app_group_json(&idp, a)))
}

async fn assign_group(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, group)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let priority = if raw.is_empty() {
        None
    } else {
        body(&raw)?.get("priority").and_then(Value::as_u64)
    };
    let assignment = apply(&idp, |tx| {
        let a = find_app(tx, &app)?.clone();
        let g = find_group(tx, &group)?.clone();
        let assignment = AppGroup {
            app: app.clone(),
            group: group.clone(),
            priority: priority.unwrap_or(0),
            created: now(),
        };
        tx.set_app_group(&app, &group, Some(assignment.clone()));
        tx.log(
            "group.application_assignment.add",
            "Assign group to application",
            vec![group_target(&g), app_target(&a)],
        );
        Ok(assignment)
    })
    .await?;
    Ok(Json(app_group_json(&idp, &assignment)))
}

async fn unassign_group(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, group)): Path<(String, String)>,
) -> Result<StatusCode> {
    apply(&idp, |tx| {
        let a = find_app(tx, &app)?.clone();
        let g = find_group(tx, &group)?.clone();
        if tx.app_group(&app, &group).is_none() {
            return Err(OktaError::not_found(&group, "ApplicationGroupAssignment"));
        }
        tx.set_app_group(&app, &group, None);
        tx.log(
            "group.application_assignment.remove",
            "Remove group from application",
            vec![group_target(&g), app_target(&a)],
        );
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn push_json(org: &Org, p: &Push) -> Value {
    json!({"id": p.id, "sourceGroupId": p.group, "targetGroupId": org.link(&p.app, &p.group),
        "status": if p.active { "ACTIVE" } else { "INACTIVE" },
        "created": p.created, "lastUpdated": p.last_updated})
}

fn find_push<'o>(org: &'o Org, app: &str, mapping: &str) -> Result<&'o Push> {
    org.pushes
        .values()
        .find(|p| p.app == app && p.id == mapping)
        .ok_or_else(|| OktaError::not_found(mapping, "GroupPushMapping"))
}

fn push_status(b: &Map<String, Value>) -> Result<Option<bool>> {
    match b.get("status").and_then(Value::as_str) {
        None => Ok(None),
        Some("ACTIVE") => Ok(Some(true)),
        Some("INACTIVE") => Ok(Some(false)),
        Some(s) => Err(OktaError::validation(format!(
            "status: '{s}' is not ACTIVE or INACTIVE"
        ))),
    }
}

async fn list_pushes(
    _: Admin,
    State(idp): State<Shared>,
    Path(app): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    org.app(&app)?;
    Ok(Json(Value::Array(
        org.pushes
            .values()
            .filter(|p| p.app == app)
            .map(|p| push_json(&org, p))
            .collect(),
    )))
}

async fn read_push(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, mapping)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    Ok(Json(push_json(&org, find_push(&org, &app, &mapping)?)))
}

async fn create_push(
    _: Admin,
    State(idp): State<Shared>,
    Path(app): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let b = body(&raw)?;
    let group = b
        .get("sourceGroupId")
        .and_then(Value::as_str)
        .ok_or_else(|| OktaError::validation("sourceGroupId: The field cannot be left blank"))?
        .to_owned();
    if b.contains_key("targetGroupId") {
        return Err(OktaError::validation(
            "targetGroupId: linking to an existing target group is not supported; the group is created (or found by displayName) in the target",
        ));
    }
    let active = push_status(&b)?.unwrap_or(true);
    let push = apply(&idp, |tx| {
        let a = find_app(tx, &app)?.clone();
        let g = find_group(tx, &group)?.clone();
        if tx.push(&app, &group).is_some() {
            return Err(OktaError::validation(
                "sourceGroupId: the group is already pushed to this app",
            ));
        }
        let at = now();
        let push = Push {
            id: new_id("gPm"),
            app: app.clone(),
            group: group.clone(),
            active,
            created: at.clone(),
            last_updated: at,
        };
        tx.set_push(&app, &group, Some(push.clone()));
        tx.log(
            "application.provision.group_push.mapping.created",
            "Create group push mapping",
            vec![group_target(&g), app_target(&a)],
        );
        Ok(push)
    })
    .await?;
    let org = idp.store.read();
    Ok(Json(push_json(&org, &push)))
}

async fn update_push(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, mapping)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let b = body(&raw)?;
    let active = push_status(&b)?
        .ok_or_else(|| OktaError::validation("status: The field cannot be left blank"))?;
    let push = apply(&idp, |tx| {
        let mut push = find_push(tx.org(), &app, &mapping)?.clone();
        push.active = active;
        push.last_updated = now();
        tx.set_push(&app, &push.group.clone(), Some(push.clone()));
        Ok(push)
    })
    .await?;
    let org = idp.store.read();
    Ok(Json(push_json(&org, &push)))
}

/// Okta deletes only inactive mappings; `deleteTargetGroup=true` also deletes the group in the
/// target, otherwise it stays there, unlinked.
async fn delete_push(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, mapping)): Path<(String, String)>,
    Query(params): Params,
) -> Result<StatusCode> {
    let delete_target = flag(&params, "deleteTargetGroup", false)?;
    apply(&idp, |tx| {
        let push = find_push(tx.org(), &app, &mapping)?.clone();
        if push.active {
            return Err(OktaError::validation(
                "status: deactivate the mapping before deleting it",
            ));
        }
        if !delete_target {
            tx.unlink_group(&app, &push.group);
        }
        tx.set_push(&app, &push.group, None);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- outbox

fn entry_json(e: &crate::model::Entry) -> Value {
    json!({"seq": e.seq, "type": e.op.event_type(), "subjects": e.subjects,
        "sharedSubjects": e.shared, "op": e.op,
        "accepted": e.accepted, "attempts": e.attempts, "lastError": e.last_error,
        "status": if e.parked { "PARKED" } else { "PENDING" },
        "notBefore": (e.not_before > 0).then(|| chrono::DateTime::from_timestamp_millis(e.not_before).map(|t| t.to_rfc3339())).flatten()})
}

async fn list_outbox(
    _: Admin,
    State(idp): State<Shared>,
    Path(app): Path<String>,
    Query(params): Params,
) -> Result<Json<Value>> {
    let parked_only = match params.get("status").map(String::as_str) {
        None => None,
        Some("PARKED") | Some("parked") => Some(true),
        Some("PENDING") | Some("pending") => Some(false),
        Some(s) => {
            return Err(OktaError::validation(format!(
                "status: '{s}' is not PENDING or PARKED"
            )))
        }
    };
    let org = idp.store.read();
    org.app(&app)?;
    Ok(Json(Value::Array(
        org.app_outbox(&app)
            .filter(|e| parked_only.is_none_or(|p| e.parked == p))
            .map(entry_json)
            .collect(),
    )))
}

/// Puts parked entries (one, or all) back in line with a fresh set of attempts.
async fn retry(idp: &Shared, app: &str, seq: Option<u64>) -> Result<usize> {
    let n = idp
        .store
        .change(|org, c| {
            if !org.apps.contains_key(app) {
                return Err(OktaError::not_found(app, "AppInstance"));
            }
            if let Some(s) = seq {
                if !org.outbox.contains_key(&(app.to_owned(), s)) {
                    return Err(OktaError::not_found(&s.to_string(), "OutboxEntry"));
                }
            }
            let mut n = 0;
            for e in org.app_outbox(app) {
                if e.parked && seq.is_none_or(|s| s == e.seq) {
                    let mut e = e.clone();
                    e.parked = false;
                    e.attempts = 0;
                    e.not_before = 0;
                    c.put(crate::model::Record::Entry(e));
                    n += 1;
                }
            }
            Ok(n)
        })
        .await?;
    engine::wake(idp, [app.to_owned()]);
    Ok(n)
}

async fn retry_all(
    _: Admin,
    State(idp): State<Shared>,
    Path(app): Path<String>,
) -> Result<Json<Value>> {
    let n = retry(&idp, &app, None).await?;
    Ok(Json(json!({"retried": n})))
}

async fn retry_entry(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, seq)): Path<(String, u64)>,
) -> Result<Json<Value>> {
    let n = retry(&idp, &app, Some(seq)).await?;
    Ok(Json(json!({"retried": n})))
}

// ---------------------------------------------------------------- system log

fn parse_filter(text: &str) -> Result<Filter> {
    Filter::parse(text).map_err(|e| OktaError::validation(format!("filter: {}", e.detail)))
}

fn field<'v>(doc: &'v Value, name: &str) -> Option<&'v Value> {
    doc.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The values a filter path names; arrays fan out, so `target.id` matches any target.
fn values<'v>(doc: &'v Value, path: &scim::path::AttrPath) -> Vec<&'v Value> {
    let top: Vec<&Value> = match field(doc, &path.attr) {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
        None => Vec::new(),
    };
    match &path.sub {
        None => top,
        Some(sub) => top.into_iter().filter_map(|v| field(v, sub)).collect(),
    }
}

fn compare(v: &Value, op: CompareOp, lit: &Literal) -> bool {
    use std::cmp::Ordering;
    let ord = match (v, lit) {
        (Value::String(a), Literal::String(b)) => {
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            match op {
                CompareOp::Co => return a.contains(&b),
                CompareOp::Sw => return a.starts_with(&b),
                CompareOp::Ew => return a.ends_with(&b),
                _ => a.cmp(&b),
            }
        }
        (Value::Number(a), Literal::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            _ => return false,
        },
        (Value::Bool(a), Literal::Bool(b)) => a.cmp(b),
        (Value::Null, Literal::Null) => Ordering::Equal,
        _ => return op == CompareOp::Ne,
    };
    op.holds(ord)
}

/// Okta's filter and search expressions (SCIM syntax) over an API object; string comparisons
/// ignore case.
pub fn matches(f: &Filter, doc: &Value) -> bool {
    match f {
        Filter::Or(a, b) => matches(a, doc) || matches(b, doc),
        Filter::And(a, b) => matches(a, doc) && matches(b, doc),
        Filter::Not(a) => !matches(a, doc),
        Filter::Present(p) => values(doc, p).iter().any(|v| !v.is_null()),
        Filter::Compare(p, op, lit) => {
            let vs = values(doc, p);
            if vs.is_empty() {
                return *op == CompareOp::Ne || (*op == CompareOp::Eq && *lit == Literal::Null);
            }
            vs.iter().any(|v| compare(v, *op, lit))
        }
        Filter::ValuePath(p, inner) => values(doc, p).iter().any(|v| matches(inner, v)),
    }
}

/// A System Log event from an audit event: the audit sequence number is the paging cursor.
fn log_event(e: &AuditEvent) -> Value {
    let mut doc = match &e.data {
        Value::Object(o) => o.clone(),
        _ => Map::new(),
    };
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &e.hash[0..8],
        &e.hash[8..12],
        &e.hash[12..16],
        &e.hash[16..20],
        &e.hash[20..32]
    );
    let failed = doc
        .get("outcome")
        .and_then(|o| o.get("result"))
        .and_then(Value::as_str)
        == Some("FAILURE");
    doc.insert("uuid".into(), json!(uuid));
    doc.insert("published".into(), json!(e.applied));
    doc.insert("eventType".into(), json!(e.kind));
    doc.insert("version".into(), json!("0"));
    doc.insert(
        "severity".into(),
        json!(if failed { "WARN" } else { "INFO" }),
    );
    doc.insert(
        "transaction".into(),
        json!({"type": "WEB", "id": e.seq.to_string()}),
    );
    doc.entry("outcome")
        .or_insert_with(|| json!({"result": "SUCCESS"}));
    doc.entry("target").or_insert_with(|| json!([]));
    Value::Object(doc)
}

async fn logs(_: Admin, State(idp): State<Shared>, Query(params): Params) -> Result<Response> {
    let size = limit(&params, 100, 1000)?;
    let time = |name: &str| -> Result<Option<chrono::DateTime<chrono::FixedOffset>>> {
        params
            .get(name)
            .map(|t| {
                chrono::DateTime::parse_from_rfc3339(t).map_err(|_| {
                    OktaError::validation(format!("{name}: '{t}' is not an ISO 8601 time"))
                })
            })
            .transpose()
    };
    let (since, until) = (time("since")?, time("until")?);
    let filter = params.get("filter").map(|f| parse_filter(f)).transpose()?;
    let q: Vec<String> = params
        .get("q")
        .map(|q| q.split_whitespace().map(str::to_lowercase).collect())
        .unwrap_or_default();
    let descending = match params.get("sortOrder").map(String::as_str) {
        None | Some("ASCENDING") => false,
        Some("DESCENDING") => true,
        Some(s) => {
            return Err(OktaError::validation(format!(
                "sortOrder: '{s}' is not ASCENDING or DESCENDING"
            )))
        }
    };
    let mut after: u64 = match params.get("after") {
        None => 0,
        Some(a) => a
            .parse()
            .map_err(|_| OktaError::validation(format!("after: '{a}' is not a cursor")))?,
    };
    let keep = |e: &AuditEvent, doc: &Value| {
        let at = chrono::DateTime::parse_from_rfc3339(&e.applied).ok();
        since.is_none_or(|s| at.is_some_and(|t| t >= s))
            && until.is_none_or(|u| at.is_some_and(|t| t < u))
            && filter.as_ref().is_none_or(|f| matches(f, doc))
            && (q.is_empty() || {
                let text = doc.to_string().to_lowercase();
                q.iter().all(|w| text.contains(w))
            })
    };
    let mut found: Vec<(u64, Value)> = Vec::new();
    loop {
        let chunk = idp.store.audit().since(after, 1000)?;
        let Some(last) = chunk.last() else { break };
        after = last.seq;
        for e in &chunk {
            let doc = log_event(e);
            if keep(e, &doc) {
                found.push((e.seq, doc));
            }
        }
        if !descending && found.len() >= size {
            break;
        }
    }
    if descending {
        found.reverse();
    }
    let full = found.len() > size;
    found.truncate(size);
    let cursor = found.last().map(|(s, _)| s.to_string());
    // A polling client (ascending, no `until`) always gets a next link, as Okta gives.
    let next = if full || (!descending && until.is_none()) {
        cursor.or_else(|| params.get("after").cloned())
    } else {
        None
    };
    let items = found.into_iter().map(|(_, d)| d).collect();
    Ok(page(&idp, "/api/v1/logs", &params, items, next, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_transitions_follow_okta() {
        use Status::*;
        assert_eq!(
            transition("activate", Staged, false).unwrap().0,
            Provisioned
        );
        assert_eq!(
            transition("activate", Deprovisioned, true).unwrap().0,
            Active
        );
        assert_eq!(
            transition("activate", Active, true).unwrap_err().code,
            "E0000016"
        );
        assert_eq!(transition("suspend", Active, true).unwrap().0, Suspended);
        assert_eq!(
            transition("suspend", Provisioned, false)
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(transition("unsuspend", Suspended, true).unwrap().0, Active);
        assert_eq!(
            transition("deactivate", Suspended, true).unwrap().0,
            Deprovisioned
        );
        assert_eq!(
            transition("deactivate", Deprovisioned, true)
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(transition("explode", Active, true).unwrap_err().status, 404);
    }

    #[test]
    fn filters_match_nested_and_listed_fields() {
        let doc = json!({"status": "ACTIVE", "profile": {"login": "Ann@X.test"},
            "target": [{"id": "a"}, {"id": "b"}], "lastUpdated": "2026-01-02T00:00:00.000Z"});
        let m = |f: &str| matches(&parse_filter(f).unwrap(), &doc);
        assert!(m("status eq \"ACTIVE\""));
        assert!(m("profile.login eq \"ann@x.test\""));
        assert!(m("target.id eq \"b\" and status eq \"active\""));
        assert!(m("lastUpdated gt \"2026-01-01T00:00:00.000Z\""));
        assert!(!m("lastUpdated lt \"2026-01-01T00:00:00.000Z\""));
        assert!(m("profile.login sw \"ann\" or status eq \"x\""));
        assert!(!m("not (status pr)"));
        assert!(parse_filter("status eq").is_err());
    }
}
