//! Attribute mappings: IdP profile -> SCIM attributes of the app's users.
//!
//! A mapping names a SCIM path (`userName`, `name.givenName`, `emails[type eq "work"].value`,
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`) and a template of
//! profile attributes (`{firstName} {lastName}`; `{id}` is the IdP user id).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::model::User;

pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mapping {
    pub to: String,
    pub from: String,
}

/// Okta's default app profile for a SCIM 2.0 app (dialects.md §5.1).
pub fn defaults() -> Vec<Mapping> {
    let m = |to: &str, from: &str| Mapping {
        to: to.to_owned(),
        from: from.to_owned(),
    };
    vec![
        m("userName", "{login}"),
        m("externalId", "{id}"),
        m("name.givenName", "{firstName}"),
        m("name.familyName", "{lastName}"),
        m("displayName", "{firstName} {lastName}"),
        m("emails[type eq \"work\"].value", "{email}"),
        m("title", "{title}"),
        m(&format!("{ENTERPRISE_USER}:department"), "{department}"),
        m(
            &format!("{ENTERPRISE_USER}:employeeNumber"),
            "{employeeNumber}",
        ),
    ]
}

/// Where a mapped value goes in a SCIM user.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// `attr` or `attr.sub`
    Core(String, Option<String>),
    /// `attr[type eq "t"].sub`: the record of that type in a multi-valued attribute.
    Typed(String, String, String),
    /// `urn:...:attr`
    Extension(String, String),
}

const RESERVED: &[&str] = &["id", "meta", "schemas", "active", "password", "groups"];

fn parse_target(path: &str) -> Result<Target, String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && n.starts_with(|c: char| c.is_ascii_alphabetic())
    };
    if let Some(rest) = path.strip_prefix("urn:") {
        let (urn, attr) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("'{path}' has no attribute after its schema URN"))?;
        if !name_ok(attr) {
            return Err(format!("'{attr}' is not an attribute name"));
        }
        return Ok(Target::Extension(format!("urn:{urn}"), attr.to_owned()));
    }
    if let Some((attr, rest)) = path.split_once('[') {
        let (filter, sub) = rest
            .split_once("].")
            .ok_or_else(|| format!("'{path}' must end in ].subAttribute"))?;
        let kind = filter
            .strip_prefix("type eq \"")
            .and_then(|f| f.strip_suffix('"'))
            .filter(|k| !k.contains('"'))
            .ok_or_else(|| format!("'{path}': only [type eq \"...\"] selects a record"))?;
        if !name_ok(attr) || !name_ok(sub) {
            return Err(format!("'{path}' is not an attribute path"));
        }
        return Ok(Target::Typed(attr.into(), kind.into(), sub.into()));
    }
    let (attr, sub) = match path.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (path, None),
    };
    if !name_ok(attr) || sub.is_some_and(|s| !name_ok(s)) {
        return Err(format!("'{path}' is not an attribute path"));
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(attr)) {
        return Err(format!(
            "'{attr}' is set by the provisioning engine, not a mapping"
        ));
    }
    Ok(Target::Core(attr.into(), sub.map(str::to_owned)))
}

/// Checks every mapping: a valid target, a template with balanced braces, no target twice.
pub fn validate(mappings: &[Mapping]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for m in mappings {
        parse_target(&m.to)?;
        if !seen.insert(m.to.to_lowercase()) {
            return Err(format!("'{}' is mapped twice", m.to));
        }
        placeholders(&m.from).map_err(|e| format!("mapping to '{}': {e}", m.to))?;
    }
    Ok(())
}

/// The `{name}`s of a template, and the literal text around them.
fn placeholders(template: &str) -> Result<Vec<(bool, &str)>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|c| c + open)
            .ok_or_else(|| format!("'{template}' has an unclosed '{{'"))?;
        out.push((false, &rest[..open]));
        out.push((true, &rest[open + 1..close]));
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("'{template}' has an unopened '}}'"));
    }
    out.push((false, rest));
    Ok(out)
}

fn profile_value(user: &User, name: &str) -> Option<String> {
    if name == "id" {
        return Some(user.id.clone());
    }
    match user.profile.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The user's mapped attributes, by SCIM path. A mapping whose profile attributes are all
/// empty is left out, so the target never gets an empty string for a missing value.
pub fn render(mappings: &[Mapping], user: &User) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for m in mappings {
        let Ok(parts) = placeholders(&m.from) else {
            continue;
        };
        let mut text = String::new();
        let mut any = false;
        for (is_name, part) in parts {
            if is_name {
                if let Some(v) = profile_value(user, part) {
                    any = true;
                    text.push_str(&v);
                }
            } else {
                text.push_str(part);
            }
        }
        let text = text.trim();
        if any && !text.is_empty() {
            out.insert(m.to.clone(), text.to_owned());
        }
    }
    out
}

/// Paths whose value differs; `None` when the new profile has no value for it.
pub fn diff(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    out.extend(
        old.keys()
            .filter(|k| !new.contains_key(*k))
            .map(|k| (k.clone(), None)),
    );
    out
}

fn object(parent: &mut Map<String, Value>, key: &str) -> Option<Map<String, Value>> {
    match parent.remove(key) {
        Some(Value::Object(o)) => Some(o),
        _ => None,
    }
}

/// Sets one mapped value in a SCIM user document.
fn set(doc: &mut Map<String, Value>, path: &str, value: &str) {
    let Ok(target) = parse_target(path) else {
        return;
    };
    match target {
        Target::Core(attr, None) => {
            doc.insert(attr, json!(value));
        }
        Target::Core(attr, Some(sub)) => {
            let mut o = object(doc, &attr).unwrap_or_default();
            o.insert(sub, json!(value));
            doc.insert(attr, Value::Object(o));
        }
        Target::Typed(attr, kind, sub) => {
            let mut items = match doc.remove(&attr) {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            };
            let at = items
                .iter()
                .position(|i| i.get("type").and_then(Value::as_str) == Some(kind.as_str()));
            let record = match at {
                Some(i) => &mut items[i],
                None => {
                    let primary = items.is_empty();
                    items.push(json!({"primary": primary, "type": kind}));
                    let last = items.len() - 1;
                    &mut items[last]
                }
            };
            if let Some(r) = record.as_object_mut() {
                r.insert(sub, json!(value));
            }
            doc.insert(attr, Value::Array(items));
        }
        Target::Extension(urn, attr) => {
            let mut o = object(doc, &urn).unwrap_or_default();
            o.insert(attr, json!(value));
            doc.insert(urn.clone(), Value::Object(o));
            let schemas = doc.entry("schemas").or_insert_with(|| json!([CORE_USER]));
            if let Some(list) = schemas.as_array_mut() {
                if !list.iter().any(|s| s.as_str() == Some(urn.as_str())) {
                    list.push(json!(urn));
                }
            }
        }
    }
}

/// Removes one mapped value from a SCIM user document.
fn unset(doc: &mut Map<String, Value>, path: &str) {
    let Ok(target) = parse_target(path) else {
        return;
    };
    let (container, key) = match target {
        Target::Core(attr, None) => {
            doc.remove(&attr);
            return;
        }
        Target::Typed(attr, kind, _) => {
            if let Some(Value::Array(items)) = doc.get_mut(&attr) {
                items.retain(|i| i.get("type").and_then(Value::as_str) != Some(kind.as_str()));
            }
            return;
        }
        Target::Core(attr, Some(sub)) => (attr, sub),
        Target::Extension(urn, attr) => (urn, attr),
    };
    if let Some(Value::Object(o)) = doc.get_mut(&container) {
        o.remove(&key);
    }
}

/// A SCIM user made of the mapped attributes.
pub fn document(attrs: &BTreeMap<String, String>) -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("schemas".into(), json!([CORE_USER]));
    for (path, value) in attrs {
        set(&mut doc, path, value);
    }
    doc
}

/// The target's user with the mapped attributes written over it, as Okta builds a PUT.
pub fn merge_into(
    current: &Map<String, Value>,
    attrs: &BTreeMap<String, String>,
    removed: &[String],
) -> Map<String, Value> {
    let mut doc = current.clone();
    doc.remove("meta");
    for path in removed {
        unset(&mut doc, path);
    }
    for (path, value) in attrs {
        set(&mut doc, path, value);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn user(profile: Value) -> User {
        User {
            id: "00u1".into(),
            status: Status::Active,
            created: String::new(),
            activated: None,
            status_changed: None,
            last_updated: String::new(),
            password_changed: None,
            profile: profile.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn defaults_render_a_scim_user() {
        let u = user(
            json!({"login": "ann@x.test", "firstName": "Ann", "lastName": "Lee",
            "email": "ann@x.test", "department": "R&D"}),
        );
        let doc = document(&render(&defaults(), &u));
        assert_eq!(
            Value::Object(doc),
            json!({
                "schemas": [CORE_USER, ENTERPRISE_USER],
                "displayName": "Ann Lee",
                "emails": [{"primary": true, "type": "work", "value": "ann@x.test"}],
                "externalId": "00u1",
                "name": {"familyName": "Lee", "givenName": "Ann"},
                ENTERPRISE_USER: {"department": "R&D"},
                "userName": "ann@x.test",
            })
        );
    }

    #[test]
    fn missing_values_are_left_out_and_diffed_as_removed() {
        let before = render(&defaults(), &user(json!({"login": "a", "title": "Dev"})));
        let after = render(&defaults(), &user(json!({"login": "a", "firstName": "A"})));
        assert_eq!(after.get("displayName").map(String::as_str), Some("A"));
        assert!(!after.contains_key("title"));
        let d = diff(&before, &after);
        assert!(d.contains(&("title".into(), None)));
        assert!(d.contains(&("name.givenName".into(), Some("A".into()))));
        let merged = merge_into(&document(&before), &after, &["title".to_owned()]);
        assert!(!merged.contains_key("title"));
        assert_eq!(merged["name"]["givenName"], "A");
    }

    #[test]
    fn bad_mappings_are_refused_with_the_reason() {
        let bad = |to: &str, from: &str| {
            validate(&[Mapping {
                to: to.into(),
                from: from.into(),
            }])
            .unwrap_err()
        };
        assert!(bad("active", "{x}").contains("provisioning engine"));
        assert!(bad("emails[value co \"x\"].value", "{x}").contains("type eq"));
        assert!(bad("name..x", "{x}").contains("not an attribute path"));
        assert!(bad("title", "{x").contains("unclosed"));
        assert!(validate(&[
            Mapping {
                to: "title".into(),
                from: "{a}".into()
            },
            Mapping {
                to: "Title".into(),
                from: "{b}".into()
            },
        ])
        .unwrap_err()
        .contains("twice"));
    }
}
