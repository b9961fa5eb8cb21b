//! Named quirks of a mock's SCIM endpoint. Each breaks one RFC 7644 / RFC 7643 behaviour (or one
//! IdP expectation) on purpose, by rewriting the request before the engine sees it or the answer
//! after; the conformance suite proves with them that its checks can fail (`docs/conformance.md`
//! has the check -> quirk table).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::sim::{Quirks, Simulated};
use scim::error::ScimError;
use scim::schema::ENTERPRISE_USER_URN;
use scim::ScimType;

pub const SCIM_QUIRKS: &[(&str, &str)] = &[
    ("scim-no-location", "no Location header on a create (RFC 7644 §3.3)"),
    ("scim-no-www-authenticate", "401 without WWW-Authenticate (RFC 7235 §3.1)"),
    ("scim-plain-json", "answers typed application/json, not application/scim+json (RFC 7644 §3.1)"),
    ("scim-numeric-error-status", "error bodies carry status as a number, not a string (RFC 7644 §3.12)"),
    ("scim-no-etag", "no ETag headers (RFC 7644 §3.14)"),
    ("scim-patch-op-case-sensitive", "PATCH op names other than lower-case are refused (RFC 7644 §3.5.2)"),
    ("scim-filter-ignores-and", "a filter `A and B` is read as `A` (RFC 7644 §3.4.2.2)"),
    ("scim-no-paging", "startIndex and count are ignored (RFC 7644 §3.4.2.4)"),
    ("scim-attributes-ignored", "attributes and excludedAttributes are ignored (RFC 7644 §3.4.2.5)"),
    ("scim-patch-remove-ignored", "PATCH remove operations are dropped (RFC 7644 §3.5.2.2)"),
    ("scim-no-auth-schemes", "ServiceProviderConfig without authenticationSchemes (RFC 7643 §5)"),
    ("scim-filter-no-ordering", "filters with gt, ge, lt or le are refused (RFC 7644 §3.4.2.2)"),
    ("scim-filter-no-not", "`not (...)` in a filter is read as `(...)` (RFC 7644 §3.4.2.2)"),
    ("scim-filter-primary-value-only", "`emails.value` in a filter looks at the primary email only (RFC 7644 §3.4.2.2)"),
    ("scim-filter-keywords-refused", "filters comparing with true, false or null are refused (RFC 7644 §3.4.2.2)"),
    ("scim-filter-case-exact", "`userName eq` compares case-sensitively (RFC 7643 §4.1)"),
    ("scim-urn-paths-refused", "fully qualified attribute URNs are refused in parameters and PATCH (RFC 7644 §3.10)"),
    ("scim-ascii-only", "request bodies with non-ASCII characters are refused (RFC 7644 §3.8)"),
    ("scim-any-version", "any /vN/ prefix is answered as if it were supported (RFC 7644 §3.13)"),
    ("scim-strict-parameters", "unknown query parameters are refused (RFC 7644 §3.4.2)"),
    ("scim-accept-scim-json-only", "Accept: application/json is refused with 406 (RFC 7644 §3.8)"),
    ("scim-discovery-bare", "discovery answers without their schemas: bare lists, a list for one ResourceType (RFC 7644 §4)"),
    ("scim-discovery-permissive", "discovery endpoints ignore filters and accept DELETE (RFC 7644 §4)"),
    ("scim-me-404", "/Me answers 404 instead of 501 (RFC 7644 §3.11)"),
    ("scim-case-sensitive-attributes", "attribute names in request bodies must match in case (RFC 7643 §2.1)"),
    ("scim-null-as-text", "null values in request bodies are stored as the text \"null\" (RFC 7643 §2.5)"),
    ("scim-ignores-required", "a User without userName is given one (RFC 7643 §4.1)"),
    ("scim-group-name-optional", "a Group without displayName is given one (RFC 7643 §4.2)"),
    ("scim-patch-replace-as-add", "PATCH replace is run as add (RFC 7644 §3.5.2.3)"),
    ("scim-patch-complex-overwrites", "PATCH of a complex value drops its other sub-attributes (RFC 7644 §3.5.2.1)"),
    ("scim-writes-no-content", "PUT and PATCH answer 204, even when attributes asks for the resource (RFC 7644 §3.5.1-3.5.2)"),
    ("scim-patch-ops-reversed", "PATCH operations run last to first (RFC 7644 §3.5.2)"),
    ("scim-patch-add-as-replace", "PATCH add is run as replace (RFC 7644 §3.5.2.1)"),
    ("scim-if-match-ignored", "If-Match is ignored (RFC 7644 §3.14)"),
    ("scim-no-auth", "requests without a credential are served (RFC 7644 §2)"),
    ("scim-created-bare", "a create answers 201 with an empty body (RFC 7644 §3.3)"),
    ("scim-bulk-ids-unresolved", "bulkId references are stored as written (RFC 7644 §3.7.2)"),
    ("scim-bulk-fail-on-errors-ignored", "failOnErrors is ignored (RFC 7644 §3.7.3)"),
    ("scim-bulk-version-ignored", "Bulk operation versions are ignored (RFC 7644 §3.7)"),
    ("scim-bulk-terse", "BulkResponse without schemas, bulkId, location or error response (RFC 7644 §3.7.3)"),
    ("scim-bulk-unadvertised", "ServiceProviderConfig says bulk is unsupported, yet /Bulk works (RFC 7643 §5)"),
    ("scim-patch-unadvertised", "ServiceProviderConfig says PATCH is unsupported, yet it works (RFC 7643 §5)"),
    ("scim-filter-unadvertised", "ServiceProviderConfig says filtering is unsupported, yet filters work (RFC 7643 §5)"),
    ("scim-schema-overpromises", "/Schemas calls User.nickName returned: request and User.title immutable, which the server does not honour (RFC 7643 §7)"),
    ("scim-understated-max-results", "ServiceProviderConfig says filter.maxResults is 2, yet pages are larger (RFC 7643 §5)"),
    ("scim-limits-unnamed", "413 answers do not name the limit (RFC 7644 §3.7.4)"),
    ("scim-created-as-ok", "creates answer 200, not 201 (RFC 7644 §3.3)"),
    ("scim-deleted-as-ok", "deletes answer 200, not 204 (RFC 7644 §3.6)"),
    ("scim-missing-as-empty", "GET of an unknown id answers 200 with an empty object (RFC 7644 §3.4.1)"),
    ("scim-missing-writes-succeed", "PATCH or DELETE of an unknown id answers 204 (RFC 7644 §3.5.2, §3.6)"),
    ("scim-put-upserts", "PUT to an unknown id answers 200 (RFC 7644 §3.5.1)"),
    ("scim-list-bare", "ListResponses without startIndex and itemsPerPage (RFC 7644 §3.4.2)"),
    ("scim-list-loose", "ListResponses without schemas, with a text totalResults and `resources`, and 404 when empty (RFC 7644 §3.4.2)"),
    ("scim-sort-reversed", "sorted results come in reverse (RFC 7644 §3.4.2.3)"),
    ("scim-string-booleans", "booleans are answered as \"True\" and \"False\" (RFC 7643 §2.3.2)"),
    ("scim-local-datetimes", "meta dates are answered as MM/DD/YYYY hh:mm:ss (RFC 7643 §2.3.5)"),
    ("scim-last-modified-frozen", "meta.lastModified never moves from meta.created (RFC 7643 §3.1)"),
    ("scim-all-primary", "every value of a multi-valued attribute is answered primary (RFC 7643 §2.4)"),
    ("scim-schemas-missing", "resources are answered without schemas (RFC 7643 §3)"),
    ("scim-no-meta-location", "resources are answered without meta.location (RFC 7643 §3.1)"),
    ("scim-resource-type-lowercase", "meta.resourceType is answered in lower case (RFC 7644 §3.3.1)"),
    ("scim-readonly-echoed", "meta.created and groups sent by the client are echoed back (RFC 7643 §2.2)"),
    ("scim-password-echoed", "a password sent by the client is echoed back (RFC 7643 §4.1.1)"),
    ("scim-attributes-strict", "with attributes, or excludedAttributes=id, id is left out (RFC 7643 §2.2)"),
    ("scim-error-no-schemas", "error bodies without schemas (RFC 7644 §3.12)"),
    ("scim-error-unknown-type", "scimType is answered as badRequest (RFC 7644 §3.12)"),
    ("scim-error-detail-object", "error detail is an object (RFC 7644 §3.12)"),
    ("scim-version-not-etag", "meta.version differs from the ETag (RFC 7644 §3.14)"),
    ("scim-etag-unstable", "a new ETag on every answer (RFC 7232 §2.3)"),
    ("scim-member-type-lowercase", "members[].type is answered as user or group (RFC 7643 §4.2)"),
    ("scim-user-groups-hidden", "User.groups is never answered (RFC 7643 §4.1.2)"),
    ("scim-relative-refs", "$ref values are bare ids, not URIs (RFC 7643 §2.3.7)"),
    ("scim-enterprise-urn-missing", "the enterprise URN is left out of schemas (RFC 7643 §4.3)"),
    ("scim-manager-bare-id", "manager is answered as a bare id (RFC 7643 §4.3)"),
    ("scim-inactive-hidden", "users with active false are left out of lists (Entra SCIM guide)"),
    ("scim-schemas-nulls", "/Schemas answers carry null values (Entra SCIM guide)"),
    ("scim-deleted-references-kept", "a deleted resource stays in the members, groups and manager that named it (RFC 7644 §3.6)"),
    ("scim-members-capped", "a Group is answered with at most its first 100 members (RFC 7643 §4.2)"),
    ("scim-read-as-list", "GET of one resource by id answers a ListResponse holding it (RFC 7644 §3.4.1)"),
    ("scim-cursor-unadvertised", "ServiceProviderConfig has no pagination block, yet cursors work (RFC 9865 §4)"),
    ("scim-pagination-malformed", "ServiceProviderConfig's pagination.cursor is the text \"true\" and index is missing (RFC 9865 §4)"),
    ("scim-cursor-default-misstated", "ServiceProviderConfig says cursor is the default paging, yet a request without paging is paged by index (RFC 9865 §2.4)"),
    ("scim-cursor-stops-early", "no nextCursor after the first page, however many results remain (RFC 9865 §2)"),
    ("scim-previous-cursor-on-first", "the first page of a cursor query carries a previousCursor (RFC 9865 §2)"),
    ("scim-search-cursor-ignored", "POST .search ignores cursor and pages by index (RFC 9865 §3)"),
    ("scim-cursor-garbage-restarts", "a cursor not of the server's form is read as a request for the first page (RFC 9865 §2.1)"),
    ("scim-cursor-count-unchecked", "a later page's count is ignored, not compared with the first request's (RFC 9865 §2.1)"),
    ("scim-value-filters-refused", "a filter with a value path (`emails[value eq ...]`) is refused (RFC 7644 §3.4.2.2)"),
    ("scim-deleted-names-reserved", "the userName of a deleted User cannot be used again: 409 (RFC 7644 §3.6)"),
];

