//! The HTTP face of a provider (axum): discovery, CRUD, search, bulk, ETags, auth, and an RFC
//! 7644 §3.12 error body for every failure, including ones axum itself would answer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, Path, RawQuery, Request, State,
};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::error::{ScimError, ScimType};
use crate::provider::{etag_matches, Page, Provider, View};
use crate::query::{ListQuery, Projection};
use crate::schema::{schema_json, LIST_RESPONSE_URN, SPC_URN};

pub const SCIM_JSON: &str = "application/scim+json";

/// Everything a request handler needs.
#[derive(Debug)]
pub struct AppState {
    pub provider: Provider,
    /// Accepted bearer tokens; empty, with no `oauth` either, means no authentication (never
    /// the default of a binary).
    pub tokens: Vec<String>,
    /// Accepted OAuth access tokens: the JWTs of one issuer for this audience.
    pub oauth: Option<Arc<crate::oauth::Verifier>>,
}

type Shared = Arc<AppState>;

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (
            status,
            [(header::CONTENT_TYPE, SCIM_JSON)],
            self.body().to_string(),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        resp
    }
}

/// The router of a SCIM service provider, served at `/` and again under `/v2`.
pub fn app(state: AppState) -> Router {
    let state = Arc::new(state);
    let max_body = state.provider.config().max_body_bytes;
    let max_bulk = state.provider.config().bulk_max_payload_bytes;
    let routes = Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{name}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
        .route("/", get(root_query))
        .route("/.search", post(root_search))
        .route("/Bulk", post(bulk).layer(DefaultBodyLimit::max(max_bulk)))
        .route("/Me", axum::routing::any(me))
        .route("/Me/{*rest}", axum::routing::any(me))
        .route("/{endpoint}", get(list).post(create))
        .route(
            "/{endpoint}/{id}",
            get(read)
                .put(update)
                .patch(update)
                .delete(remove)
                .post(search),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body));
    Router::new()
        .merge(routes.clone())
        .nest("/v2", routes)
        .fallback(unknown_route)
        .layer(middleware::from_fn(negotiate))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .with_state(state)
}

/// 429 with `Retry-After` once a credential has used its requests (`ProviderConfig::rate_limit`);
/// before authentication, so a flood of bad credentials is limited too.
async fn rate_limit(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let Some(limiter) = state.provider.limiter() else {
        return next.run(req).await;
    };
    let key = req
        .headers()
        .get(header::AUTHORIZATION)
        .map_or(&b""[..], HeaderValue::as_bytes);
    match limiter.take(key, std::time::Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let limit = limiter.limit();
            let mut resp = ScimError::new(
                429,
                None,
                format!(
                    "too many requests: at most {} at once and {} per second for each credential",
                    limit.burst, limit.per_second
                ),
            )
            .into_response();
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            resp
        }
    }
}

/// Longest request URI (path and query) served: a filter of `filter::MAX_FILTER_LEN` bytes
/// fits even when every byte is percent-encoded.
const MAX_URI_BYTES: usize = 32 * 1024;

/// Refuses an `Accept` that excludes JSON and a URI that is too long, gives every error the
/// RFC 7644 §3.12 body, and labels every JSON answer `application/scim+json`.
async fn negotiate(req: Request, next: Next) -> Response {
    if let Some(accept) = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    {
        let ok = accept.split(',').any(|part| {
            let media = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            matches!(
                media.as_str(),
                "*/*" | "application/*" | "application/json" | SCIM_JSON | ""
            )
        });
        if !ok {
            return ScimError::new(406, None, format!("cannot answer in '{accept}': this server speaks {SCIM_JSON} and application/json")).into_response();
        }
    }
    if req.uri().to_string().len() > MAX_URI_BYTES {
        // Longer than 65,534 bytes, hyper answers 414 itself, without a body, before any code
        // of ours runs; below that, this does, with the RFC's body.
        return ScimError::new(
            414,
            None,
            format!("the request URI is longer than {MAX_URI_BYTES} bytes"),
        )
        .into_response();
    }
    let resp = next.run(req).await;
    // axum's own refusals (a path that is not UTF-8, a body cut short) come as plain text.
    let mut resp = match plain_rejection(resp).await {
        Ok((status, text)) => {
            return ScimError::new(status.as_u16(), None, text).into_response();
        }
        Err(resp) => resp,
    };
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with(SCIM_JSON));
    if is_json {
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    }
    resp
}

