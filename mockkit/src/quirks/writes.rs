//! Creates, replacements, deletes and what their answers say (RFC 7644 §3.3, §3.5.1, §3.6;
//! RFC 7643 §2, §4).

use axum::http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use super::{refuse, Call, Quirk};
use scim::schema::ENTERPRISE_USER_URN;
use scim::ScimType;

pub(super) const QUIRKS: &[Quirk] = &[
    Quirk::rewrite(
        "scim-case-sensitive-attributes",
        "attribute names in request bodies must match in case (RFC 7643 §2.1)",
        |call| {
            let b = scim::schema::builtin();
            let canonical: Vec<&str> = [&b.user, &b.group]
                .iter()
                .flat_map(|s| s.attributes.iter().map(|a| a.name.as_str()))
                .chain(["schemas", "id", "externalId", "meta"])
                .collect();
            if let Some(o) = call.written_object() {
                o.retain(|k, _| {
                    !canonical
                        .iter()
                        .any(|c| c.eq_ignore_ascii_case(k) && c != k)
                });
            }
        },
    ),
    Quirk::rewrite(
        "scim-null-as-text",
        "null values in request bodies are stored as the text \"null\" (RFC 7643 §2.5)",
        |call| {
            for value in call
                .written_object()
                .into_iter()
                .flat_map(|o| o.values_mut())
                .filter(|x| x.is_null())
            {
                *value = json!("null");
            }
        },
    ),
    Quirk::rewrite(
        "scim-ignores-required",
        "a User without userName is given one (RFC 7643 §4.1)",
        |call| {
            fill_in(call, "Users", "userName", "generated");
        },
    ),
    Quirk::rewrite(
        "scim-group-name-optional",
        "a Group without displayName is given one (RFC 7643 §4.2)",
        |call| {
            fill_in(call, "Groups", "displayName", "unnamed");
        },
    ),
    Quirk::answer(
        "scim-writes-no-content",
        "PUT and PATCH answer 204, even when attributes asks for the resource (RFC 7644 §3.5.1-3.5.2)",
        |call, a| {
            if matches!(call.method, Method::PATCH | Method::PUT) && a.status == StatusCode::OK {
                a.empty(StatusCode::NO_CONTENT);
            }
        },
    ),
    Quirk::answer(
        "scim-created-bare",
        "a create answers 201 with an empty body (RFC 7644 §3.3)",
        |_, a| {
            if a.status == StatusCode::CREATED {
                a.body = Some(json!({}));
            }
        },
    ),
    Quirk::answer(
        "scim-created-as-ok",
        "creates answer 200, not 201 (RFC 7644 §3.3)",
        |_, a| {
            if a.status == StatusCode::CREATED {
                a.status = StatusCode::OK;
            }
        },
    ),
    Quirk::answer(
        "scim-deleted-as-ok",
        "deletes answer 200, not 204 (RFC 7644 §3.6)",
        |call, a| {
            if call.method == Method::DELETE && a.status == StatusCode::NO_CONTENT {
                a.json(StatusCode::OK, json!({}));
            }
        },
    ),
    Quirk::answer(
        "scim-missing-as-empty",
        "GET of an unknown id answers 200 with an empty object (RFC 7644 §3.4.1)",
        |call, a| {
            if call.method == Method::GET
                && a.status == StatusCode::NOT_FOUND
                && !call.is_discovery()
            {
                a.json(StatusCode::OK, json!({}));
            }
        },
    ),
    Quirk::answer(
        "scim-missing-writes-succeed",
        "PATCH or DELETE of an unknown id answers 204 (RFC 7644 §3.5.2, §3.6)",
        |call, a| {
            if matches!(call.method, Method::DELETE | Method::PATCH)
                && a.status == StatusCode::NOT_FOUND
            {
                a.empty(StatusCode::NO_CONTENT);
            }
        },
    ),
    Quirk::answer(
        "scim-put-upserts",
        "PUT to an unknown id answers 200 (RFC 7644 §3.5.1)",
        |call, a| {
            if call.method == Method::PUT && a.status == StatusCode::NOT_FOUND {
                a.json(StatusCode::OK, call.body.clone().unwrap_or_default());
            }
        },
    ),
    Quirk::answer(
        "scim-readonly-echoed",
        "meta.created and groups sent by the client are echoed back (RFC 7643 §2.2)",
        |call, a| {
            let created = call.sent("meta").and_then(|m| m.get("created"));
            let groups = call.sent("groups");
            a.each_resource(call, |r| {
                if let Some(created) = created {
                    if let Some(meta) = r.get_mut("meta").and_then(Value::as_object_mut) {
                        meta.insert("created".into(), created.clone());
                    }
                }
                if let Some(groups) = groups {
                    r.insert("groups".into(), groups.clone());
                }
            })
        },
    ),
    Quirk::answer(
        "scim-password-echoed",
        "a password sent by the client is echoed back (RFC 7643 §4.1.1)",
        |call, a| {
            if let Some(password) = call.sent("password") {
                a.each_resource(call, |r| drop(r.insert("password".into(), password.clone())));
            }
        },
    ),
    Quirk::answer(
        "scim-deleted-references-kept",
        "a deleted resource stays in the members, groups and manager that named it (RFC 7644 §3.6)",
        |call, a| {
            let mut memory = call.memory();
            if call.method == Method::DELETE && a.status == StatusCode::NO_CONTENT {
                remember_deleted(&mut memory, call.last_segment());
            }
            a.each_resource(call, |r| keep_references(&mut memory, r));
        },
    ),
    Quirk::refusal(
        "scim-deleted-names-reserved",
        "the userName of a deleted User cannot be used again: 409 (RFC 7644 §3.6)",
        |call| {
            let reserved = call.method == Method::POST
                && call.last_segment() == "Users"
                && call
                    .body
                    .as_ref()
                    .is_some_and(|b| is_reserved(&call.memory(), b));
            if reserved {
                return refuse(
                    409,
                    Some(ScimType::Uniqueness),
                    "userName is reserved: it belonged to a deleted user",
                );
            }
            None
        },
    )
    .and_answer(|call, a| {
        let mut memory = call.memory();
        if call.method == Method::DELETE && a.status == StatusCode::NO_CONTENT {
            reserve_name(&mut memory, call.last_segment());
        }
        a.each_resource(call, |r| remember_name(&mut memory, r));
    }),
];