/// How many members `scim-members-capped` answers.
const CAPPED_MEMBERS: usize = 100;

/// Whether a quirk is on.
type On<'a> = &'a (dyn Fn(&str) -> bool + Sync);

/// Largest body a quirk buffers to rewrite (above the engine's own limits, so they still apply).
const BUFFER_LIMIT: usize = 64 << 20;

/// What a quirk needs to know about the request it rewrites the answer to.
struct Exchange {
    method: Method,
    path: String,
    params: Vec<(String, String)>,
    body: Option<Value>,
}

impl Exchange {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn last_segment(&self) -> &str {
        self.path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("")
    }

    /// The RFC 9865 cursor the request pages with, from the query or a .search body.
    fn cursor(&self) -> Option<&str> {
        self.param("cursor")
            .or_else(|| self.body.as_ref()?.get("cursor")?.as_str())
    }

    fn is_discovery(&self) -> bool {
        ["ServiceProviderConfig", "Schemas", "ResourceTypes"]
            .iter()
            .any(|d| self.path.contains(&format!("/{d}")))
    }
}

fn error(status: u16, scim_type: Option<ScimType>, detail: &str) -> Response {
    ScimError::new(status, scim_type, detail).into_response()
}

/// Middleware for a mock's SCIM endpoint: applies whichever quirks are switched on.
pub async fn scim_quirks(
    State(sim): State<Arc<dyn Simulated>>,
    req: Request,
    next: Next,
) -> Response {
    // Every request of every connector passes here: with no quirk on it costs one lock read.
    let active = sim.controls().quirks.active();
    if !SCIM_QUIRKS.iter().any(|(name, _)| active.contains(*name)) {
        return next.run(req).await;
    }
    let on = |name: &str| active.contains(name);
    let (mut parts, body) = req.into_parts();
    let params: Vec<(String, String)> = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let mut ex = Exchange {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        params,
        body: None,
    };
    if let Some(refused) = refusal(&on, &ex, &parts.headers) {
        return refused;
    }
    if on("scim-if-match-ignored") {
        parts.headers.remove(header::IF_MATCH);
    }
    if let Some(rewritten) = rewrite_query(&on, &ex.params) {
        let query = serde_urlencoded::to_string(&rewritten).unwrap_or_default();
        if let Ok(uri) = format!("{}?{query}", ex.path).parse() {
            parts.uri = uri;
        }
    }
    let body = if matches!(ex.method, Method::POST | Method::PUT | Method::PATCH) {
        let bytes = axum::body::to_bytes(body, BUFFER_LIMIT)
            .await
            .unwrap_or_default();
        if on("scim-ascii-only") && !bytes.is_ascii() {
            return error(
                400,
                Some(ScimType::InvalidValue),
                "only ASCII text is accepted",
            );
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(mut v) => {
                if on("scim-deleted-names-reserved")
                    && ex.method == Method::POST
                    && ex.last_segment() == "Users"
                    && is_reserved(&sim.controls().quirks.memory(), &v)
                {
                    return error(
                        409,
                        Some(ScimType::Uniqueness),
                        "userName is reserved: it belonged to a deleted user",
                    );
                }
                if let Err(refused) = rewrite_request(&on, &ex, &mut v) {
                    return refused.into_response();
                }
                ex.body = Some(v.clone());
                parts.headers.remove(header::CONTENT_LENGTH);
                Body::from(v.to_string())
            }
            Err(_) => Body::from(bytes),
        }
    } else {
        body
    };
    let resp = next.run(Request::from_parts(parts, body)).await;
    answer(&on, &ex, resp, &sim.controls().quirks).await
}

