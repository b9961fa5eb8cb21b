//! Checks driven by the discovered User schema: a value for every writable attribute, the JSON
//! type of every returned attribute, and the `returned` and `mutability` characteristics.

use serde_json::Map;

use super::*;

const IDS: &[&str] = &[
    "P-PUT-02",
    "P-SCHEMA-06",
    "P-SCHEMA-11",
    "P-SCHEMA-13",
    "P-SCHEMA-14",
    "P-PUT-03",
    "I-ENTRA-09",
];

fn writable(a: &Value) -> bool {
    matches!(
        a["mutability"].as_str(),
        Some("readWrite" | "writeOnly" | "immutable") | None
    )
}

/// A value an attribute definition accepts; `None` for what cannot be made up (references to
/// other resources, and strings whose canonicalValues list is given and empty: a server may
/// hold its clients to that list, and an empty one admits nothing).
fn sample(def: &Value, owner: &str, salt: &str) -> Option<Value> {
    let name = def["name"].as_str().unwrap_or("x");
    let canonical = def["canonicalValues"].as_array();
    let one = match def["type"].as_str().unwrap_or("string") {
        "string" if canonical.is_some_and(Vec::is_empty) => return None,
        "string" => match canonical.and_then(|c| c.first()) {
            Some(c) => c.clone(),
            None if owner == "emails" && name == "value" => json!(format!("{salt}@example.com")),
            None if matches!(name, "locale" | "preferredLanguage") => json!("en-US"),
            None if name == "timezone" => json!("Europe/Berlin"),
            None => json!(format!("{salt}{name}")),
        },
        "boolean" => json!(name != "primary" || owner.is_empty()),
        "integer" => json!(7),
        "decimal" => json!(1.5),
        "dateTime" => json!("2024-05-06T07:08:09Z"),
        "binary" => json!("c2NpbWxhYg=="),
        "reference" => {
            let kinds = def["referenceTypes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if kinds.iter().any(|k| k == "external" || k == "uri") {
                json!(format!("https://example.com/{salt}{name}"))
            } else {
                return None;
            }
        }
        "complex" => {
            let mut o = Map::new();
            for sub in def["subAttributes"].as_array().into_iter().flatten() {
                if writable(sub) {
                    if let Some(v) = sample(sub, name, salt) {
                        o.insert(sub["name"].as_str().unwrap_or("x").to_owned(), v);
                    }
                }
            }
            if o.is_empty() {
                return None;
            }
            Value::Object(o)
        }
        _ => return None,
    };
    Some(if def["multiValued"] == json!(true) {
        let mut one = one;
        if let Some(o) = one.as_object_mut().filter(|o| o.contains_key("primary")) {
            o.insert("primary".into(), json!(true));
        }
        json!([one])
    } else {
        one
    })
}

/// A User holding a value for every writable attribute of the core schema.
pub fn generated_user(schema: &Value, prefix: &str, name: &str) -> Value {
    let salt = format!("{prefix}{name}-");
    let mut o = Map::new();
    o.insert("schemas".into(), json!([USER]));
    for a in schema["attributes"].as_array().into_iter().flatten() {
        if writable(a) {
            if let Some(v) = sample(a, "", &salt) {
                o.insert(a["name"].as_str().unwrap_or("x").to_owned(), v);
            }
        }
    }
    o.insert("userName".into(), json!(format!("{prefix}{name}")));
    Value::Object(o)
}

/// Whether `got` holds what `sent` set for an attribute (case-insensitively where the
/// definition says so; any order for multi-valued values).
fn holds(def: &Value, sent: &Value, got: &Value) -> bool {
    match (sent, got) {
        (Value::Array(want), Value::Array(have)) => want.iter().all(|w| {
            have.iter().any(|h| {
                holds(
                    &json!({"subAttributes": def["subAttributes"], "caseExact": def["caseExact"]}),
                    w,
                    h,
                )
            })
        }),
        (Value::Object(want), Value::Object(have)) => want.iter().all(|(k, w)| {
            let sub = def["subAttributes"]
                .as_array()
                .and_then(|subs| subs.iter().find(|s| s["name"] == json!(k)))
                .cloned()
                .unwrap_or(Value::Null);
            have.get(k).is_some_and(|h| holds(&sub, w, h))
        }),
        (Value::String(w), Value::String(h)) if def["caseExact"] != json!(true) => {
            w.eq_ignore_ascii_case(h)
        }
        _ => sent == got,
    }
}

/// Where a value breaks its definition's JSON type.
fn type_errors(def: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    if def["multiValued"] == json!(true) {
        match v.as_array() {
            Some(items) => {
                let one = json!({"type": def["type"], "subAttributes": def["subAttributes"]});
                for (i, item) in items.iter().enumerate() {
                    type_errors(&one, item, &format!("{at}[{i}]"), out);
                }
            }
            None => out.push(format!("{at} is multi-valued but is {v}")),
        }
        return;
    }
    let ok = match def["type"].as_str().unwrap_or("string") {
        "string" | "reference" | "binary" => v.is_string(),
        "dateTime" => v.as_str().is_some_and(users::is_xsd_datetime),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "decimal" => v.is_number(),
        "complex" => {
            if let Some(o) = v.as_object() {
                for (k, x) in o {
                    if let Some(sub) = find(&def["subAttributes"], k) {
                        type_errors(sub, x, &format!("{at}.{k}"), out);
                    }
                }
                true
            } else {
                false
            }
        }
        _ => true,
    };
    if !ok && !v.is_null() {
        out.push(format!("{at} should be of type {} but is {v}", def["type"]));
    }
}

