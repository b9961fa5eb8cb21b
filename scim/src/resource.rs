//! Turning a client's JSON into a stored document: names canonicalised, types checked against
//! the schema, readOnly values dropped, writeOnly values set aside, required ones enforced.

use chrono::DateTime;
use serde_json::{Map, Value};

use crate::error::{Result, ScimError};
use crate::filter::is_assigned;
use crate::path::starts_with_urn;
use crate::schema::{AttrType, Attribute, Mutability, ResourceDef, Returned};

/// A validated resource body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Normalized {
    /// Attributes to store, in canonical spelling, in the order the client sent them.
    pub attrs: Map<String, Value>,
    /// `returned: never` values (such as `password`), which are never stored with the resource.
    pub secrets: Map<String, Value>,
}

/// How strictly values are read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Leniency {
    /// Accept "True"/"False" strings for booleans, as Entra ID sends in PATCH.
    pub boolean_strings: bool,
}

/// Validates a create or replace body.
pub fn normalize_resource(
    def: &ResourceDef,
    body: &Value,
    leniency: Leniency,
) -> Result<Normalized> {
    let Value::Object(obj) = body else {
        return Err(ScimError::invalid_syntax(
            "the request body must be a JSON object",
        ));
    };
    check_schemas(def, obj)?;
    let mut out = Normalized::default();
    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = def.extension(key) {
            let Some(ext_obj) = (match value {
                Value::Null => None,
                Value::Object(o) => Some(o),
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "'{key}' must be an object of extension attributes"
                    )))
                }
            }) else {
                continue;
            };
            let mut ext_out = Map::new();
            for (k, v) in ext_obj {
                let attr = ext.attr(k).ok_or_else(|| unknown(k, &ext.id))?;
                place(attr, v, leniency, &mut ext_out, &mut out.secrets)?;
            }
            if !ext_out.is_empty() {
                out.attrs.insert(ext.id.clone(), Value::Object(ext_out));
            }
            continue;
        }
        if starts_with_urn(key) {
            return Err(ScimError::invalid_value(format!(
                "'{key}' is not an extension of {}; its attributes cannot be set",
                def.name
            )));
        }
        let attr = def
            .top_attr(key)
            .ok_or_else(|| unknown(key, &def.core.id))?;
        place(attr, value, leniency, &mut out.attrs, &mut out.secrets)?;
    }
    check_required(def, &out.attrs)?;
    Ok(out)
}

fn unknown(key: &str, schema: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "unknown attribute '{key}': schema {schema} does not define it"
    ))
}

fn place(
    attr: &Attribute,
    value: &Value,
    leniency: Leniency,
    into: &mut Map<String, Value>,
    secrets: &mut Map<String, Value>,
) -> Result<()> {
    if attr.is_read_only() {
        return Ok(());
    }
    if let Some(v) = normalize_value(attr, value, leniency)? {
        if attr.returned == Returned::Never {
            secrets.insert(attr.name.clone(), v);
        } else {
            into.insert(attr.name.clone(), v);
        }
    }
    Ok(())
}

fn check_schemas(def: &ResourceDef, obj: &Map<String, Value>) -> Result<()> {
    let Some(schemas) = crate::message::field(obj, "schemas") else {
        return Err(ScimError::invalid_syntax(format!(
            "'schemas' is missing; it must list {}",
            def.core.id
        )));
    };
    let Some(list) = schemas.as_array() else {
        return Err(ScimError::invalid_syntax(
            "'schemas' must be an array of schema URNs",
        ));
    };
    let mut has_core = false;
    for urn in list {
        let Some(urn) = urn.as_str() else {
            return Err(ScimError::invalid_syntax(
                "'schemas' must be an array of schema URNs",
            ));
        };
        if urn.eq_ignore_ascii_case(&def.core.id) {
            has_core = true;
        } else if def.extension(urn).is_none() {
            return Err(ScimError::invalid_value(format!(
                "schema '{urn}' is not supported on {}",
                def.endpoint
            )));
        }
    }
    if !has_core {
        return Err(ScimError::invalid_syntax(format!(
            "'schemas' must list {}",
            def.core.id
        )));
    }
    Ok(())
}