/// Requests a quirk answers itself.
fn refusal(on: On<'_>, ex: &Exchange, headers: &axum::http::HeaderMap) -> Option<Response> {
    let filter = ex.param("filter").unwrap_or("").to_ascii_lowercase();
    let padded = format!(" {filter} ");
    if on("scim-filter-no-ordering")
        && [" gt ", " ge ", " lt ", " le "]
            .iter()
            .any(|op| padded.contains(op))
    {
        return Some(error(
            400,
            Some(ScimType::InvalidFilter),
            "gt, ge, lt and le are not supported",
        ));
    }
    if on("scim-value-filters-refused") && filter.contains('[') {
        return Some(error(
            400,
            Some(ScimType::InvalidFilter),
            "value filters are not supported",
        ));
    }
    if on("scim-filter-keywords-refused")
        && [" true ", " false ", " null ", " true)", " false)", " null)"]
            .iter()
            .any(|k| padded.contains(k))
    {
        return Some(error(
            400,
            Some(ScimType::InvalidFilter),
            "compare with strings only",
        ));
    }
    if on("scim-urn-paths-refused") {
        let qualified = ex.params.iter().any(|(k, v)| {
            ["filter", "attributes", "excludedAttributes", "sortBy"].contains(&k.as_str())
                && v.to_ascii_lowercase().contains("urn:")
        });
        if qualified {
            return Some(error(
                400,
                Some(ScimType::InvalidPath),
                "attribute URNs are not supported",
            ));
        }
    }
    if on("scim-any-version")
        && ex.path.split('/').any(|s| {
            s.len() > 1 && s.starts_with('v') && s[1..].bytes().all(|b| b.is_ascii_digit())
        })
    {
        return Some(scim_json(StatusCode::OK, &list(Vec::new())));
    }
    if on("scim-strict-parameters") {
        const KNOWN: &[&str] = &[
            "filter",
            "attributes",
            "excludedAttributes",
            "sortBy",
            "sortOrder",
            "startIndex",
            "count",
        ];
        if let Some((k, _)) = ex.params.iter().find(|(k, _)| !KNOWN.contains(&k.as_str())) {
            return Some(error(
                400,
                Some(ScimType::InvalidValue),
                &format!("unknown parameter {k}"),
            ));
        }
    }
    if on("scim-accept-scim-json-only") {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !accept.is_empty() && !accept.contains("scim+json") && !accept.contains("*/*") {
            return Some(error(406, None, "only application/scim+json is served"));
        }
    }
    if on("scim-me-404") && ex.last_segment() == "Me" {
        return Some(error(404, None, "no such resource"));
    }
    if on("scim-discovery-permissive") && ex.is_discovery() && ex.method == Method::DELETE {
        return Some(StatusCode::NO_CONTENT.into_response());
    }
    None
}