fn find<'a>(attributes: &'a Value, name: &str) -> Option<&'a Value> {
    attributes.as_array()?.iter().find(|a| {
        a["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

/// Top-level attribute names of the schema with this characteristic value.
fn with(schema: &Value, characteristic: &str, value: &str) -> Vec<String> {
    schema["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a[characteristic] == json!(value))
        .filter_map(|a| a["name"].as_str().map(str::to_owned))
        .collect()
}

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    let Some(schema) = cx.schema(USER).cloned() else {
        s.block(IDS, "the User schema could not be read from /Schemas");
        return s.finish();
    };
    let path = match own_user(cx, &mut Vec::new(), "gen").await {
        Ok((path, _)) => path,
        Err(why) => {
            s.block(IDS, &why);
            return s.finish();
        }
    };
    let full = generated_user(&schema, &cx.prefix, "gen");
    check!(s, "P-PUT-02", log => {
        let e = call(cx, &mut log, Method::PUT, &path, Some(&full), &[]).await?;
        status(&e, &[200])?;
        let stored = get_json(cx, &mut log, &path).await?;
        let mut missing = Vec::new();
        for (k, sent) in full.as_object().into_iter().flatten() {
            let Some(def) = find(&schema["attributes"], k) else { continue };
            if def["mutability"] == json!("writeOnly") || def["returned"] == json!("never") || def["returned"] == json!("request") {
                continue;
            }
            if !holds(def, sent, &stored[k]) {
                missing.push(format!("{k}: sent {sent}, got {}", stored[k]));
            }
        }
        ensure(missing.is_empty(), || format!("values from the discovered schema did not stick: {}", missing.join("; ")))
    });
    check!(s, "P-SCHEMA-06", log => {
        let got = get_json(cx, &mut log, &path).await?;
        let mut errors = Vec::new();
        for (k, v) in got.as_object().into_iter().flatten() {
            if let Some(def) = find(&schema["attributes"], k) {
                type_errors(def, v, k, &mut errors);
            } else if let Some(ext) = cx.schema(k) {
                for (ek, ev) in v.as_object().into_iter().flatten() {
                    if let Some(def) = find(&ext["attributes"], ek) {
                        type_errors(def, ev, &format!("{k}:{ek}"), &mut errors);
                    }
                }
            }
        }
        ensure(errors.is_empty(), || errors.join("; "))
    });
    check!(s, "P-SCHEMA-13", log => {
        let always: Vec<String> = ["id".to_owned()].into_iter().chain(with(&schema, "returned", "always")).collect();
        let got = get_json(cx, &mut log, &format!("{path}?attributes=nickName")).await?;
        let full_view = get_json(cx, &mut log, &path).await?;
        let lost: Vec<&String> = always.iter().filter(|a| full_view.get(a.as_str()).is_some() && got.get(a.as_str()).is_none()).collect();
        ensure(lost.is_empty(), || format!("attributes=nickName dropped returned: always attributes {lost:?}"))
    });
    let on_request = with(&schema, "returned", "request");
    match on_request.first() {
        None => s.skip(
            &["P-SCHEMA-14"],
            "the User schema has no returned: request attribute",
        ),
        Some(name) => check!(s, "P-SCHEMA-14", log => {
            let plain = get_json(cx, &mut log, &path).await?;
            ensure(plain.get(name).is_none(), || format!("{name} (returned: request) came back unasked"))?;
            if full.get(name).is_some() {
                let asked = get_json(cx, &mut log, &format!("{path}?attributes={name}")).await?;
                ensure(asked.get(name).is_some(), || format!("{name} did not come back when asked for"))?;
            }
            Ok(())
        }),
    }
    let immutable = with(&schema, "mutability", "immutable");
    match immutable.iter().find(|n| full.get(n.as_str()).is_some()) {
        None => s.skip(
            &["P-SCHEMA-11", "P-PUT-03"],
            "the User schema has no immutable attribute this suite can set",
        ),
        Some(name) => {
            let mut changed = full.clone();
            let def = find(&schema["attributes"], name)
                .cloned()
                .unwrap_or(Value::Null);
            if let Some(v) = sample(&def, "", &format!("{}gen-changed-", cx.prefix)) {
                changed[name.as_str()] = v;
            }
            let mut refused = None;
            check!(s, "P-PUT-03", log => {
                let e = call(cx, &mut log, Method::PUT, &path, Some(&changed), &[]).await?;
                refused = Some(e.status == 400);
                scim_error(&e, 400, Some("mutability"))
            });
            check!(s, "P-SCHEMA-11", log => {
                let now = get_json(cx, &mut log, &path).await?;
                ensure(holds(&def, &full[name.as_str()], &now[name.as_str()]), || format!("{name} was set at creation and changed later: {}", now[name.as_str()]))?;
                ensure(refused != Some(false), || format!("a change of {name} was accepted"))
            });
        }
    }
    check!(s, "I-ENTRA-09", log => {
        let got = get_json(cx, &mut log, &path).await?;
        for (k, sent) in full.as_object().into_iter().flatten() {
            if let (Some(want), Some(have)) = (sent.as_array(), got[k].as_array()) {
                ensure(want.iter().all(|w| have.contains(w)) && want.len() == have.len(), || format!("{k}: sent {sent}, got {}", got[k]))?;
            }
        }
        Ok(())
    });
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_canonical_list_admits_no_value_and_a_listed_one_is_used() {
        let roles = json!({"name": "roles", "type": "complex", "multiValued": true, "subAttributes": [
            {"name": "value", "type": "string"},
            {"name": "type", "type": "string", "canonicalValues": []},
            {"name": "display", "type": "string", "canonicalValues": ["shown"]}]});
        let v = sample(&roles, "", "s-").unwrap_or_default();
        assert_eq!(v, json!([{"value": "s-value", "display": "shown"}]));
    }
}
