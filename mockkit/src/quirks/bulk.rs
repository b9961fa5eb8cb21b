//! Bulk (RFC 7644 §3.7).

use axum::http::{Method, StatusCode};
use serde_json::Value;

use super::{Answer, Call, Quirk};

pub(super) const QUIRKS: &[Quirk] = &[
    Quirk::rewrite(
        "scim-bulk-ids-unresolved",
        "bulkId references are stored as written (RFC 7644 §3.7.2)",
        |call| {
            operations(call).for_each(strip_bulk_ids);
        },
    ),
    Quirk::rewrite(
        "scim-bulk-fail-on-errors-ignored",
        "failOnErrors is ignored (RFC 7644 §3.7.3)",
        |call| {
            if let Some(o) = bulk_request(call).and_then(Value::as_object_mut) {
                o.remove("failOnErrors");
            }
        },
    ),
    Quirk::rewrite(
        "scim-bulk-version-ignored",
        "Bulk operation versions are ignored (RFC 7644 §3.7)",
        |call| {
            for op in operations(call).filter_map(Value::as_object_mut) {
                op.remove("version");
            }
        },
    ),
    Quirk::answer(
        "scim-bulk-terse",
        "BulkResponse without schemas, bulkId, location or error response (RFC 7644 §3.7.3)",
        |call, a| {
            if let Some(o) = bulk_response(call, a).and_then(Value::as_object_mut) {
                o.remove("schemas");
            }
            for r in results(call, a).filter_map(Value::as_object_mut) {
                for k in ["bulkId", "location", "response"] {
                    r.remove(k);
                }
            }
        },
    ),
];

/// The body of a POST to /Bulk.
fn bulk_request<'a>(call: &'a mut Call<'_>) -> Option<&'a mut Value> {
    if call.method != Method::POST || call.last_segment() != "Bulk" {
        return None;
    }
    call.body.as_mut()
}

fn operations<'a>(call: &'a mut Call<'_>) -> impl Iterator<Item = &'a mut Value> {
    bulk_request(call)
        .and_then(|b| b.get_mut("Operations"))
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// The BulkResponse an answer is.
fn bulk_response<'a>(call: &Call<'_>, a: &'a mut Answer) -> Option<&'a mut Value> {
    if call.last_segment() != "Bulk" || a.status != StatusCode::OK {
        return None;
    }
    a.body.as_mut()
}

/// The results of each operation in a BulkResponse.
pub(super) fn results<'a>(
    call: &Call<'_>,
    a: &'a mut Answer,
) -> impl Iterator<Item = &'a mut Value> {
    bulk_response(call, a)
        .and_then(|b| b.get_mut("Operations"))
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

fn strip_bulk_ids(v: &mut Value) {
    match v {
        Value::String(s) if s.starts_with("bulkId:") => *s = s["bulkId:".len()..].to_owned(),
        Value::Array(items) => items.iter_mut().for_each(strip_bulk_ids),
        Value::Object(o) => o.values_mut().for_each(strip_bulk_ids),
        _ => {}
    }
}
