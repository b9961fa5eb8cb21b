//! PATCH application in the forms IdPs send.
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use scim::patch::{apply_patch, parse_patch_request};
use scim::schema::{group_resource, user_resource, PATCH_OP_URN};
use serde_json::{json, Map, Value};

fn ops(list: Value) -> Vec<scim::patch::PatchOp> {
    parse_patch_request(&json!({"schemas": [PATCH_OP_URN], "Operations": list})).unwrap_or_default()
}

fn object(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn patches(c: &mut Criterion) {
    let user = object(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u1", "userName": "alice", "active": true,
        "name": {"givenName": "Alice", "familyName": "Liddell"},
        "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
        "meta": {"resourceType": "User", "created": "2025-01-01T00:00:00Z", "lastModified": "2025-01-01T00:00:00Z"}
    }));
    let members: Vec<Value> = (0..100)
        .map(|i| json!({"value": format!("user-{i}"), "type": "User"}))
        .collect();
    let group = object(
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g", "displayName": "eng", "members": members}),
    );
    let user_def = user_resource();
    let group_def = group_resource();
    let cases = [
        (
            "okta_deactivate",
            &user_def,
            &user,
            ops(json!([{"op": "replace", "value": {"active": false}}])),
        ),
        (
            "entra_attribute_updates",
            &user_def,
            &user,
            ops(json!([
            {"op": "Replace", "path": "name.givenName", "value": "Ally"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ally@work.example"},
            {"op": "Replace", "path": "active", "value": "False"}])),
        ),
        (
            "group_add_member_of_100",
            &group_def,
            &group,
            ops(json!([{"op": "add", "path": "members", "value": [{"value": "user-new"}]}])),
        ),
        (
            "group_remove_member_of_100",
            &group_def,
            &group,
            ops(json!([{"op": "remove", "path": "members[value eq \"user-50\"]"}])),
        ),
    ];
    let mut g = c.benchmark_group("patch_apply");
    for (name, def, doc, ops) in &cases {
        g.bench_function(*name, |b| {
            b.iter(|| apply_patch(def, black_box(doc), black_box(ops)))
        });
    }
    g.finish();
}

criterion_group!(benches, patches);
criterion_main!(benches);