/// Required attributes the client can write must be present (readOnly ones are the server's).
pub fn check_required(def: &ResourceDef, attrs: &Map<String, Value>) -> Result<()> {
    let missing =
        |name: &str| ScimError::invalid_value(format!("required attribute '{name}' is missing"));
    for a in &def.core.attributes {
        if a.required
            && !a.is_read_only()
            && a.returned != Returned::Never
            && !attrs.get(&a.name).is_some_and(is_assigned)
        {
            return Err(missing(&a.name));
        }
    }
    for (schema, required) in &def.extensions {
        match attrs.get(&schema.id).and_then(Value::as_object) {
            None if *required => return Err(missing(&schema.id)),
            None => {}
            Some(ext) => {
                for a in &schema.attributes {
                    if a.required && !a.is_read_only() && !ext.get(&a.name).is_some_and(is_assigned)
                    {
                        return Err(missing(&format!("{}:{}", schema.id, a.name)));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Checks one attribute value; `None` means unassigned (null or empty, RFC 7643 §2.5).
pub fn normalize_value(
    attr: &Attribute,
    value: &Value,
    leniency: Leniency,
) -> Result<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    if !attr.multi_valued {
        return normalize_single(attr, value, leniency);
    }
    let Value::Array(items) = value else {
        return Err(ScimError::invalid_value(format!(
            "'{}' is multi-valued: send a JSON array",
            attr.name
        )));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Some(v) = normalize_single(attr, item, leniency)? {
            out.push(v);
        }
    }
    if out.iter().filter(|v| is_primary(v)).count() > 1 {
        return Err(ScimError::invalid_value(format!(
            "at most one value of '{}' may be primary",
            attr.name
        )));
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

pub(crate) fn is_primary(v: &Value) -> bool {
    v.get("primary").and_then(Value::as_bool) == Some(true)
}

/// Attributes that name or identify someone: no control character at all, not even a line
/// break (elsewhere tabs and line breaks are text, as in `addresses.formatted`).
const IDENTIFYING: &[&str] = &["userName", "externalId", "displayName", "nickName"];

fn normalize_single(attr: &Attribute, value: &Value, leniency: Leniency) -> Result<Option<Value>> {
    let wrong = |expected: &str| {
        ScimError::invalid_value(format!(
            "'{}' must be {expected}, not {}",
            attr.name,
            describe(value)
        ))
    };
    if value.is_null() {
        return Ok(None);
    }
    match attr.kind {
        AttrType::Complex => {
            // Entra ID sends the enterprise manager as a bare id.
            let wrapped;
            let obj = match value {
                Value::Object(o) => o,
                Value::String(_) if !attr.multi_valued && attr.sub("value").is_some() => {
                    wrapped = Map::from_iter([("value".to_owned(), value.clone())]);
                    &wrapped
                }
                _ => return Err(wrong("an object")),
            };
            let mut out = Map::new();
            for (k, v) in obj {
                let sub = attr.sub(k).ok_or_else(|| {
                    ScimError::invalid_value(format!(
                        "unknown sub-attribute '{k}' of '{}'",
                        attr.name
                    ))
                })?;
                if sub.is_read_only() {
                    continue;
                }
                if let Some(v) = normalize_single(sub, v, leniency)? {
                    out.insert(sub.name.clone(), v);
                }
            }
            for sub in &attr.sub_attributes {
                if sub.required
                    && !sub.is_read_only()
                    && !out.contains_key(&sub.name)
                    && !out.is_empty()
                {
                    return Err(ScimError::invalid_value(format!(
                        "'{}.{}' is required",
                        attr.name, sub.name
                    )));
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        AttrType::String | AttrType::Reference => match value {
            Value::String(s) => {
                // A NUL or an escape in a name reaches the products and the logs as it is.
                let multi_line = !IDENTIFYING
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&attr.name));
                match crate::json::control_character(s, multi_line) {
                    Some(c) => Err(ScimError::invalid_value(format!(
                        "'{}' contains the control character {c}, which is not accepted",
                        attr.name
                    ))),
                    None => Ok(Some(value.clone())),
                }
            }
            _ => Err(wrong("a string")),
        },
        AttrType::Binary => match value {
            Value::String(s) if is_base64(s) => Ok(Some(value.clone())),
            _ => Err(wrong("a base64 string")),
        },
        AttrType::DateTime => match value {
            Value::String(s) if DateTime::parse_from_rfc3339(s).is_ok() => Ok(Some(value.clone())),
            _ => Err(wrong("an xsd:dateTime string such as 2024-01-23T04:56:22Z")),
        },
        AttrType::Boolean => match value {
            Value::Bool(_) => Ok(Some(value.clone())),
            Value::String(s) if leniency.boolean_strings && s.eq_ignore_ascii_case("true") => {
                Ok(Some(Value::Bool(true)))
            }
            Value::String(s) if leniency.boolean_strings && s.eq_ignore_ascii_case("false") => {
                Ok(Some(Value::Bool(false)))
            }
            _ => Err(wrong("true or false")),
        },
        AttrType::Integer => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Some(value.clone())),
            _ => Err(wrong("an integer")),
        },
        AttrType::Decimal => match value {
            Value::Number(_) => Ok(Some(value.clone())),
            _ => Err(wrong("a number")),
        },
    }
}

fn describe(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 40 {
        format!(
            "{}...",
            &text[..text.char_indices().nth(37).map_or(text.len(), |(i, _)| i)]
        )
    } else {
        text
    }
}

fn is_base64(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    s.len() - body.len() <= 2
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'\r' | b'\n')
        })
}

/// Refuses a change to an immutable attribute that already had a value (RFC 7643 §2.2).
/// Immutable sub-attributes of multi-valued attributes (Group `members.value`) protect each
/// record, and records are added and removed whole, so only singular attributes are compared.
pub fn check_immutable(
    def: &ResourceDef,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Result<()> {
    let scopes = std::iter::once((None, &def.core.attributes)).chain(
        def.extensions
            .iter()
            .map(|(s, _)| (Some(s.id.as_str()), &s.attributes)),
    );
    for (ext, attrs) in scopes {
        let get = |doc: &'_ Map<String, Value>, name: &str| -> Option<Value> {
            match ext {
                Some(urn) => doc.get(urn)?.get(name).cloned(),
                None => doc.get(name).cloned(),
            }
        };
        for a in attrs.iter().filter(|a| !a.multi_valued) {
            let (before, after) = (get(old, &a.name), get(new, &a.name));
            if a.mutability == Mutability::Immutable && before.is_some() && before != after {
                return Err(ScimError::mutability(format!(
                    "'{}' is immutable and already set",
                    a.name
                )));
            }
            for sub in a
                .sub_attributes
                .iter()
                .filter(|s| s.mutability == Mutability::Immutable)
            {
                let b = before.as_ref().and_then(|v| v.get(&sub.name));
                if b.is_some() && b != after.as_ref().and_then(|v| v.get(&sub.name)) {
                    return Err(ScimError::mutability(format!(
                        "'{}.{}' is immutable and already set",
                        a.name, sub.name
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::schema::{group_resource, user_resource, ENTERPRISE_USER_URN, USER_URN};
    use serde_json::json;

    fn norm(body: Value) -> Result<Normalized> {
        normalize_resource(&user_resource(), &body, Leniency::default())
    }

    #[test]
    fn canonicalises_names_and_drops_read_only_values() {
        let n = norm(json!({
            "schemas": [USER_URN, ENTERPRISE_USER_URN],
            "USERNAME": "alice", "id": "mine", "meta": {"created": "x"}, "groups": [{"value": "g"}],
            "Name": {"GivenName": "Alice"}, "password": "s3cret",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"EmployeeNumber": "7", "manager": "boss"}
        }))
        .unwrap();
        assert_eq!(
            Value::Object(n.attrs),
            json!({"userName": "alice", "name": {"givenName": "Alice"},
                   ENTERPRISE_USER_URN: {"employeeNumber": "7", "manager": {"value": "boss"}}})
        );
        assert_eq!(n.secrets.get("password"), Some(&json!("s3cret")));
    }

    #[test]
    fn refuses_what_the_schema_does_not_allow() {
        let cases = [
            (json!({"userName": "a"}), ScimType::InvalidSyntax),
            (json!({"schemas": [USER_URN]}), ScimType::InvalidValue),
            (
                json!({"schemas": [USER_URN], "userName": ""}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [USER_URN], "userName": "a", "active": "yes"}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [USER_URN], "userName": "a", "shoeSize": 9}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [USER_URN], "userName": "a", "emails": {"value": "x"}}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [USER_URN], "userName": "a", "emails": [{"value": "x", "primary": true}, {"value": "y", "primary": true}]}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [USER_URN], "userName": "a", "name": {"nick": "x"}}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [USER_URN, "urn:x:Other"], "userName": "a"}),
                ScimType::InvalidValue,
            ),
            (json!(["not an object"]), ScimType::InvalidSyntax),
        ];
        for (body, scim_type) in cases {
            assert_eq!(
                norm(body.clone()).unwrap_err().scim_type,
                Some(scim_type),
                "{body}"
            );
        }
    }

    #[test]
    fn null_and_empty_values_are_unassigned() {
        let n = norm(json!({"schemas": [USER_URN], "userName": "a", "title": null, "emails": []}))
            .unwrap();
        assert_eq!(Value::Object(n.attrs), json!({"userName": "a"}));
    }

    #[test]
    fn a_target_extension_given_as_json_is_validated_with_no_new_code() {
        let def = crate::schema::user_with_extension(
            r#"{"id": "urn:example:scim:Badge", "name": "Badge", "attributes": [
                {"name": "badgeId", "mutability": "immutable", "required": true},
                {"name": "floor", "type": "integer"}]}"#,
            true,
        );
        let body = |badge: &str, floor: Value| json!({"schemas": [USER_URN, "urn:example:scim:Badge"], "userName": "a", "urn:example:scim:Badge": {"badgeId": badge, "floor": floor}});
        let created = normalize_resource(&def, &body("B1", json!(3)), Leniency::default()).unwrap();
        let wrong_type =
            normalize_resource(&def, &body("B1", json!("third")), Leniency::default()).unwrap_err();
        assert_eq!(wrong_type.scim_type, Some(ScimType::InvalidValue));
        let missing = normalize_resource(
            &def,
            &json!({"schemas": [USER_URN], "userName": "a"}),
            Leniency::default(),
        )
        .unwrap_err();
        assert_eq!(
            missing.detail,
            "required attribute 'urn:example:scim:Badge' is missing"
        );
        let changed = normalize_resource(&def, &body("B2", json!(3)), Leniency::default()).unwrap();
        let e = check_immutable(&def, &created.attrs, &changed.attrs).unwrap_err();
        assert_eq!((e.status, e.scim_type), (400, Some(ScimType::Mutability)));
        let same = normalize_resource(&def, &body("B1", json!(4)), Leniency::default()).unwrap();
        assert!(
            check_immutable(&def, &created.attrs, &same.attrs).is_ok(),
            "other attributes may change"
        );
    }

    #[test]
    fn group_display_name_is_required() {
        let e = normalize_resource(
            &group_resource(),
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]}),
            Leniency::default(),
        );
        assert_eq!(
            e.unwrap_err().detail,
            "required attribute 'displayName' is missing"
        );
    }
}