/// An answer axum made itself (a bad query or path, a wrong method: a 4xx that is not JSON),
/// taken apart as (status, text) so a server can give it its own error body; the text is the
/// body, or the status's reason when there is none. Any other answer comes back as `Err`.
pub async fn plain_rejection(
    resp: Response,
) -> std::result::Result<(StatusCode, String), Response> {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|ct| ct.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if !status.is_client_error() || is_json {
        return Err(resp);
    }
    let text = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    // An answer without a body (a bare 413 or 405) still says what went wrong.
    let text = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_owned()
    } else {
        text
    };
    Ok((status, text))
}

async fn unknown_route(uri: Uri) -> ScimError {
    unknown_endpoint(uri.path())
}

/// 404 for an unknown path, or 400 `invalidVers` when it starts with another version (§3.13).
fn unknown_endpoint(path: &str) -> ScimError {
    let version = path
        .strip_prefix("/v")
        .and_then(|rest| rest.split('/').next())
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
    match version {
        Some(v) if v != "2" => ScimError::bad_request(
            ScimType::InvalidVers,
            format!("SCIM version {v} is not supported; use /v2 or no prefix"),
        ),
        _ => ScimError::not_found(format!("no SCIM endpoint at {path}")),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ScimError {
    ScimError::new(
        405,
        None,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Authenticated first: an anonymous caller learns nothing, not even that `/Me` is missing.
async fn me(_: Authed) -> ScimError {
    ScimError::new(
        501,
        None,
        "/Me is not supported: tokens here authenticate clients, not users",
    )
}

/// A request that carried an accepted bearer token.
struct Authed;

impl FromRequestParts<Shared> for Authed {
    type Rejection = ScimError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        if state.tokens.is_empty() && state.oauth.is_none() {
            return Ok(Authed);
        }
        let by_oauth = |t: &str| state.oauth.as_ref().map(|v| v.check(t));
        match crate::auth::credentials(&parts.headers, &["Bearer"]) {
            Some(t) if crate::auth::is_one_of(&state.tokens, t) => Ok(Authed),
            Some(t) => match by_oauth(t) {
                Some(Ok(_)) => Ok(Authed),
                Some(Err(why)) => Err(ScimError::new(
                    401,
                    None,
                    format!("the access token is not valid: {why}"),
                )),
                None => Err(ScimError::new(401, None, "the bearer token is not valid")),
            },
            None => Err(ScimError::new(
                401,
                None,
                "authentication required: send 'Authorization: Bearer <token>'",
            )),
        }
    }
}

/// A JSON request body; every way it can be wrong becomes a SCIM error.
struct JsonBody(Value);

impl FromRequest<Shared> for JsonBody {
    type Rejection = ScimError;

    async fn from_request(req: Request, state: &Shared) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        {
            let media = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if !(media == "application/json" || media == SCIM_JSON || media.ends_with("+json")) {
                return Err(ScimError::new(
                    415,
                    None,
                    format!("Content-Type '{ct}' is not supported: send {SCIM_JSON}"),
                ));
            }
        }
        let bulk = req.uri().path().ends_with("/Bulk");
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                let config = state.provider.config();
                let limit = if bulk {
                    format!(
                        "bulk.maxPayloadSize, {} bytes",
                        config.bulk_max_payload_bytes
                    )
                } else {
                    format!("{} bytes", config.max_body_bytes)
                };
                ScimError::new(
                    413,
                    None,
                    format!("the request body is larger than this endpoint accepts ({limit})"),
                )
            } else {
                ScimError::invalid_syntax(format!(
                    "the request body could not be read: {}",
                    rejection.body_text()
                ))
            }
        })?;
        crate::json::parse_unique(&bytes, crate::json::Keys::CaseInsensitive)
            .map(JsonBody)
            .map_err(|e| {
                ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}"))
            })
    }
}

fn query_params(raw: Option<String>) -> Result<Vec<(String, String)>, ScimError> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| ScimError::invalid_syntax(format!("the query string is malformed: {e}")))
}

fn type_at(state: &AppState, endpoint: &str) -> Result<usize, ScimError> {
    state
        .provider
        .type_for_endpoint(endpoint)
        .ok_or_else(|| unknown_endpoint(&format!("/{endpoint}/")))
}

fn if_match(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, SCIM_JSON)],
        body.to_string(),
    )
        .into_response()
}

