//! What the server says of itself: /ServiceProviderConfig, /Schemas, /ResourceTypes (RFC 7643
//! §5-§7, RFC 7644 §4, RFC 9865 §4).

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{list, Answer, Call, Quirk};

pub(super) const QUIRKS: &[Quirk] = &[
    Quirk::answer(
        "scim-no-auth-schemes",
        "ServiceProviderConfig without authenticationSchemes (RFC 7643 §5)",
        |call, a| advertise(call, a, |spc| drop(spc.as_object_mut().map(|o| o.remove("authenticationSchemes")))),
    ),
    Quirk::answer(
        "scim-bulk-unadvertised",
        "ServiceProviderConfig says bulk is unsupported, yet /Bulk works (RFC 7643 §5)",
        |call, a| advertise(call, a, |spc| spc["bulk"]["supported"] = json!(false)),
    ),
    Quirk::answer(
        "scim-patch-unadvertised",
        "ServiceProviderConfig says PATCH is unsupported, yet it works (RFC 7643 §5)",
        |call, a| advertise(call, a, |spc| spc["patch"]["supported"] = json!(false)),
    ),
    Quirk::answer(
        "scim-filter-unadvertised",
        "ServiceProviderConfig says filtering is unsupported, yet filters work (RFC 7643 §5)",
        |call, a| advertise(call, a, |spc| spc["filter"]["supported"] = json!(false)),
    ),
    Quirk::answer(
        "scim-understated-max-results",
        "ServiceProviderConfig says filter.maxResults is 2, yet pages are larger (RFC 7643 §5)",
        |call, a| advertise(call, a, |spc| spc["filter"]["maxResults"] = json!(2)),
    ),
    Quirk::answer(
        "scim-cursor-unadvertised",
        "ServiceProviderConfig has no pagination block, yet cursors work (RFC 9865 §4)",
        |call, a| advertise(call, a, |spc| drop(spc.as_object_mut().map(|o| o.remove("pagination")))),
    ),
    Quirk::answer(
        "scim-pagination-malformed",
        "ServiceProviderConfig's pagination.cursor is the text \"true\" and index is missing (RFC 9865 §4)",
        |call, a| {
            advertise(call, a, |spc| {
                spc["pagination"]["cursor"] = json!("true");
                spc["pagination"].as_object_mut().map(|o| o.remove("index"));
            })
        },
    ),
    Quirk::answer(
        "scim-cursor-default-misstated",
        "ServiceProviderConfig says cursor is the default paging, yet a request without paging is paged by index (RFC 9865 §2.4)",
        |call, a| {
            advertise(call, a, |spc| {
                spc["pagination"]["defaultPaginationMethod"] = json!("cursor");
            })
        },
    ),
    Quirk::answer(
        "scim-discovery-bare",
        "discovery answers without their schemas: bare lists, a list for one ResourceType (RFC 7644 §4)",
        |call, a| {
            advertise(call, a, |spc| drop(spc.as_object_mut().map(|o| o.remove("schemas"))));
            if a.status != StatusCode::OK {
                return;
            }
            if let Some(v) = a.discovery(call) {
                if let Some(items) = v.get_mut("Resources") {
                    *v = items.take();
                } else if call.path.contains("/ResourceTypes/") {
                    *v = list(vec![v.take()]);
                }
            }
        },
    ),
    Quirk::refusal(
        "scim-discovery-permissive",
        "discovery endpoints ignore filters and accept DELETE (RFC 7644 §4)",
        |call| {
            if call.is_discovery() && call.method == Method::DELETE {
                return Some(axum::response::IntoResponse::into_response(
                    StatusCode::NO_CONTENT,
                ));
            }
            None
        },
    )
    .and_answer(|call, a| {
        let filtered = call.param("filter").is_some() && a.status == StatusCode::FORBIDDEN;
        if filtered && a.discovery(call).is_some() {
            a.json(StatusCode::OK, list(Vec::new()));
        }
    }),
    Quirk::answer(
        "scim-schemas-nulls",
        "/Schemas answers carry null values (Entra SCIM guide)",
        |call, a| schemas(call, a, null_descriptions),
    ),
    Quirk::answer(
        "scim-schema-overpromises",
        "/Schemas calls User.nickName returned: request and User.title immutable, which the server does not honour (RFC 7643 §7)",
        |call, a| schemas(call, a, overpromise),
    ),
];

/// Rewrites the ServiceProviderConfig, when the answer is one.
fn advertise(call: &Call<'_>, a: &mut Answer, f: impl FnOnce(&mut Value)) {
    if let Some(spc) = a.service_provider_config(call) {
        f(spc);
    }
}

/// Rewrites a /Schemas answer.
fn schemas(call: &Call<'_>, a: &mut Answer, f: fn(&mut Value)) {
    if !call.path.contains("/Schemas") {
        return;
    }
    if let Some(v) = a.discovery(call) {
        f(v);
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
