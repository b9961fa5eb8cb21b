//! PATCH (RFC 7644 §3.5.2): operations are applied in order to a copy of the resource, which is
//! then validated as a whole, so a request changes everything it asks for or nothing.

use serde_json::{Map, Value};

use crate::error::{Result, ScimError};
use crate::filter::{Compiled, Filter};
use crate::message::Message;
use crate::path::{AttrPath, PatchPath};
use crate::resource::{
    check_immutable, is_primary, normalize_resource, normalize_value, Leniency, Normalized,
};
use crate::schema::{Attribute, Resolved, ResourceDef, PATCH_OP_URN};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    pub kind: OpKind,
    /// The path as sent; `None` for a pathless operation.
    pub path: Option<String>,
    pub value: Option<Value>,
}

/// Reads a PatchOp message. Op names are case-insensitive (Entra sends `Replace`).
pub fn parse_patch_request(body: &Value) -> Result<Vec<PatchOp>> {
    let message = Message::open(body, PATCH_OP_URN, "the PATCH body")?;
    let field = |name: &str| message.field(name);
    let Some(Value::Array(ops)) = field("Operations") else {
        return Err(ScimError::invalid_syntax(
            "'Operations' must be an array of operations",
        ));
    };
    if ops.is_empty() {
        return Err(ScimError::invalid_syntax("'Operations' is empty"));
    }
    ops.iter()
        .enumerate()
        .map(|(i, op)| parse_op(i, op))
        .collect()
}

fn parse_op(index: usize, op: &Value) -> Result<PatchOp> {
    let bad = |why: &str| ScimError::invalid_syntax(format!("operation {index}: {why}"));
    let Value::Object(o) = op else {
        return Err(bad("must be an object"));
    };
    let mut kind = None;
    let mut path = None;
    let mut value = None;
    for (k, v) in o {
        match k.to_ascii_lowercase().as_str() {
            "op" => {
                kind = Some(match v.as_str().map(str::to_ascii_lowercase).as_deref() {
                    Some("add") => OpKind::Add,
                    Some("remove") => OpKind::Remove,
                    Some("replace") => OpKind::Replace,
                    _ => return Err(bad("'op' must be \"add\", \"remove\" or \"replace\"")),
                })
            }
            "path" => match v {
                Value::String(s) => path = Some(s.clone()),
                Value::Null => {}
                _ => return Err(bad("'path' must be a string")),
            },
            "value" => value = Some(v.clone()),
            _ => return Err(bad(&format!("unknown member '{k}'"))),
        }
    }
    let Some(kind) = kind else {
        return Err(bad("'op' is missing"));
    };
    match kind {
        OpKind::Remove if path.is_none() => Err(ScimError::no_target(format!(
            "operation {index}: remove needs a 'path'"
        ))),
        OpKind::Add | OpKind::Replace if value.is_none() => Err(bad("'value' is missing")),
        _ => Ok(PatchOp { kind, path, value }),
    }
}

/// Applies the operations to `doc` (a stored document) and returns the validated result.
pub fn apply_patch(
    def: &ResourceDef,
    doc: &Map<String, Value>,
    ops: &[PatchOp],
) -> Result<Normalized> {
    let mut work = doc.clone();
    let mut secrets = Map::new();
    for (i, op) in ops.iter().enumerate() {
        let mut ctx = Ctx {
            def,
            doc: &mut work,
            secrets: &mut secrets,
            kind: op.kind,
        };
        ctx.apply(op).map_err(|e| ScimError {
            detail: format!("operation {i}: {}", e.detail),
            ..e
        })?;
    }
    // Validate the whole result the same way a PUT body is validated.
    let mut body = work;
    body.insert(
        "schemas".into(),
        Value::Array(def.schema_urns().map(|u| Value::String(u.into())).collect()),
    );
    let mut out = normalize_resource(def, &Value::Object(body), Leniency::default())?;
    check_immutable(def, doc, &out.attrs)?;
    out.secrets.extend(secrets);
    Ok(out)
}