/// The query a quirk leaves; `None` when it changes nothing.
fn rewrite_query(on: On<'_>, params: &[(String, String)]) -> Option<Vec<(String, String)>> {
    let mut out = params.to_vec();
    if on("scim-no-paging") {
        out.retain(|(k, _)| k != "startIndex" && k != "count");
    }
    if on("scim-attributes-ignored") {
        out.retain(|(k, _)| k != "attributes" && k != "excludedAttributes");
    }
    if let Some(i) = out.iter().position(|(k, _)| k == "cursor") {
        let paging = cursor_paging(on, &out[i].1, false);
        match paging.cursor {
            Some(c) => out[i].1 = c,
            None => drop(out.remove(i)),
        }
        if paging.drop_count {
            out.retain(|(k, _)| k != "count");
        }
    }
    for (_, v) in out.iter_mut().filter(|(k, _)| k == "filter") {
        if on("scim-filter-ignores-and") {
            if let Some(i) = v.to_ascii_lowercase().find(" and ") {
                v.truncate(i);
            }
        }
        if on("scim-filter-no-not") {
            *v = replace_ci(&replace_ci(v, "not (", "("), "not(", "(");
        }
        if on("scim-filter-primary-value-only") {
            *v = replace_ci(v, "emails.value", "emails[primary eq true].value");
        }
    }
    (out.as_slice() != params).then_some(out)
}

/// What the cursor quirks leave of a paging request.
struct CursorPaging {
    /// `None`: the cursor is dropped.
    cursor: Option<String>,
    drop_count: bool,
}

fn cursor_paging(on: On<'_>, cursor: &str, in_search_body: bool) -> CursorPaging {
    let cursor = if on("scim-search-cursor-ignored") && in_search_body {
        None
    } else if on("scim-cursor-garbage-restarts") && !cursor.contains('.') {
        Some(String::new())
    } else {
        Some(cursor.to_owned())
    };
    let later_page = cursor.as_deref().is_some_and(|c| !c.is_empty());
    CursorPaging {
        drop_count: on("scim-cursor-count-unchecked") && later_page,
        cursor,
    }
}

/// `text` with every case-insensitive occurrence of `from` (ASCII) replaced by `to`.
fn replace_ci(text: &str, from: &str, to: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(i) = lower[at..].find(from) {
        out.push_str(&text[at..at + i]);
        out.push_str(to);
        at += i + from.len();
    }
    out.push_str(&text[at..]);
    out
}

/// Rewrites a JSON request body; `Err` is an answer the quirk gives itself.
fn rewrite_request(on: On<'_>, ex: &Exchange, v: &mut Value) -> Result<(), ScimError> {
    let endpoint = ex
        .path
        .trim_end_matches('/')
        .rsplit('/')
        .nth(usize::from(ex.method != Method::POST))
        .unwrap_or("");
    if ex.method == Method::PATCH {
        rewrite_patch(on, v)?;
    }
    let Some(o) = v.as_object_mut() else {
        return Ok(());
    };
    if matches!(ex.method, Method::POST | Method::PUT) {
        if on("scim-case-sensitive-attributes") {
            let b = scim::schema::builtin();
            let canonical: Vec<&str> = [&b.user, &b.group]
                .iter()
                .flat_map(|s| s.attributes.iter().map(|a| a.name.as_str()))
                .chain(["schemas", "id", "externalId", "meta"])
                .collect();
            o.retain(|k, _| {
                !canonical
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(k) && c != k)
            });
        }
        if on("scim-null-as-text") {
            for value in o.values_mut().filter(|x| x.is_null()) {
                *value = json!("null");
            }
        }
        let has =
            |o: &Map<String, Value>, name: &str| o.keys().any(|k| k.eq_ignore_ascii_case(name));
        if on("scim-ignores-required") && endpoint == "Users" && !has(o, "userName") {
            o.insert(
                "userName".into(),
                json!(format!("generated-{}", uuid::Uuid::new_v4())),
            );
        }
        if on("scim-group-name-optional") && endpoint == "Groups" && !has(o, "displayName") {
            o.insert(
                "displayName".into(),
                json!(format!("unnamed-{}", uuid::Uuid::new_v4())),
            );
        }
    }
    if ex.method == Method::POST && ex.last_segment() == ".search" {
        if let Some(cursor) = o.get("cursor").and_then(Value::as_str) {
            let paging = cursor_paging(on, cursor, true);
            match paging.cursor {
                Some(c) => o.insert("cursor".into(), json!(c)),
                None => o.remove("cursor"),
            };
            if paging.drop_count {
                o.remove("count");
            }
        }
    }
    if ex.method == Method::POST && ex.last_segment() == "Bulk" {
        if on("scim-bulk-fail-on-errors-ignored") {
            o.remove("failOnErrors");
        }
        for op in o
            .get_mut("Operations")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if on("scim-bulk-version-ignored") {
                op.as_object_mut().map(|op| op.remove("version"));
            }
            if on("scim-bulk-ids-unresolved") {
                strip_bulk_ids(op);
            }
        }
    }
    Ok(())
}

fn strip_bulk_ids(v: &mut Value) {
    match v {
        Value::String(s) if s.starts_with("bulkId:") => *s = s["bulkId:".len()..].to_owned(),
        Value::Array(items) => items.iter_mut().for_each(strip_bulk_ids),
        Value::Object(o) => o.values_mut().for_each(strip_bulk_ids),
        _ => {}
    }
}

