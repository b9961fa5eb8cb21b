//! ListResponses, cursor paging (RFC 9865) and reads of one resource (RFC 7644 §3.4).

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{list, Quirk};

/// How many members `scim-members-capped` answers.
const CAPPED_MEMBERS: usize = 100;

pub(super) const QUIRKS: &[Quirk] = &[
    Quirk::answer(
        "scim-list-bare",
        "ListResponses without startIndex and itemsPerPage (RFC 7644 §3.4.2)",
        |call, a| {
            if let Some(o) = a.list(call) {
                o.remove("startIndex");
                o.remove("itemsPerPage");
            }
        },
    ),
    Quirk::answer(
        "scim-inactive-hidden",
        "users with active false are left out of lists (Entra SCIM guide)",
        |call, a| {
            let Some(o) = a.list(call) else { return };
            let Some(items) = o.get_mut("Resources").and_then(Value::as_array_mut) else {
                return;
            };
            let before = items.len();
            items.retain(|r| r["active"] != json!(false));
            let hidden = before - items.len();
            if let Some(n) = o.get("totalResults").and_then(Value::as_u64) {
                o.insert(
                    "totalResults".into(),
                    json!(n.saturating_sub(hidden as u64)),
                );
            }
        },
    ),
    Quirk::answer(
        "scim-members-capped",
        "a Group is answered with at most its first 100 members (RFC 7643 §4.2)",
        |call, a| {
            a.each_resource(call, |r| {
                if let Some(members) = r.get_mut("members").and_then(Value::as_array_mut) {
                    members.truncate(CAPPED_MEMBERS);
                }
            })
        },
    ),
    Quirk::answer(
        "scim-read-as-list",
        "GET of one resource by id answers a ListResponse holding it (RFC 7644 §3.4.1)",
        |call, a| {
            let by_id = call.path.contains("/Users/") || call.path.contains("/Groups/");
            if call.method != Method::GET || a.status != StatusCode::OK || !by_id {
                return;
            }
            if let Some(body) = a.body.as_mut() {
                *body = list(vec![body.take()]);
            }
        },
    ),
    Quirk::answer(
        "scim-cursor-stops-early",
        "no nextCursor after the first page, however many results remain (RFC 9865 §2)",
        |call, a| {
            if call.cursor().is_some_and(|c| !c.is_empty()) {
                if let Some(o) = a.list(call) {
                    o.remove("nextCursor");
                }
            }
        },
    ),
    Quirk::answer(
        "scim-previous-cursor-on-first",
        "the first page of a cursor query carries a previousCursor (RFC 9865 §2)",
        |call, a| {
            if call.cursor() != Some("") {
                return;
            }
            if let Some(o) = a.list(call) {
                if let Some(next) = o.get("nextCursor").cloned() {
                    o.insert("previousCursor".into(), next);
                }
            }
        },
    ),
    Quirk::rewrite(
        "scim-search-cursor-ignored",
        "POST .search ignores cursor and pages by index (RFC 9865 §3)",
        |call| {
            if call.is_search() {
                call.set_paging("cursor", None);
            }
        },
    ),
    Quirk::rewrite(
        "scim-cursor-garbage-restarts",
        "a cursor not of the server's form is read as a request for the first page (RFC 9865 §2.1)",
        |call| {
            if call.cursor().is_some_and(|c| !c.contains('.')) {
                call.set_paging("cursor", Some(String::new()));
            }
        },
    ),
    Quirk::rewrite(
        "scim-cursor-count-unchecked",
        "a later page's count is ignored, not compared with the first request's (RFC 9865 §2.1)",
        |call| {
            if call.cursor().is_some_and(|c| !c.is_empty()) {
                call.set_paging("count", None);
            }
        },
    ),
    Quirk::answer(
        "scim-list-loose",
        "ListResponses without schemas, with a text totalResults and `resources`, and 404 when empty (RFC 7644 §3.4.2)",
        |call, a| {
            let Some(o) = a.list(call) else { return };
            if o.get("totalResults") == Some(&json!(0)) {
                a.error(StatusCode::NOT_FOUND, "nothing matches");
                return;
            }
            o.remove("schemas");
            if let Some(items) = o.remove("Resources") {
                o.insert("resources".into(), items);
            }
            if let Some(n) = o.get("totalResults").cloned() {
                o.insert("totalResults".into(), json!(n.to_string()));
            }
        },
    ),
];