/// Whether any operation may change the attribute `name` (a path that cannot be read counts:
/// [`apply_patch`] words its error).
pub fn touches(def: &ResourceDef, ops: &[PatchOp], name: &str) -> bool {
    let names = |attr: Option<AttrPath>| {
        attr.and_then(|p| def.resolve(&p))
            .is_none_or(|r| r.attr.name.eq_ignore_ascii_case(name))
    };
    ops.iter().any(|op| match (&op.path, &op.value) {
        (Some(path), _) => names(PatchPath::parse(path).ok().map(|p| p.attr)),
        (None, Some(Value::Object(value))) => value.keys().any(|k| {
            !k.eq_ignore_ascii_case("schemas")
                && def.extension(k).is_none()
                && names(AttrPath::parse(k).ok())
        }),
        (None, _) => true,
    })
}

/// What a PATCH made only of Group member changes does, per member id in the end: the entry
/// added (normalised), or `None` for a removal. Later operations on a member win, as they would
/// when applied in order.
pub type MemberOps = std::collections::BTreeMap<String, Option<Value>>;

/// The member changes a PATCH consists of, if it consists of nothing else: `add` to `members`,
/// `remove` of `members[value eq "id"]`, and Entra's `remove` of `members` with the values to
/// remove. Anything else, or anything malformed, is `None`: [`apply_patch`] handles it and
/// words the error.
pub fn member_ops(def: &ResourceDef, ops: &[PatchOp]) -> Option<MemberOps> {
    let mut out = MemberOps::new();
    for op in ops {
        let path = PatchPath::parse(op.path.as_deref()?).ok()?;
        let r = def.resolve(&path.attr)?;
        if r.attr.name != "members" || r.sub.is_some() || path.sub_after_filter.is_some() {
            return None;
        }
        match (op.kind, &path.filter, op.value.as_ref()) {
            (OpKind::Add, None, Some(v)) => {
                for item in as_items(r.attr, v).ok()? {
                    let id = item.get("value")?.as_str()?.to_owned();
                    out.insert(id, Some(item));
                }
            }
            (OpKind::Remove, Some(filter), _) => {
                let record = equalities(filter)?;
                match (record.len(), record.get("value")) {
                    (1, Some(Value::String(id))) => out.insert(id.clone(), None),
                    _ => return None,
                };
            }
            (OpKind::Remove, None, Some(v)) if !v.is_null() => {
                for item in as_items(r.attr, v).ok()? {
                    out.insert(item.get("value")?.as_str()?.to_owned(), None);
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

const LENIENT: Leniency = Leniency {
    boolean_strings: true,
};

struct Ctx<'a, 'd> {
    def: &'a ResourceDef,
    doc: &'d mut Map<String, Value>,
    secrets: &'d mut Map<String, Value>,
    kind: OpKind,
}

impl Ctx<'_, '_> {
    fn apply(&mut self, op: &PatchOp) -> Result<()> {
        let value = op.value.as_ref();
        match &op.path {
            None => self.apply_pathless(value.unwrap_or(&Value::Null)),
            Some(path) => {
                if let Some(ext) = self.def.extension(path) {
                    let ext_id = ext.id.clone();
                    return self.apply_to_extension(&ext_id, value);
                }
                let parsed = PatchPath::parse(path)?;
                self.apply_path(&parsed, value)
            }
        }
    }

    /// `{"op":"replace","value":{...}}`: each key is a path; Entra uses dotted and URN keys.
    fn apply_pathless(&mut self, value: &Value) -> Result<()> {
        let Value::Object(obj) = value else {
            return Err(ScimError::invalid_value(
                "an operation without 'path' needs an object 'value'",
            ));
        };
        for (key, v) in obj {
            if key.eq_ignore_ascii_case("schemas") {
                continue;
            }
            if let Some(ext) = self.def.extension(key) {
                let ext_id = ext.id.clone();
                self.apply_to_extension(&ext_id, Some(v))?;
                continue;
            }
            let path = AttrPath::parse(key).map_err(ScimError::invalid_path)?;
            let resolved = self.resolve(&path)?;
            if resolved.leaf().is_read_only() {
                // Okta repeats `id` in pathless replaces; an unchanged readOnly value is harmless.
                if current_leaf(self.doc, &resolved) == Some(v) {
                    continue;
                }
                return Err(ScimError::mutability(format!("'{key}' is readOnly")));
            }
            let pp = PatchPath {
                attr: path,
                filter: None,
                sub_after_filter: None,
            };
            self.apply_path(&pp, Some(v))?;
        }
        Ok(())
    }

    fn apply_to_extension(&mut self, urn: &str, value: Option<&Value>) -> Result<()> {
        match (self.kind, value) {
            (OpKind::Remove, _) => {
                self.doc.remove(urn);
                Ok(())
            }
            (_, Some(Value::Object(obj))) => {
                for (k, v) in obj
                    .iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case("schemas"))
                {
                    let path = AttrPath::new(Some(urn), k, None);
                    self.apply_path(
                        &PatchPath {
                            attr: path,
                            filter: None,
                            sub_after_filter: None,
                        },
                        Some(v),
                    )?;
                }
                Ok(())
            }
            _ => Err(ScimError::invalid_value(format!(
                "'{urn}' takes an object of extension attributes"
            ))),
        }
    }

    fn resolve(&self, path: &AttrPath) -> Result<Resolved<'_>> {
        self.def.resolve(path).ok_or_else(|| {
            ScimError::invalid_path(format!("'{path}' is not an attribute of {}", self.def.name))
        })
    }

    fn apply_path(&mut self, pp: &PatchPath, value: Option<&Value>) -> Result<()> {
        let def = self.def;
        let r = def.resolve(&pp.attr).ok_or_else(|| {
            ScimError::invalid_path(format!("'{}' is not an attribute of {}", pp.attr, def.name))
        })?;
        let sub = match &pp.sub_after_filter {
            Some(name) => Some(r.attr.sub(name).ok_or_else(|| {
                ScimError::invalid_path(format!(
                    "'{name}' is not a sub-attribute of '{}'",
                    r.attr.name
                ))
            })?),
            None => r.sub,
        };
        let leaf = sub.unwrap_or(r.attr);
        if r.attr.is_read_only() || leaf.is_read_only() {
            return Err(ScimError::mutability(format!("'{}' is readOnly", pp.attr)));
        }
        if self.kind == OpKind::Remove && leaf.required && sub.is_none() {
            return Err(ScimError::mutability(format!(
                "'{}' is required and cannot be removed",
                pp.attr
            )));
        }
        if r.attr.returned == crate::schema::Returned::Never {
            return self.set_secret(r.attr, value);
        }
        match &pp.filter {
            Some(filter) => self.apply_filtered(r, filter, sub, value),
            None => self.apply_plain(r, sub, value),
        }
    }

    fn set_secret(&mut self, attr: &Attribute, value: Option<&Value>) -> Result<()> {
        match (self.kind, value) {
            (OpKind::Remove, _) => {}
            (_, Some(v)) => {
                if let Some(v) = normalize_value(attr, v, LENIENT)? {
                    self.secrets.insert(attr.name.clone(), v);
                }
            }
            (_, None) => {}
        }
        Ok(())
    }

    /// A path with no value filter: `title`, `name.givenName`, `emails`, `members`.
    fn apply_plain(
        &mut self,
        r: Resolved<'_>,
        sub: Option<&Attribute>,
        value: Option<&Value>,
    ) -> Result<()> {
        let attr = r.attr;
        let key = attr.name.clone();
        let container = container(self.doc, r.ext);
        if let Some(sub) = sub {
            if attr.multi_valued {
                return Err(ScimError::invalid_path(format!(
                    "'{}.{}' is ambiguous on a multi-valued attribute: select values with '{}[...]'",
                    attr.name, sub.name, attr.name
                )));
            }
            let slot = container
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Some(obj) = slot.as_object_mut() else {
                return Err(ScimError::internal(format!(
                    "stored '{key}' is not an object"
                )));
            };
            match self.kind {
                OpKind::Remove => {
                    obj.remove(&sub.name);
                }
                _ => set_or_clear(
                    obj,
                    &sub.name,
                    normalize_value(sub, value.unwrap_or(&Value::Null), LENIENT)?,
                ),
            }
            return Ok(());
        }
        match self.kind {
            OpKind::Remove => match (attr.multi_valued, value) {
                // Entra's legacy member removal: `path: members` with the values to remove.
                (true, Some(v)) if !v.is_null() => {
                    let gone = as_items(attr, v)?;
                    if let Some(Value::Array(items)) = container.get_mut(&key) {
                        items.retain(|item| !gone.iter().any(|g| same_member(attr, item, g)));
                    }
                }
                _ => {
                    container.remove(&key);
                }
            },
            OpKind::Add | OpKind::Replace => {
                let v = value.unwrap_or(&Value::Null);
                if attr.multi_valued {
                    let new_items = as_items(attr, v)?;
                    let before = primaries(container.get(&key));
                    let mut items = match (self.kind, container.remove(&key)) {
                        (OpKind::Add, Some(Value::Array(old))) => old,
                        _ => Vec::new(),
                    };
                    for item in new_items {
                        if !items.contains(&item) {
                            items.retain(|old| !same_member(attr, old, &item));
                            items.push(item);
                        }
                    }
                    settle_primary(attr, &before, &mut items)?;
                    if !items.is_empty() {
                        container.insert(key.clone(), Value::Array(items));
                    }
                } else if attr.is_complex() {
                    // Sub-attributes absent from the value stay as they were (§3.5.2.1, §3.5.2.3).
                    let Some(Value::Object(given)) = normalize_value(attr, v, LENIENT)? else {
                        if v.is_null() && self.kind == OpKind::Replace {
                            container.remove(&key);
                        }
                        return Ok(());
                    };
                    let slot = container
                        .entry(key.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Some(obj) = slot.as_object_mut() {
                        obj.extend(given);
                    }
                } else {
                    set_or_clear(container, &key, normalize_value(attr, v, LENIENT)?);
                }
            }
        }
        Ok(())
    }

    /// A path with a value filter: `emails[type eq "work"]`, `members[value eq "id"]`,
    /// `emails[type eq "work"].value`.
    fn apply_filtered(
        &mut self,
        r: Resolved<'_>,
        filter: &Filter,
        sub: Option<&Attribute>,
        value: Option<&Value>,
    ) -> Result<()> {
        let attr = r.attr;
        if !attr.multi_valued || !attr.is_complex() || r.sub.is_some() {
            return Err(ScimError::invalid_path(format!(
                "'{}[...]' needs a multi-valued complex attribute",
                attr.name
            )));
        }
        let selector: Compiled<'_> = filter
            .compile_for_element(attr)
            .map_err(|e| ScimError::invalid_path(format!("value filter: {}", e.detail)))?;
        let key = attr.name.clone();
        let kind = self.kind;
        let container = container(self.doc, r.ext);
        let before = primaries(container.get(&key));
        let mut items = match container.remove(&key) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let hits: Vec<usize> = (0..items.len())
            .filter(|&i| items[i].as_object().is_some_and(|o| selector.matches(o)))
            .collect();
        let result = (|| -> Result<()> {
            match kind {
                OpKind::Remove => {
                    for &i in hits.iter().rev() {
                        match sub {
                            Some(s) => {
                                if let Some(o) = items[i].as_object_mut() {
                                    o.remove(&s.name);
                                }
                            }
                            None => {
                                items.remove(i);
                            }
                        }
                    }
                    items.retain(|v| v.as_object().is_some_and(|o| !o.is_empty()));
                }
                OpKind::Add | OpKind::Replace => {
                    let v = value.unwrap_or(&Value::Null);
                    if hits.is_empty() {
                        if kind == OpKind::Replace {
                            return Err(ScimError::no_target(format!(
                                "no value of '{key}' matches the filter"
                            )));
                        }
                        // `add` to `emails[type eq "work"].value` on a user without a work email
                        // creates that record (Entra ID sends this).
                        let mut record = equalities(filter).ok_or_else(|| {
                            ScimError::no_target(format!("no value of '{key}' matches the filter, and the filter does not describe a new one"))
                        })?;
                        merge_into(attr, sub, v, &mut record)?;
                        let record = normalize_value(
                            attr,
                            &Value::Array(vec![Value::Object(record)]),
                            LENIENT,
                        )?;
                        if let Some(Value::Array(mut rec)) = record {
                            items.append(&mut rec);
                        }
                    }
                    for &i in &hits {
                        let Some(obj) = items[i].as_object_mut() else {
                            continue;
                        };
                        if kind == OpKind::Replace && sub.is_none() {
                            obj.clear();
                        }
                        merge_into(attr, sub, v, obj)?;
                    }
                    items.retain(|v| v.as_object().is_some_and(|o| !o.is_empty()));
                }
            }
            settle_primary(attr, &before, &mut items)
        })();
        if !items.is_empty() {
            container.insert(key.clone(), Value::Array(items));
        }
        result
    }
}

/// Merges `value` into one record: a sub-attribute value, or an object of sub-attributes.
fn merge_into(
    attr: &Attribute,
    sub: Option<&Attribute>,
    value: &Value,
    record: &mut Map<String, Value>,
) -> Result<()> {
    match sub {
        Some(s) => {
            if s.is_read_only() {
                return Err(ScimError::mutability(format!(
                    "'{}.{}' is readOnly",
                    attr.name, s.name
                )));
            }
            set_or_clear(record, &s.name, normalize_value(s, value, LENIENT)?);
        }
        None => {
            let single = Attribute {
                multi_valued: false,
                ..attr.clone()
            };
            if let Some(Value::Object(given)) = normalize_value(&single, value, LENIENT)? {
                record.extend(given);
            }
        }
    }
    Ok(())
}

/// The attribute values a filter of `eq` comparisons joined by `and` pins down.
fn equalities(filter: &Filter) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    fn walk(f: &Filter, out: &mut Map<String, Value>) -> bool {
        match f {
            Filter::And(a, b) => walk(a, out) && walk(b, out),
            Filter::Compare(p, crate::filter::CompareOp::Eq, lit)
                if p.urn.is_none() && p.sub.is_none() =>
            {
                let v = match lit {
                    crate::filter::Literal::String(s) => Value::String(s.clone()),
                    crate::filter::Literal::Number(n) => Value::Number(n.clone()),
                    crate::filter::Literal::Bool(b) => Value::Bool(*b),
                    crate::filter::Literal::Null => return false,
                };
                out.insert(p.attr.clone(), v);
                true
            }
            _ => false,
        }
    }
    walk(filter, &mut out).then_some(out)
}

fn as_items(attr: &Attribute, v: &Value) -> Result<Vec<Value>> {
    // A single value for a multi-valued attribute is taken as a one-element array.
    let arr = match v {
        Value::Array(_) => v.clone(),
        Value::Null => Value::Array(Vec::new()),
        other => Value::Array(vec![other.clone()]),
    };
    match normalize_value(attr, &arr, LENIENT) {
        Ok(Some(Value::Array(items))) => Ok(items),
        Ok(_) => Ok(Vec::new()),
        Err(e) if e.detail.starts_with("at most one value") => Err(ScimError::invalid_value(
            format!("more than one value of '{}' is marked primary", attr.name),
        )),
        Err(e) => Err(e),
    }
}

/// Two records are the same member when their `value`s are equal (complex), or they are equal.
fn same_member(attr: &Attribute, a: &Value, b: &Value) -> bool {
    if attr.is_complex() {
        match (a.get("value"), b.get("value")) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        }
    } else {
        a == b
    }
}

/// The values marked primary before an operation, for [`settle_primary`].
fn primaries(current: Option<&Value>) -> Vec<Value> {
    current
        .and_then(Value::as_array)
        .map(|a| a.iter().filter(|v| is_primary(v)).cloned().collect())
        .unwrap_or_default()
}

/// After an operation, a value newly marked primary takes the flag from the old one (§3.5.2).
fn settle_primary(attr: &Attribute, old: &[Value], items: &mut [Value]) -> Result<()> {
    if items.iter().filter(|v| is_primary(v)).count() <= 1 {
        return Ok(());
    }
    for item in items.iter_mut() {
        if is_primary(item) && old.contains(item) {
            if let Some(o) = item.as_object_mut() {
                o.insert("primary".into(), Value::Bool(false));
            }
        }
    }
    if items.iter().filter(|v| is_primary(v)).count() > 1 {
        return Err(ScimError::invalid_value(format!(
            "at most one value of '{}' may be primary",
            attr.name
        )));
    }
    Ok(())
}

fn set_or_clear(obj: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(v) => {
            obj.insert(key.to_owned(), v);
        }
        None => {
            obj.remove(key);
        }
    }
}

fn container<'d>(doc: &'d mut Map<String, Value>, ext: Option<&str>) -> &'d mut Map<String, Value> {
    match ext {
        None => doc,
        Some(urn) => {
            let slot = doc
                .entry(urn.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            match slot {
                Value::Object(o) => o,
                _ => unreachable!("just made an object"),
            }
        }
    }
}

