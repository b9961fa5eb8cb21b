//! Okta's OIN SCIM 2.0 client (dialects.md §1).

use serde_json::{json, Map, Value};

use super::{ProfilePush, Speech, CORE_GROUP};

#[derive(Debug)]
pub struct Okta;

impl Speech for Okta {
    fn deletes_users(&self) -> bool {
        false
    }

    fn sends_group_external_id(&self) -> bool {
        false
    }

    fn pushes_manager(&self) -> bool {
        false
    }

    fn user_agent(&self) -> &'static str {
        "Okta SCIM Client 1.0.0"
    }

    fn content_type(&self) -> &'static str {
        "application/scim+json; charset=utf-8"
    }

    fn op(&self, name: &str) -> String {
        name.to_owned()
    }

    fn string_booleans(&self) -> bool {
        false
    }

    /// Okta pages its look-ups (and takes a 404 for none, dialects.md §1.3).
    fn search(&self, endpoint: &str, filter: &str) -> String {
        format!("/{endpoint}?filter={filter}&startIndex=1&count=100")
    }

    fn new_user(&self, doc: &mut Map<String, Value>) {
        doc.insert("groups".into(), json!([]));
    }

    fn profile_push(&self) -> ProfilePush {
        ProfilePush::WholeResource
    }

    fn active_op(&self, active: bool) -> Value {
        json!({"op": "replace", "value": {"active": active}})
    }

    fn finds_group_before_push(&self) -> bool {
        false
    }

    fn new_group(&self, _group: &str, name: &str) -> Value {
        json!({"schemas": [CORE_GROUP], "displayName": name, "members": []})
    }

    fn rename_op(&self, id: &str, name: &str) -> Value {
        json!({"op": "replace", "value": {"id": id, "displayName": name}})
    }

    /// Okta resends the name with every membership push (dialects.md §1.7).
    fn renames_before_members(&self) -> bool {
        true
    }

    fn member_ops(&self, add: &[(String, String)], remove: &[String]) -> Vec<Value> {
        let mut ops: Vec<Value> = remove
            .iter()
            .map(|r| json!({"op": "remove", "path": format!("members[value eq \"{r}\"]")}))
            .collect();
        if !add.is_empty() {
            let values: Vec<Value> = add
                .iter()
                .map(|(v, display)| json!({"value": v, "display": display}))
                .collect();
            ops.push(json!({"op": "add", "path": "members", "value": values}));
        }
        ops
    }
}
