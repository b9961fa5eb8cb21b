//! Entra ID's default SCIM client, without the `aadOptscim062020` flag (dialects.md §2).

use serde_json::{json, Map, Value};

use super::{ProfilePush, Speech, CORE_GROUP};

#[derive(Debug)]
pub struct Entra;

impl Speech for Entra {
    fn deletes_users(&self) -> bool {
        true
    }

    fn sends_group_external_id(&self) -> bool {
        true
    }

    fn pushes_manager(&self) -> bool {
        true
    }

    /// Entra's User-Agent is not documented (dialects.md §2.1).
    fn user_agent(&self) -> &'static str {
        "scimlab-entra-dialect"
    }

    fn content_type(&self) -> &'static str {
        "application/scim+json"
    }

    /// Entra capitalises op names.
    fn op(&self, name: &str) -> String {
        let mut c = name.chars();
        c.next()
            .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
            .unwrap_or_default()
    }

    fn string_booleans(&self) -> bool {
        true
    }

    fn search(&self, endpoint: &str, filter: &str) -> String {
        match endpoint {
            "Groups" => format!("/Groups?excludedAttributes=members&filter={filter}"),
            _ => format!("/{endpoint}?filter={filter}"),
        }
    }

    fn new_user(&self, _doc: &mut Map<String, Value>) {}

    fn profile_push(&self) -> ProfilePush {
        ProfilePush::PerAttribute
    }

    fn active_op(&self, active: bool) -> Value {
        json!({"op": self.op("replace"), "path": "active", "value": self.active(active)})
    }

    /// Entra matches a group by name before creating one (dialects.md §2.3).
    fn finds_group_before_push(&self) -> bool {
        true
    }

    fn new_group(&self, group: &str, name: &str) -> Value {
        json!({"schemas": [CORE_GROUP], "displayName": name, "externalId": group})
    }

    fn rename_op(&self, _id: &str, name: &str) -> Value {
        json!({"op": self.op("replace"), "path": "displayName", "value": name})
    }

    fn renames_before_members(&self) -> bool {
        false
    }

    /// The legacy member removal: `path: members` with the values to remove.
    fn member_ops(&self, add: &[(String, String)], remove: &[String]) -> Vec<Value> {
        let mut ops = Vec::new();
        if !remove.is_empty() {
            let values: Vec<Value> = remove.iter().map(|v| json!({"value": v})).collect();
            ops.push(json!({"op": "Remove", "path": "members", "value": values}));
        }
        if !add.is_empty() {
            let values: Vec<Value> = add
                .iter()
                .map(|(v, _)| json!({"$ref": null, "value": v}))
                .collect();
            ops.push(json!({"op": "Add", "path": "members", "value": values}));
        }
        ops
    }
}