fn resource_response(
    state: &AppState,
    status: StatusCode,
    view: View,
    projection: &Projection,
) -> Response {
    let etag = HeaderValue::from_str(&view.version).ok();
    let location = HeaderValue::from_str(&state.provider.location(view.rt, &view.id)).ok();
    let mut resp = json_response(status, &state.provider.render(view, projection));
    if let Some(v) = etag {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if let (StatusCode::CREATED, Some(v)) = (status, location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn list_response(page: Page) -> Response {
    let mut body = json!({
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": page.total,
        "itemsPerPage": page.resources.len(),
    });
    // A cursor page has no index (RFC 9865 §2 examples); an index page has no cursors.
    match page.cursors {
        None => body["startIndex"] = json!(page.start_index),
        Some(cursors) => {
            if let Some(next) = cursors.next {
                body["nextCursor"] = json!(next);
            }
            if let Some(previous) = cursors.previous {
                body["previousCursor"] = json!(previous);
            }
        }
    }
    body["Resources"] = Value::Array(page.resources);
    json_response(StatusCode::OK, &body)
}

// -- discovery (§4): sort and paging parameters are ignored, a filter is refused --------------

fn refuse_filter(params: &[(String, String)]) -> Result<(), ScimError> {
    if params.iter().any(|(k, _)| k.eq_ignore_ascii_case("filter")) {
        return Err(ScimError::new(
            403,
            None,
            "filtering is not supported on discovery endpoints (RFC 7644 §4)",
        ));
    }
    Ok(())
}

fn discovery_list(items: Vec<Value>) -> Response {
    let n = items.len();
    list_response(Page {
        total: n,
        start_index: 1,
        resources: items,
        cursors: None,
    })
}

async fn service_provider_config(
    State(state): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ScimError> {
    refuse_filter(&query_params(q)?)?;
    let c = state.provider.config();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "schemas": [SPC_URN],
            "documentationUri": "https://www.rfc-editor.org/rfc/rfc7644",
            "patch": {"supported": true},
            "bulk": {"supported": true, "maxOperations": c.bulk_max_operations, "maxPayloadSize": c.bulk_max_payload_bytes},
            "filter": {"supported": true, "maxResults": c.max_results},
            "changePassword": {"supported": true},
            "sort": {"supported": true},
            "etag": {"supported": true},
            "pagination": {
                "cursor": true,
                "index": true,
                "defaultPaginationMethod": "index",
                "defaultPageSize": c.max_results,
                "maxPageSize": c.max_results,
                "cursorTimeout": c.cursor_timeout.as_secs().max(1)
            },
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "Authentication with a bearer token in the Authorization header",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": true
            }],
            "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{}/ServiceProviderConfig", c.base_url)}
        }),
    ))
}