/// Gives a created or replaced resource of `endpoint` the required `attribute` it lacks.
fn fill_in(call: &mut Call<'_>, endpoint: &str, attribute: &str, prefix: &str) {
    if !call.writes_to(endpoint) {
        return;
    }
    if let Some(o) = call.written_object() {
        if !o.keys().any(|k| k.eq_ignore_ascii_case(attribute)) {
            let made_up = format!("{prefix}-{}", uuid::Uuid::new_v4());
            o.insert(attribute.into(), json!(made_up));
        }
    }
}

/// References an answer may hold to other resources: multi-valued ones, and the manager.
const REFERENCES: &[&str] = &["members", "groups"];

/// `scim-deleted-names-reserved`: every User's name by id as answers show them, and the names
/// of the deleted ones.
fn remember_name(memory: &mut Value, r: &Map<String, Value>) {
    let id = r.get("id").and_then(Value::as_str);
    let name = r.get("userName").and_then(Value::as_str);
    if let (Some(id), Some(name)) = (id, name) {
        memory["names"][id] = json!(name.to_lowercase());
    }
}

fn reserve_name(memory: &mut Value, id: &str) {
    if let Some(name) = memory["names"][id].as_str().map(str::to_owned) {
        memory["reserved"][name] = json!(true);
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
fn keep_references(memory: &mut Value, resource: &mut Map<String, Value>) {
    let Some(id) = resource
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let mut r = Value::Object(std::mem::take(resource));
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
    if let Value::Object(o) = r {
        *resource = o;
    }
}