fn rewrite_patch(on: On<'_>, v: &mut Value) -> Result<(), ScimError> {
    if on("scim-urn-paths-refused")
        && v.to_string()
            .contains("urn:ietf:params:scim:schemas:extension")
    {
        return Err(ScimError::new(
            400,
            Some(ScimType::InvalidPath),
            "attribute URNs are not supported",
        ));
    }
    let Some(ops) = v.get_mut("Operations").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let name = |op: &Value| {
        op.get("op")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    if on("scim-patch-op-case-sensitive")
        && ops
            .iter()
            .any(|op| name(op) != name(op).to_ascii_lowercase())
    {
        return Err(ScimError::invalid_syntax(
            "op must be one of add, remove, replace",
        ));
    }
    if on("scim-patch-remove-ignored") {
        ops.retain(|op| !name(op).eq_ignore_ascii_case("remove"));
    }
    if on("scim-patch-ops-reversed") {
        ops.reverse();
    }
    if on("scim-patch-add-as-replace") {
        for op in ops
            .iter_mut()
            .filter(|op| name(op).eq_ignore_ascii_case("add"))
        {
            op["op"] = json!("replace");
        }
    }
    if on("scim-patch-replace-as-add") {
        for op in ops
            .iter_mut()
            .filter(|op| name(op).eq_ignore_ascii_case("replace"))
        {
            op["op"] = json!("add");
        }
    }
    if on("scim-patch-complex-overwrites") {
        let mut out = Vec::new();
        for op in ops.drain(..) {
            let path = op.get("path").and_then(Value::as_str).map(str::to_owned);
            let value = op.get("value").cloned().unwrap_or(Value::Null);
            let wiped: Vec<String> = match (&path, &value) {
                (Some(p), Value::Object(_)) if !p.contains(['.', '[']) => vec![p.clone()],
                (None, Value::Object(o)) => o
                    .iter()
                    .filter(|(_, x)| x.is_object())
                    .map(|(k, _)| k.clone())
                    .collect(),
                _ => Vec::new(),
            };
            out.extend(
                wiped
                    .into_iter()
                    .map(|p| json!({"op": "remove", "path": p})),
            );
            out.push(op);
        }
        *ops = out;
    }
    Ok(())
}

fn list(resources: Vec<Value>) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": resources.len(),
           "startIndex": 1, "itemsPerPage": resources.len(), "Resources": resources})
}

fn scim_json(status: StatusCode, v: &Value) -> Response {
    let mut resp = (status, v.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/scim+json"),
    );
    resp
}

/// Quirks that rewrite the body of an answer.
const BODY_QUIRKS: &[&str] = &[
    "scim-filter-unadvertised",
    "scim-schema-overpromises",
    "scim-no-auth-schemes",
    "scim-numeric-error-status",
    "scim-filter-case-exact",
    "scim-discovery-bare",
    "scim-discovery-permissive",
    "scim-writes-no-content",
    "scim-no-auth",
    "scim-created-bare",
    "scim-bulk-terse",
    "scim-bulk-unadvertised",
    "scim-patch-unadvertised",
    "scim-understated-max-results",
    "scim-limits-unnamed",
    "scim-missing-as-empty",
    "scim-put-upserts",
    "scim-list-bare",
    "scim-list-loose",
    "scim-sort-reversed",
    "scim-string-booleans",
    "scim-local-datetimes",
    "scim-last-modified-frozen",
    "scim-all-primary",
    "scim-schemas-missing",
    "scim-no-meta-location",
    "scim-resource-type-lowercase",
    "scim-readonly-echoed",
    "scim-password-echoed",
    "scim-attributes-strict",
    "scim-error-no-schemas",
    "scim-error-unknown-type",
    "scim-error-detail-object",
    "scim-version-not-etag",
    "scim-member-type-lowercase",
    "scim-user-groups-hidden",
    "scim-relative-refs",
    "scim-enterprise-urn-missing",
    "scim-manager-bare-id",
    "scim-inactive-hidden",
    "scim-schemas-nulls",
    "scim-deleted-references-kept",
    "scim-members-capped",
    "scim-read-as-list",
    "scim-cursor-unadvertised",
    "scim-pagination-malformed",
    "scim-cursor-default-misstated",
    "scim-cursor-stops-early",
    "scim-previous-cursor-on-first",
    "scim-deleted-names-reserved",
];