async fn resource_types(
    State(state): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ScimError> {
    refuse_filter(&query_params(q)?)?;
    let base = &state.provider.config().base_url;
    Ok(discovery_list(
        state
            .provider
            .defs()
            .iter()
            .map(|d| d.resource_type_json(base))
            .collect(),
    ))
}

async fn resource_type(
    State(state): State<Shared>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ScimError> {
    refuse_filter(&query_params(q)?)?;
    let def = state
        .provider
        .defs()
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| ScimError::not_found(format!("no resource type '{name}'")))?;
    Ok(json_response(
        StatusCode::OK,
        &def.resource_type_json(&state.provider.config().base_url),
    ))
}

fn all_schemas(state: &AppState) -> Vec<&crate::schema::Schema> {
    let mut out: Vec<&crate::schema::Schema> = Vec::new();
    for d in state.provider.defs() {
        for s in std::iter::once(&d.core).chain(d.extensions.iter().map(|(s, _)| s)) {
            if !out.iter().any(|o| o.id == s.id) {
                out.push(s);
            }
        }
    }
    out
}

async fn schemas(
    State(state): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ScimError> {
    refuse_filter(&query_params(q)?)?;
    let base = &state.provider.config().base_url;
    Ok(discovery_list(
        all_schemas(&state)
            .into_iter()
            .map(|s| schema_json(s, base))
            .collect(),
    ))
}

async fn schema(
    State(state): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ScimError> {
    refuse_filter(&query_params(q)?)?;
    let s = all_schemas(&state)
        .into_iter()
        .find(|s| s.id.eq_ignore_ascii_case(&id))
        .ok_or_else(|| ScimError::not_found(format!("no schema '{id}'")))?;
    Ok(json_response(
        StatusCode::OK,
        &schema_json(s, &state.provider.config().base_url),
    ))
}

// -- resources --------------------------------------------------------------------------------

async fn list(
    _: Authed,
    State(state): State<Shared>,
    Path(endpoint): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ScimError> {
    let rt = type_at(&state, &endpoint)?;
    let query = ListQuery::from_params(&query_params(q)?)?;
    Ok(list_response(state.provider.list(Some(rt), &query)?))
}

async fn root_query(
    _: Authed,
    State(state): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ScimError> {
    let query = ListQuery::from_params(&query_params(q)?)?;
    Ok(list_response(state.provider.list(None, &query)?))
}

async fn root_search(
    _: Authed,
    State(state): State<Shared>,
    JsonBody(body): JsonBody,
) -> Result<Response, ScimError> {
    let query = ListQuery::from_search_request(&body)?;
    Ok(list_response(state.provider.list(None, &query)?))
}

async fn create(
    _: Authed,
    State(state): State<Shared>,
    Path(endpoint): Path<String>,
    RawQuery(q): RawQuery,
    JsonBody(body): JsonBody,
) -> Result<Response, ScimError> {
    let rt = type_at(&state, &endpoint)?;
    let projection = Projection::from_params(&query_params(q)?);
    let view = state.provider.create(rt, &body).await?;
    Ok(resource_response(
        &state,
        StatusCode::CREATED,
        view,
        &projection,
    ))
}

async fn read(
    _: Authed,
    State(state): State<Shared>,
    Path((endpoint, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let rt = type_at(&state, &endpoint)?;
    let projection = Projection::from_params(&query_params(q)?);
    let view = state.provider.get(rt, &id)?;
    if let Some(tags) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        if etag_matches(tags, &view.version) {
            let mut resp = StatusCode::NOT_MODIFIED.into_response();
            if let Ok(v) = HeaderValue::from_str(&view.version) {
                resp.headers_mut().insert(header::ETAG, v);
            }
            return Ok(resp);
        }
    }
    Ok(resource_response(&state, StatusCode::OK, view, &projection))
}

/// PUT and PATCH: the same extraction and response; the method picks the provider call.
async fn update(
    _: Authed,
    method: Method,
    State(state): State<Shared>,
    Path((endpoint, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ScimError> {
    let rt = type_at(&state, &endpoint)?;
    let projection = Projection::from_params(&query_params(q)?);
    let precondition = if_match(&headers);
    if method == Method::PATCH && projection.is_empty() {
        // RFC 7644 §3.5.2 allows 204 for a PATCH; Entra asks it of groups, whose member lists
        // can be long. Users still get their resource back.
        let patched = state
            .provider
            .patch_group_quietly(rt, &id, &body, precondition)
            .await?;
        if let Some(version) = patched {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            if let Ok(v) = HeaderValue::from_str(&version) {
                resp.headers_mut().insert(header::ETAG, v);
            }
            return Ok(resp);
        }
    }
    let view = if method == Method::PATCH {
        state.provider.patch(rt, &id, &body, precondition).await?
    } else {
        state.provider.replace(rt, &id, &body, precondition).await?
    };
    Ok(resource_response(&state, StatusCode::OK, view, &projection))
}

async fn remove(
    _: Authed,
    State(state): State<Shared>,
    Path((endpoint, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let rt = type_at(&state, &endpoint)?;
    state.provider.delete(rt, &id, if_match(&headers)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /{endpoint}/.search`; any other POST to `/{endpoint}/{id}` is a wrong method.
async fn search(
    _: Authed,
    State(state): State<Shared>,
    Path((endpoint, id)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Response, ScimError> {
    let rt = type_at(&state, &endpoint)?;
    if id != ".search" {
        return Err(ScimError::new(
            405,
            None,
            format!("POST is not allowed on /{endpoint}/{id}"),
        ));
    }
    let query = ListQuery::from_search_request(&body)?;
    Ok(list_response(state.provider.list(Some(rt), &query)?))
}

async fn bulk(
    _: Authed,
    State(state): State<Shared>,
    JsonBody(body): JsonBody,
) -> Result<Response, ScimError> {
    let out = crate::bulk::run(&state.provider, &body).await?;
    Ok(json_response(StatusCode::OK, &out))
}