fn current_leaf<'d>(doc: &'d Map<String, Value>, r: &Resolved<'_>) -> Option<&'d Value> {
    let top = r.top_value(doc)?;
    match r.sub {
        Some(s) => top.get(&s.name),
        None => Some(top),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::schema::{group_resource, user_resource, ENTERPRISE_USER_URN};
    use proptest::prelude::*;
    use serde_json::json;

    fn alice() -> Map<String, Value> {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "u1",
            "userName": "alice",
            "name": {"givenName": "Alice", "familyName": "Liddell"},
            "active": true,
            "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
            "meta": {"resourceType": "User"}
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn run(ops: Value) -> Result<Value> {
        let ops = parse_patch_request(&json!({"schemas": [PATCH_OP_URN], "Operations": ops}))?;
        apply_patch(&user_resource(), &alice(), &ops).map(|n| Value::Object(n.attrs))
    }

    fn err(ops: Value) -> (u16, Option<ScimType>) {
        let e = run(ops).unwrap_err();
        (e.status, e.scim_type)
    }

    #[test]
    fn the_patch_message_is_checked() {
        let bad = [
            json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]}),
            json!({"schemas": [PATCH_OP_URN], "Operations": []}),
            json!({"schemas": [PATCH_OP_URN], "Operations": [{"op": "frob", "path": "title"}]}),
            json!({"schemas": [PATCH_OP_URN], "Operations": [{"op": "add", "path": "title"}]}),
        ];
        for b in bad {
            assert_eq!(
                parse_patch_request(&b).unwrap_err().scim_type,
                Some(ScimType::InvalidSyntax),
                "{b}"
            );
        }
        let e = parse_patch_request(
            &json!({"schemas": [PATCH_OP_URN], "Operations": [{"op": "remove"}]}),
        )
        .unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::NoTarget));
    }

    #[test]
    fn operations_apply_in_order_and_op_names_ignore_case() {
        let out = run(json!([{"op": "Add", "path": "title", "value": "A"}, {"op": "REPLACE", "path": "title", "value": "B"}])).unwrap();
        assert_eq!(out["title"], "B");
    }

    #[test]
    fn pathless_add_and_replace_merge_objects() {
        let out = run(
            json!([{"op": "replace", "value": {"active": false, "name": {"givenName": "Al"}}}]),
        )
        .unwrap();
        assert_eq!(out["active"], false);
        assert_eq!(
            out["name"],
            json!({"givenName": "Al", "familyName": "Liddell"})
        );
        assert_eq!(out["userName"], "alice");
    }

    #[test]
    fn entra_dotted_and_urn_keys_and_string_booleans() {
        let out = run(json!([
            {"op": "Replace", "value": {"name.givenName": "Ally", (format!("{ENTERPRISE_USER_URN}:employeeNumber")): "42"}},
            {"op": "Replace", "path": "active", "value": "False"}
        ]))
        .unwrap();
        assert_eq!(out["name"]["givenName"], "Ally");
        assert_eq!(out[ENTERPRISE_USER_URN]["employeeNumber"], "42");
        assert_eq!(out["active"], false);
    }

    #[test]
    fn okta_repeats_the_id_in_pathless_replaces() {
        let out = run(json!([{"op": "replace", "value": {"id": "u1", "displayName": "Alice L"}}]))
            .unwrap();
        assert_eq!(out["displayName"], "Alice L");
        assert_eq!(
            err(json!([{"op": "replace", "value": {"id": "other"}}])),
            (400, Some(ScimType::Mutability))
        );
    }

    #[test]
    fn value_paths_select_records() {
        let out = run(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@work.example"}])).unwrap();
        assert_eq!(out["emails"][0]["value"], "new@work.example");
        assert_eq!(out["emails"][1]["value"], "a@home.example");
        let out = run(json!([{"op": "remove", "path": "emails[type eq \"home\"]"}])).unwrap();
        assert_eq!(out["emails"].as_array().unwrap().len(), 1);
        let out = run(json!([{"op": "remove", "path": "emails[type ne \"nothing\"]"}])).unwrap();
        assert!(
            out.get("emails").is_none(),
            "no values left means unassigned"
        );
        assert_eq!(
            err(
                json!([{"op": "replace", "path": "emails[type eq \"other\"].value", "value": "x"}])
            ),
            (400, Some(ScimType::NoTarget))
        );
        let out = run(json!([{"op": "add", "path": "emails[type eq \"other\"].value", "value": "o@x.example"}])).unwrap();
        assert_eq!(
            out["emails"][2],
            json!({"type": "other", "value": "o@x.example"})
        );
    }

    #[test]
    fn multi_valued_add_appends_and_replace_overwrites() {
        let out = run(json!([{"op": "add", "path": "emails", "value": [{"value": "b@x.example", "type": "other"}]}])).unwrap();
        assert_eq!(out["emails"].as_array().unwrap().len(), 3);
        let out =
            run(json!([{"op": "replace", "path": "emails", "value": [{"value": "b@x.example"}]}]))
                .unwrap();
        assert_eq!(out["emails"], json!([{"value": "b@x.example"}]));
        let same = run(json!([{"op": "add", "path": "emails", "value": [{"value": "a@home.example", "type": "home"}]}])).unwrap();
        assert_eq!(same["emails"], alice()["emails"]);
    }

    #[test]
    fn a_new_primary_value_clears_the_old_one() {
        let out = run(json!([{"op": "add", "path": "emails", "value": [{"value": "p@x.example", "primary": true}]}])).unwrap();
        let primaries: Vec<&Value> = out["emails"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["primary"] == true)
            .collect();
        assert_eq!(
            primaries,
            vec![&json!({"value": "p@x.example", "primary": true})]
        );
    }

    #[test]
    fn mutability_and_path_errors() {
        assert_eq!(
            err(json!([{"op": "remove", "path": "userName"}])),
            (400, Some(ScimType::Mutability))
        );
        assert_eq!(
            err(json!([{"op": "replace", "path": "id", "value": "x"}])),
            (400, Some(ScimType::Mutability))
        );
        assert_eq!(
            err(json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}])),
            (400, Some(ScimType::Mutability))
        );
        assert_eq!(
            err(json!([{"op": "add", "path": "shoeSize", "value": 9}])),
            (400, Some(ScimType::InvalidPath))
        );
        assert_eq!(
            err(json!([{"op": "add", "path": "emails[type eq", "value": 9}])),
            (400, Some(ScimType::InvalidPath))
        );
        assert_eq!(
            err(json!([{"op": "add", "path": "active", "value": "maybe"}])),
            (400, Some(ScimType::InvalidValue))
        );
    }

    #[test]
    fn a_failing_operation_leaves_nothing_applied() {
        // apply_patch works on a copy; the caller's document is untouched whatever happens.
        let before = alice();
        let ops = parse_patch_request(&json!({"schemas": [PATCH_OP_URN], "Operations": [
            {"op": "replace", "path": "title", "value": "x"}, {"op": "remove", "path": "userName"}]}))
        .unwrap();
        assert!(apply_patch(&user_resource(), &before, &ops).is_err());
        assert_eq!(before, alice());
    }

    #[test]
    fn extension_paths_add_replace_and_remove() {
        let mgr = format!("{ENTERPRISE_USER_URN}:manager");
        let out = run(json!([{"op": "add", "path": mgr, "value": {"value": "boss"}}])).unwrap();
        assert_eq!(out[ENTERPRISE_USER_URN]["manager"]["value"], "boss");
        let out = run(json!([{"op": "add", "path": mgr, "value": {"value": "boss"}}, {"op": "remove", "path": mgr}])).unwrap();
        assert!(out.get(ENTERPRISE_USER_URN).is_none());
    }

    #[test]
    fn an_extension_object_may_carry_its_schemas() {
        let out = run(json!([{"op": "add", "path": ENTERPRISE_USER_URN, "value": {"schemas": [ENTERPRISE_USER_URN], "department": "Ops"}}])).unwrap();
        assert_eq!(out[ENTERPRISE_USER_URN]["department"], "Ops");
    }

    #[test]
    fn group_member_changes_in_both_dialects() {
        let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g", "displayName": "eng",
            "members": [{"value": "u1", "type": "User"}, {"value": "u2", "type": "User"}]});
        let group = group.as_object().unwrap();
        let apply = |ops: Value| {
            let ops = parse_patch_request(&json!({"schemas": [PATCH_OP_URN], "Operations": ops}))
                .unwrap();
            apply_patch(&group_resource(), group, &ops)
                .map(|n| Value::Object(n.attrs))
                .unwrap()
        };
        let okta = apply(
            json!([{"op": "remove", "path": "members[value eq \"u1\"]"}, {"op": "add", "path": "members", "value": [{"value": "u3", "display": "carol"}]}]),
        );
        assert_eq!(
            okta["members"],
            json!([{"value": "u2", "type": "User"}, {"value": "u3", "display": "carol"}])
        );
        let entra = apply(json!([{"op": "Remove", "path": "members", "value": [{"value": "u2"}]}]));
        assert_eq!(entra["members"], json!([{"value": "u1", "type": "User"}]));
        let readd = apply(json!([{"op": "add", "path": "members", "value": [{"value": "u1"}]}]));
        assert_eq!(readd["members"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn member_operations_are_told_apart_from_the_rest() {
        let def = group_resource();
        let ops = |ops: Value| {
            parse_patch_request(&json!({"schemas": [PATCH_OP_URN], "Operations": ops})).unwrap()
        };
        let okta_rename =
            ops(json!([{"op": "replace", "value": {"id": "g", "displayName": "eng"}}]));
        assert!(!touches(&def, &okta_rename, "members"));
        assert!(member_ops(&def, &okta_rename).is_none());
        let entra_rename = ops(json!([{"op": "Replace", "path": "displayName", "value": "eng"}]));
        assert!(!touches(&def, &entra_rename, "members"));
        for touching in [
            json!([{"op": "replace", "value": {"members": []}}]),
            json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:members"}]),
            json!([{"op": "add", "path": "nonsense", "value": 1}]),
        ] {
            assert!(
                touches(&def, &ops(touching.clone()), "members"),
                "{touching}"
            );
        }

        let okta = ops(json!([{"op": "remove", "path": "members[value eq \"u1\"]"},
            {"op": "add", "path": "members", "value": [{"value": "u1", "display": "Ann"}, {"value": "u2"}]},
            {"op": "Remove", "path": "members", "value": [{"value": "u2"}]}]));
        let expected: MemberOps = [
            (
                "u1".to_owned(),
                Some(json!({"value": "u1", "display": "Ann"})),
            ),
            ("u2".to_owned(), None),
        ]
        .into_iter()
        .collect();
        assert_eq!(member_ops(&def, &okta), Some(expected));
        for general in [
            json!([{"op": "remove", "path": "members"}]),
            json!([{"op": "replace", "path": "members", "value": []}]),
            json!([{"op": "remove", "path": "members[display eq \"Ann\"]"}]),
            json!([{"op": "add", "path": "members", "value": [{"display": "no value"}]}]),
            json!([{"op": "add", "path": "members", "value": []}, {"op": "add", "path": "displayName", "value": "x"}]),
        ] {
            assert!(
                member_ops(&def, &ops(general.clone())).is_none(),
                "{general}"
            );
        }
    }

    fn arb_op() -> impl Strategy<Value = Value> {
        let paths = prop::sample::select(vec![
            "title",
            "name.givenName",
            "name",
            "emails",
            "emails[type eq \"work\"]",
            "emails[type eq \"work\"].value",
            "active",
            "userName",
            "nickName",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        ]);
        let values = prop::sample::select(vec![
            json!("x"),
            json!(true),
            json!({"givenName": "G"}),
            json!([{"value": "v@x", "type": "work", "primary": true}]),
            json!({"value": "w@x", "primary": true}),
            json!(null),
            json!(7),
            json!({"title": "t", "name.familyName": "F"}),
        ]);
        let ops = prop::sample::select(vec!["add", "replace", "remove"]);
        (ops, prop::option::of(paths), values).prop_map(|(op, path, value)| {
            let mut o = json!({"op": op, "value": value});
            if let Some(p) = path {
                o["path"] = json!(p);
            }
            o
        })
    }

    proptest! {
        #[test]
        fn patch_sequences_never_break_schema_invariants(ops in prop::collection::vec(arb_op(), 1..6)) {
            let def = user_resource();
            let mut doc = alice();
            for op in ops {
                let Ok(parsed) = parse_patch_request(&json!({"schemas": [PATCH_OP_URN], "Operations": [op]})) else { continue };
                if let Ok(n) = apply_patch(&def, &doc, &parsed) {
                    // Whatever succeeded must itself be a valid resource body.
                    let mut body = n.attrs.clone();
                    body.insert("schemas".into(), json!(["urn:ietf:params:scim:schemas:core:2.0:User"]));
                    let again = normalize_resource(&def, &Value::Object(body), Leniency::default());
                    prop_assert!(again.is_ok(), "{:?}", again);
                    prop_assert_eq!(again.unwrap().attrs, n.attrs.clone());
                    prop_assert!(n.attrs.get("userName").is_some_and(|v| v.is_string()));
                    if let Some(Value::Array(emails)) = n.attrs.get("emails") {
                        prop_assert!(emails.iter().filter(|e| is_primary(e)).count() <= 1);
                    }
                    let mut next = n.attrs;
                    next.insert("id".into(), json!("u1"));
                    doc = next;
                }
            }
        }
    }
}