async fn answer(on: On<'_>, ex: &Exchange, resp: Response, quirks: &Quirks) -> Response {
    let (mut parts, body) = resp.into_parts();
    let headers = &mut parts.headers;
    if on("scim-no-location") {
        headers.remove(header::LOCATION);
    }
    if on("scim-no-www-authenticate") {
        headers.remove(header::WWW_AUTHENTICATE);
    }
    if on("scim-no-etag") {
        headers.remove(header::ETAG);
    }
    if on("scim-etag-unstable") {
        if let Some(tag) = headers.get(header::ETAG).and_then(|t| t.to_str().ok()) {
            let fresh = format!(
                "{}-{}\"",
                tag.trim_end_matches('"'),
                uuid::Uuid::new_v4().simple()
            );
            if let Ok(v) = HeaderValue::from_str(&fresh) {
                headers.insert(header::ETAG, v);
            }
        }
    }
    if on("scim-plain-json") {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    let code = parts.status.as_u16();
    if on("scim-created-as-ok") && code == 201 {
        parts.status = StatusCode::OK;
    }
    if on("scim-missing-writes-succeed")
        && matches!(ex.method, Method::DELETE | Method::PATCH)
        && code == 404
    {
        return StatusCode::NO_CONTENT.into_response();
    }
    if on("scim-deleted-references-kept") && ex.method == Method::DELETE && code == 204 {
        remember_deleted(&mut quirks.memory(), ex.last_segment());
    }
    if on("scim-deleted-names-reserved") && ex.method == Method::DELETE && code == 204 {
        reserve_name(&mut quirks.memory(), ex.last_segment());
    }
    if on("scim-deleted-as-ok") && ex.method == Method::DELETE && code == 204 {
        return scim_json(StatusCode::OK, &json!({}));
    }
    if !BODY_QUIRKS.iter().any(|q| on(q)) {
        return Response::from_parts(parts, body);
    }
    let bytes = axum::body::to_bytes(body, BUFFER_LIMIT)
        .await
        .unwrap_or_default();
    let mut status = parts.status;
    let mut v = serde_json::from_slice::<Value>(&bytes).ok();
    if let Some(v) = v.as_mut() {
        rewrite_answer(on, ex, &mut status, v);
        if on("scim-deleted-references-kept") {
            each_resource(v, &mut |r| keep_references(&mut quirks.memory(), r));
        }
        if on("scim-deleted-names-reserved") {
            each_resource(v, &mut |r| remember_name(&mut quirks.memory(), r));
        }
    }
    if on("scim-missing-as-empty")
        && ex.method == Method::GET
        && status == StatusCode::NOT_FOUND
        && !ex.is_discovery()
    {
        status = StatusCode::OK;
        v = Some(json!({}));
    }
    if on("scim-no-auth") && status == StatusCode::UNAUTHORIZED {
        status = StatusCode::OK;
        v = Some(list(Vec::new()));
    }
    if on("scim-created-bare") && status == StatusCode::CREATED {
        v = Some(json!({}));
    }
    if on("scim-put-upserts") && ex.method == Method::PUT && status == StatusCode::NOT_FOUND {
        status = StatusCode::OK;
        v = ex.body.clone();
    }
    if on("scim-writes-no-content")
        && matches!(ex.method, Method::PATCH | Method::PUT)
        && status == StatusCode::OK
    {
        status = StatusCode::NO_CONTENT;
        v = None;
    }
    if on("scim-list-loose")
        && is_list(v.as_ref())
        && v.as_ref().is_some_and(|l| l["totalResults"] == json!("0"))
    {
        return error(404, None, "nothing matches");
    }
    parts.status = status;
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = match (v, status) {
        (_, StatusCode::NO_CONTENT) => Body::empty(),
        (Some(v), _) => Body::from(v.to_string()),
        (None, _) => Body::from(bytes),
    };
    Response::from_parts(parts, body)
}

/// References an answer may hold to other resources: multi-valued ones, and the manager.
const REFERENCES: &[&str] = &["members", "groups"];

/// `scim-deleted-names-reserved`: every User's name by id as answers show them, and the names
/// of the deleted ones.
fn remember_name(memory: &mut Value, r: &Value) {
    if let (Some(id), Some(name)) = (r["id"].as_str(), r["userName"].as_str()) {
        memory["names"][id] = json!(name.to_lowercase());
    }
}

fn reserve_name(memory: &mut Value, id: &str) {
    let name = memory["names"][id].clone();
    if name.is_string() {
        memory["reserved"][name.as_str().unwrap_or_default()] = json!(true);
    }
}

fn is_reserved(memory: &Value, body: &Value) -> bool {
    let name = body
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("userName")))
        .and_then(|(_, v)| v.as_str());
    name.is_some_and(|n| memory["reserved"][n.to_lowercase()] == json!(true))
}

fn remember_deleted(memory: &mut Value, id: &str) {
    if !memory["deleted"].is_array() {
        memory["deleted"] = json!([]);
    }
    if let Some(deleted) = memory["deleted"].as_array_mut() {
        deleted.push(json!(id));
    }
}

/// A server that never cleans up after a DELETE: each reference a resource was last answered
/// with comes back while the resource it names is deleted; the answer is remembered as seen.
fn keep_references(memory: &mut Value, r: &mut Value) {
    let Some(id) = r["id"].as_str().map(str::to_owned) else {
        return;
    };
    let deleted = memory["deleted"].as_array().cloned().unwrap_or_default();
    let gone = |v: &Value| deleted.contains(&v["value"]);
    let seen = memory["seen"][&id].take();
    for attr in REFERENCES {
        let mut now = r[*attr].as_array().cloned().unwrap_or_default();
        for old in seen[*attr].as_array().into_iter().flatten() {
            if gone(old) && !now.iter().any(|v| v["value"] == old["value"]) {
                now.push(old.clone());
            }
        }
        if !now.is_empty() {
            r[*attr] = Value::Array(now);
        }
    }
    let manager = &seen[ENTERPRISE_USER_URN]["manager"];
    if gone(manager) && r[ENTERPRISE_USER_URN]["manager"].is_null() {
        r[ENTERPRISE_USER_URN]["manager"] = manager.clone();
    }
    let mut remembered = json!({});
    for attr in REFERENCES {
        remembered[*attr] = r[*attr].clone();
    }
    remembered[ENTERPRISE_USER_URN]["manager"] = r[ENTERPRISE_USER_URN]["manager"].clone();
    memory["seen"][&id] = remembered;
}

fn is_list(v: Option<&Value>) -> bool {
    v.is_some_and(|v| v.get("Resources").is_some() || v.get("resources").is_some())
}

/// Every resource in an answer: the answer itself, or the members of a ListResponse.
fn each_resource(v: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    if let Some(items) = v.get_mut("Resources").and_then(Value::as_array_mut) {
        items.iter_mut().for_each(f);
    } else if v.get("id").is_some() {
        f(v);
    }
}

