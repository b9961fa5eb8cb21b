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

mod apps;
mod assignments;
mod connection;
mod groups;
mod logs;
mod outbox;
mod pushes;
mod users;

use apps::*;
use assignments::*;
use connection::*;
use groups::*;
/// The System Log filter evaluator, for the fuzz test.
pub use logs::matches;
use logs::*;
use outbox::*;
use pushes::*;
use users::*;

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
