//! How resources are written in answers (RFC 7643 §2-§4).

use serde_json::{json, Map, Value};

use super::{Answer, Call, Quirk};
use scim::schema::ENTERPRISE_USER_URN;

pub(super) const QUIRKS: &[Quirk] = &[
    Quirk::answer(
        "scim-schemas-missing",
        "resources are answered without schemas (RFC 7643 §3)",
        |call, a| a.each_resource(call, |r| drop(r.remove("schemas"))),
    ),
    Quirk::answer(
        "scim-enterprise-urn-missing",
        "the enterprise URN is left out of schemas (RFC 7643 §4.3)",
        |call, a| {
            a.each_resource(call, |r| {
                if let Some(schemas) = r.get_mut("schemas").and_then(Value::as_array_mut) {
                    schemas.retain(|s| s != ENTERPRISE_USER_URN);
                }
            })
        },
    ),
    Quirk::answer(
        "scim-manager-bare-id",
        "manager is answered as a bare id (RFC 7643 §4.3)",
        |call, a| {
            a.each_resource(call, |r| {
                if let Some(manager) = r
                    .get_mut(ENTERPRISE_USER_URN)
                    .and_then(|e| e.get_mut("manager"))
                {
                    *manager = manager["value"].clone();
                }
            })
        },
    ),
    Quirk::answer(
        "scim-user-groups-hidden",
        "User.groups is never answered (RFC 7643 §4.1.2)",
        |call, a| a.each_resource(call, |r| drop(r.remove("groups"))),
    ),
    Quirk::answer(
        "scim-no-meta-location",
        "resources are answered without meta.location (RFC 7643 §3.1)",
        |call, a| each_meta(call, a, |meta| drop(meta.remove("location"))),
    ),
    Quirk::answer(
        "scim-resource-type-lowercase",
        "meta.resourceType is answered in lower case (RFC 7644 §3.3.1)",
        |call, a| each_meta(call, a, |meta| lower_case(meta, "resourceType")),
    ),
    Quirk::answer(
        "scim-last-modified-frozen",
        "meta.lastModified never moves from meta.created (RFC 7643 §3.1)",
        |call, a| {
            each_meta(call, a, |meta| {
                if let Some(created) = meta.get("created").cloned() {
                    meta.insert("lastModified".into(), created);
                }
            })
        },
    ),
    Quirk::answer(
        "scim-local-datetimes",
        "meta dates are answered as MM/DD/YYYY hh:mm:ss (RFC 7643 §2.3.5)",
        |call, a| {
            each_meta(call, a, |meta| {
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
            })
        },
    ),
    Quirk::answer(
        "scim-version-not-etag",
        "meta.version differs from the ETag (RFC 7644 §3.14)",
        |call, a| {
            each_meta(call, a, |meta| {
                if let Some(v) = meta.get("version").and_then(Value::as_str) {
                    let changed = format!("v-{v}");
                    meta.insert("version".into(), json!(changed));
                }
            })
        },
    ),
    Quirk::answer(
        "scim-all-primary",
        "every value of a multi-valued attribute is answered primary (RFC 7643 §2.4)",
        |call, a| {
            a.each_resource(call, |r| {
                for items in r.values_mut().filter_map(Value::as_array_mut) {
                    if items.iter().any(|i| i.get("primary").is_some()) {
                        for item in items.iter_mut().filter_map(Value::as_object_mut) {
                            item.insert("primary".into(), json!(true));
                        }
                    }
                }
            })
        },
    ),
    Quirk::answer(
        "scim-member-type-lowercase",
        "members[].type is answered as user or group (RFC 7643 §4.2)",
        |call, a| {
            a.each_resource(call, |r| {
                for member in multi_values(r, "members") {
                    lower_case(member, "type");
                }
            })
        },
    ),
    Quirk::answer(
        "scim-relative-refs",
        "$ref values are bare ids, not URIs (RFC 7643 §2.3.7)",
        |call, a| {
            a.each_resource(call, |r| {
                for items in r.values_mut().filter_map(Value::as_array_mut) {
                    for item in items.iter_mut().filter_map(Value::as_object_mut) {
                        if let Some(id) = item
                            .get("value")
                            .cloned()
                            .filter(|_| item.contains_key("$ref"))
                        {
                            item.insert("$ref".into(), id);
                        }
                    }
                }
            })
        },
    ),
    Quirk::answer(
        "scim-string-booleans",
        "booleans are answered as \"True\" and \"False\" (RFC 7643 §2.3.2)",
        |call, a| a.each_resource(call, |r| r.values_mut().for_each(stringify_booleans)),
    ),
];

/// The `meta` of each resource the answer holds.
fn each_meta(call: &Call<'_>, a: &mut Answer, mut f: impl FnMut(&mut Map<String, Value>)) {
    a.each_resource(call, |r| {
        if let Some(meta) = r.get_mut("meta").and_then(Value::as_object_mut) {
            f(meta)
        }
    })
}

fn lower_case(o: &mut Map<String, Value>, key: &str) {
    if let Some(Value::String(text)) = o.get_mut(key) {
        text.make_ascii_lowercase();
    }
}

fn multi_values<'a>(
    r: &'a mut Map<String, Value>,
    attribute: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    r.get_mut(attribute)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn stringify_booleans(v: &mut Value) {
    match v {
        Value::Bool(b) => *v = json!(if *b { "True" } else { "False" }),
        Value::Array(items) => items.iter_mut().for_each(stringify_booleans),
        Value::Object(o) => o.values_mut().for_each(stringify_booleans),
        _ => {}
    }
}