fn rewrite_answer(on: On<'_>, ex: &Exchange, status: &mut StatusCode, v: &mut Value) {
    let code = status.as_u16();
    if code >= 400 {
        rewrite_error(on, code, v);
    }
    if ex.last_segment() == "ServiceProviderConfig" {
        let spc = v;
        if on("scim-no-auth-schemes") {
            spc.as_object_mut()
                .map(|o| o.remove("authenticationSchemes"));
        }
        if on("scim-bulk-unadvertised") {
            spc["bulk"]["supported"] = json!(false);
        }
        if on("scim-patch-unadvertised") {
            spc["patch"]["supported"] = json!(false);
        }
        if on("scim-understated-max-results") {
            spc["filter"]["maxResults"] = json!(2);
        }
        if on("scim-filter-unadvertised") {
            spc["filter"]["supported"] = json!(false);
        }
        if on("scim-discovery-bare") {
            spc.as_object_mut().map(|o| o.remove("schemas"));
        }
        if on("scim-cursor-unadvertised") {
            spc.as_object_mut().map(|o| o.remove("pagination"));
        }
        if on("scim-pagination-malformed") {
            spc["pagination"]["cursor"] = json!("true");
            spc["pagination"].as_object_mut().map(|o| o.remove("index"));
        }
        if on("scim-cursor-default-misstated") {
            spc["pagination"]["defaultPaginationMethod"] = json!("cursor");
        }
        return;
    }
    let by_id = ex.path.contains("/Users/") || ex.path.contains("/Groups/");
    if on("scim-read-as-list") && ex.method == Method::GET && code == 200 && by_id {
        *v = list(vec![v.clone()]);
        return;
    }
    if ex.is_discovery() {
        if on("scim-discovery-bare") && code == 200 {
            if let Some(items) = v.get("Resources").cloned() {
                *v = items;
            } else if ex.path.contains("/ResourceTypes/") {
                *v = list(vec![v.clone()]);
            }
        }
        if on("scim-discovery-permissive") && ex.param("filter").is_some() && code == 403 {
            *status = StatusCode::OK;
            *v = list(Vec::new());
        }
        if on("scim-schemas-nulls") && ex.path.contains("/Schemas") {
            null_descriptions(v);
        }
        if on("scim-schema-overpromises") && ex.path.contains("/Schemas") {
            overpromise(v);
        }
        return;
    }
    if ex.last_segment() == "Bulk" && code == 200 {
        if on("scim-bulk-terse") {
            v.as_object_mut().map(|o| o.remove("schemas"));
            for r in v
                .get_mut("Operations")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(r) = r.as_object_mut() {
                    for k in ["bulkId", "location", "response"] {
                        r.remove(k);
                    }
                }
            }
        }
        if on("scim-error-unknown-type") {
            for r in v
                .get_mut("Operations")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if r["response"].get("scimType").is_some() {
                    r["response"]["scimType"] = json!("badRequest");
                }
            }
        }
        return;
    }
    if let Some(o) = v.as_object_mut() {
        if o.contains_key("Resources") {
            match ex.cursor() {
                Some("") if on("scim-previous-cursor-on-first") => {
                    if let Some(next) = o.get("nextCursor").cloned() {
                        o.insert("previousCursor".into(), next);
                    }
                }
                Some(c) if !c.is_empty() && on("scim-cursor-stops-early") => {
                    o.remove("nextCursor");
                }
                _ => {}
            }
            if on("scim-inactive-hidden") {
                if let Some(items) = o.get_mut("Resources").and_then(Value::as_array_mut) {
                    let before = items.len();
                    items.retain(|r| r["active"] != json!(false));
                    let hidden = before - items.len();
                    if let Some(n) = o.get("totalResults").and_then(Value::as_u64) {
                        o.insert(
                            "totalResults".into(),
                            json!(n.saturating_sub(hidden as u64)),
                        );
                    }
                }
            }
            if on("scim-filter-case-exact") {
                if let Some(name) = ex.param("filter").and_then(user_name_literal) {
                    if let Some(items) = o.get_mut("Resources").and_then(Value::as_array_mut) {
                        items.retain(|r| r["userName"] == json!(name));
                        let n = items.len();
                        o.insert("totalResults".into(), json!(n));
                    }
                }
            }
            if on("scim-sort-reversed") && ex.param("sortBy").is_some() {
                if let Some(items) = o.get_mut("Resources").and_then(Value::as_array_mut) {
                    items.reverse();
                }
            }
            if on("scim-list-bare") {
                o.remove("startIndex");
                o.remove("itemsPerPage");
            }
        }
    }
    let mut touch = |r: &mut Value| rewrite_resource(on, ex, r);
    each_resource(v, &mut touch);
    if on("scim-list-loose") {
        if let Some(o) = v.as_object_mut().filter(|o| o.contains_key("Resources")) {
            o.remove("schemas");
            if let Some(items) = o.remove("Resources") {
                o.insert("resources".into(), items);
            }
            if let Some(n) = o.get("totalResults").cloned() {
                o.insert("totalResults".into(), json!(n.to_string()));
            }
        }
    }
}

/// The literal of a filter `userName eq "..."`, when the filter is exactly that.
fn user_name_literal(filter: &str) -> Option<String> {
    let rest = filter
        .trim()
        .strip_prefix("userName eq ")
        .or_else(|| filter.trim().strip_prefix("USERNAME EQ "))?;
    serde_json::from_str::<String>(rest.trim()).ok()
}

fn rewrite_error(on: On<'_>, code: u16, v: &mut Value) {
    let Some(o) = v.as_object_mut() else { return };
    if on("scim-numeric-error-status") && o.contains_key("status") {
        o.insert("status".into(), json!(code));
    }
    if on("scim-error-no-schemas") {
        o.remove("schemas");
    }
    if on("scim-error-unknown-type") && o.contains_key("scimType") {
        o.insert("scimType".into(), json!("badRequest"));
    }
    if on("scim-error-detail-object") {
        if let Some(detail) = o.remove("detail") {
            o.insert("detail".into(), json!({"message": detail}));
        }
    }
    if on("scim-limits-unnamed") && code == 413 {
        o.insert("detail".into(), json!("the request is too large"));
    }
}

/// Marks User.nickName `returned: request` and User.title `immutable` wherever the User schema is.
fn overpromise(v: &mut Value) {
    match v {
        Value::Object(o) if o.get("id") == Some(&json!(scim::schema::USER_URN)) => {
            for a in o
                .get_mut("attributes")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                match a["name"].as_str() {
                    Some("nickName") => a["returned"] = json!("request"),
                    Some("title") => a["mutability"] = json!("immutable"),
                    _ => {}
                }
            }
        }
        Value::Object(o) => o.values_mut().for_each(overpromise),
        Value::Array(items) => items.iter_mut().for_each(overpromise),
        _ => {}
    }
}

fn null_descriptions(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.contains_key("multiValued") {
                o.insert("description".into(), Value::Null);
            }
            o.values_mut().for_each(null_descriptions);
        }
        Value::Array(items) => items.iter_mut().for_each(null_descriptions),
        _ => {}
    }
}

fn rewrite_resource(on: On<'_>, ex: &Exchange, r: &mut Value) {
    let Some(o) = r.as_object_mut() else { return };
    if on("scim-schemas-missing") {
        o.remove("schemas");
    }
    if on("scim-enterprise-urn-missing") {
        if let Some(schemas) = o.get_mut("schemas").and_then(Value::as_array_mut) {
            schemas.retain(|s| s != ENTERPRISE_USER_URN);
        }
    }
    if on("scim-manager-bare-id") {
        if let Some(manager) = o
            .get_mut(ENTERPRISE_USER_URN)
            .and_then(|e| e.get_mut("manager"))
        {
            *manager = manager["value"].clone();
        }
    }
    if on("scim-user-groups-hidden") {
        o.remove("groups");
    }
    if on("scim-members-capped") {
        if let Some(members) = o.get_mut("members").and_then(Value::as_array_mut) {
            members.truncate(CAPPED_MEMBERS);
        }
    }
    let drops_id = ex.param("attributes").is_some()
        || ex
            .param("excludedAttributes")
            .is_some_and(|x| x.split(',').any(|a| a.trim().eq_ignore_ascii_case("id")));
    if on("scim-attributes-strict") && drops_id {
        o.remove("id");
    }
    if let Some(meta) = o.get_mut("meta").and_then(Value::as_object_mut) {
        if on("scim-no-meta-location") {
            meta.remove("location");
        }
        if on("scim-resource-type-lowercase") {
            if let Some(t) = meta
                .get("resourceType")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
            {
                meta.insert("resourceType".into(), json!(t));
            }
        }
        if on("scim-last-modified-frozen") {
            if let Some(created) = meta.get("created").cloned() {
                meta.insert("lastModified".into(), created);
            }
        }
        if on("scim-local-datetimes") {
            for k in ["created", "lastModified"] {
                let local = meta
                    .get(k)
                    .and_then(Value::as_str)
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.format("%m/%d/%Y %H:%M:%S").to_string());
                if let Some(local) = local {
                    meta.insert(k.into(), json!(local));
                }
            }
        }
        if on("scim-version-not-etag") {
            if let Some(version) = meta
                .get("version")
                .and_then(Value::as_str)
                .map(|v| format!("v-{v}"))
            {
                meta.insert("version".into(), json!(version));
            }
        }
    }
    if matches!(ex.method, Method::POST | Method::PUT) {
        let sent = ex.body.as_ref().and_then(Value::as_object);
        if on("scim-readonly-echoed") {
            if let Some(created) = sent
                .and_then(|s| s.get("meta"))
                .and_then(|m| m.get("created"))
            {
                r["meta"]["created"] = created.clone();
            }
            if let Some(groups) = sent.and_then(|s| s.get("groups")) {
                r["groups"] = groups.clone();
            }
        }
        if on("scim-password-echoed") {
            if let Some(password) = sent.and_then(|s| s.get("password")) {
                r["password"] = password.clone();
            }
        }
    }
    let Some(o) = r.as_object_mut() else { return };
    for (key, value) in o.iter_mut() {
        if let Some(items) = value.as_array_mut() {
            let has_primary = items.iter().any(|i| i.get("primary").is_some());
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                if on("scim-all-primary") && has_primary {
                    item.insert("primary".into(), json!(true));
                }
                if key == "members" && on("scim-member-type-lowercase") {
                    if let Some(t) = item
                        .get("type")
                        .and_then(Value::as_str)
                        .map(str::to_ascii_lowercase)
                    {
                        item.insert("type".into(), json!(t));
                    }
                }
                if on("scim-relative-refs") {
                    if let Some(id) = item
                        .get("value")
                        .cloned()
                        .filter(|_| item.contains_key("$ref"))
                    {
                        item.insert("$ref".into(), id);
                    }
                }
            }
        }
    }
    if on("scim-string-booleans") {
        stringify_booleans(r);
    }
}

fn stringify_booleans(v: &mut Value) {
    match v {
        Value::Bool(b) => *v = json!(if *b { "True" } else { "False" }),
        Value::Array(items) => items.iter_mut().for_each(stringify_booleans),
        Value::Object(o) => o.values_mut().for_each(stringify_booleans),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_ignores_case_and_keeps_the_rest() {
        assert_eq!(
            replace_ci("a NOT (b) and not(c)", "not (", "("),
            "a (b) and not(c)"
        );
        assert_eq!(
            replace_ci("EMAILS.VALUE co \"x\"", "emails.value", "e"),
            "e co \"x\""
        );
    }

    #[test]
    fn a_user_name_literal_is_read_only_from_a_plain_eq() {
        assert_eq!(
            user_name_literal(r#"userName eq "Ab\"c""#),
            Some("Ab\"c".into())
        );
        assert_eq!(user_name_literal(r#"userName eq "a" and x pr"#), None);
    }

    #[test]
    fn every_body_quirk_is_a_known_quirk() {
        for q in BODY_QUIRKS {
            assert!(SCIM_QUIRKS.iter().any(|(name, _)| name == q), "{q}");
        }
    }
}
