//! List queries (RFC 7644 §3.4.2-§3.4.3, §3.9): parameters from a URL or a SearchRequest,
//! sorting, pagination, and attribute projection by the `returned` characteristic.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};

use crate::error::{Result, ScimError};
use crate::message::Message;
use crate::path::AttrPath;
use crate::resource::is_primary;
use crate::schema::{AttrType, Attribute, ResourceDef, Returned, SEARCH_REQUEST_URN};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    #[default]
    Ascending,
    Descending,
}

/// A list query, however it arrived.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: SortOrder,
    /// 1-based; values below 1 are taken as 1 (§3.4.2.4).
    pub start_index: usize,
    /// `None`: as many as `filter.maxResults` allows; negative values are taken as 0.
    pub count: Option<usize>,
    /// RFC 9865: `Some("")` asks for the first page of a cursor query, `Some(c)` for the page
    /// `c` points to; `None` pages by index.
    pub cursor: Option<String>,
    pub projection: Projection,
}

/// `attributes` / `excludedAttributes`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    pub attributes: Vec<String>,
    pub excluded: Vec<String>,
}

impl Projection {
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    /// Reads `attributes` and `excludedAttributes` from URL parameters.
    pub fn from_params(params: &[(String, String)]) -> Projection {
        Projection {
            attributes: split_list(param(params, "attributes")),
            excluded: split_list(param(params, "excludedAttributes")),
        }
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn split_list(v: Option<&str>) -> Vec<String> {
    v.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

fn parse_int(name: &str, v: &str) -> Result<i64> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| ScimError::invalid_value(format!("'{name}' must be an integer, not '{v}'")))
}

impl ListQuery {
    /// What a cursor is bound to: everything but the paging, for `endpoint` (empty at the root).
    pub fn digest(&self, endpoint: &str) -> String {
        let order = match self.sort_order {
            SortOrder::Ascending => "a",
            SortOrder::Descending => "d",
        };
        crate::cursor::query_digest(&[
            endpoint,
            self.filter.as_deref().unwrap_or(""),
            self.sort_by.as_deref().unwrap_or(""),
            order,
            &self.projection.attributes.join(","),
            &self.projection.excluded.join(","),
        ])
    }

    /// From URL query parameters; names are matched case-insensitively, unknown ones ignored.
    pub fn from_params(params: &[(String, String)]) -> Result<ListQuery> {
        let mut q = ListQuery {
            start_index: 1,
            projection: Projection::from_params(params),
            ..Default::default()
        };
        q.filter = param(params, "filter").map(str::to_owned);
        q.sort_by = param(params, "sortBy")
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if let Some(order) = param(params, "sortOrder") {
            q.sort_order = parse_order(order)?;
        }
        if let Some(s) = param(params, "startIndex") {
            q.start_index = parse_int("startIndex", s)?.max(1) as usize;
        }
        if let Some(c) = param(params, "count") {
            q.count = Some(parse_int("count", c)?.max(0) as usize);
        }
        q.cursor = param(params, "cursor").map(str::to_owned);
        Ok(q)
    }

    /// From a SearchRequest body (§3.4.3).
    pub fn from_search_request(body: &Value) -> Result<ListQuery> {
        let message = Message::open(body, SEARCH_REQUEST_URN, "a SearchRequest")?;
        let field = |name: &str| message.field(name);
        let string = |name: &str| -> Result<Option<String>> {
            match field(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ScimError::invalid_syntax(format!(
                    "'{name}' must be a string"
                ))),
            }
        };
        let list = |name: &str| -> Result<Vec<String>> {
            match field(name) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_owned).ok_or_else(|| {
                            ScimError::invalid_syntax(format!(
                                "'{name}' must be an array of strings"
                            ))
                        })
                    })
                    .collect(),
                // Tolerate the comma-separated form some clients send.
                Some(Value::String(s)) => Ok(split_list(Some(s))),
                Some(_) => Err(ScimError::invalid_syntax(format!(
                    "'{name}' must be an array of strings"
                ))),
            }
        };
        let int = |name: &str| -> Result<Option<i64>> {
            match field(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
                Some(_) => Err(ScimError::invalid_syntax(format!(
                    "'{name}' must be an integer"
                ))),
            }
        };
        Ok(ListQuery {
            filter: string("filter")?,
            sort_by: string("sortBy")?,
            sort_order: match string("sortOrder")? {
                Some(o) => parse_order(&o)?,
                None => SortOrder::Ascending,
            },
            start_index: int("startIndex")?.unwrap_or(1).max(1) as usize,
            count: int("count")?.map(|c| c.max(0) as usize),
            cursor: string("cursor")?,
            projection: Projection {
                attributes: list("attributes")?,
                excluded: list("excludedAttributes")?,
            },
        })
    }
}

fn parse_order(v: &str) -> Result<SortOrder> {
    match v.to_ascii_lowercase().as_str() {
        "ascending" => Ok(SortOrder::Ascending),
        "descending" => Ok(SortOrder::Descending),
        _ => Err(ScimError::invalid_value(format!(
            "'sortOrder' must be \"ascending\" or \"descending\", not '{v}'"
        ))),
    }
}

/// A value to sort by, ordered as the attribute's type says.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Str(String),
    Num(f64),
    Time(DateTime<FixedOffset>),
    Bool(bool),
}

impl SortKey {
    fn cmp(&self, other: &SortKey) -> Ordering {
        match (self, other) {
            (SortKey::Str(a), SortKey::Str(b)) => a.cmp(b),
            (SortKey::Num(a), SortKey::Num(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (SortKey::Time(a), SortKey::Time(b)) => a.cmp(b),
            (SortKey::Bool(a), SortKey::Bool(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }
}

/// Resolves `sortBy` once for a resource type.
#[derive(Debug, Clone)]
pub struct SortSpec<'a> {
    resolved: crate::schema::Resolved<'a>,
}

impl<'a> SortSpec<'a> {
    pub fn new(def: &'a ResourceDef, sort_by: &str) -> Result<SortSpec<'a>> {
        let path = AttrPath::parse(sort_by)
            .map_err(|e| ScimError::invalid_value(format!("sortBy: {e}")))?;
        let mut resolved = def.resolve(&path).ok_or_else(|| {
            ScimError::invalid_value(format!(
                "sortBy: '{sort_by}' is not an attribute of {}",
                def.name
            ))
        })?;
        if resolved.leaf().is_complex() {
            // A complex attribute sorts by its `value` (§3.4.2.3: multi-valued ones by the primary).
            let value = resolved.attr.sub("value").ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "sortBy: '{sort_by}' is complex: name a sub-attribute"
                ))
            })?;
            resolved.sub = Some(value);
        }
        Ok(SortSpec { resolved })
    }

    /// The key of one document: the primary value of a multi-valued attribute, else the first.
    pub fn key(&self, doc: &Map<String, Value>) -> Option<SortKey> {
        let r = &self.resolved;
        let top = r.top_value(doc)?;
        let item = match top {
            Value::Array(items) => items
                .iter()
                .find(|v| is_primary(v))
                .or_else(|| items.first())?,
            v => v,
        };
        let v = match r.sub {
            Some(sub) => item.get(&sub.name)?,
            None => item,
        };
        key_of(r.leaf(), v)
    }
}

fn key_of(attr: &Attribute, v: &Value) -> Option<SortKey> {
    match attr.kind {
        AttrType::Boolean => v.as_bool().map(SortKey::Bool),
        AttrType::Integer | AttrType::Decimal => v.as_f64().map(SortKey::Num),
        AttrType::DateTime => v
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(SortKey::Time),
        _ => v
            .as_str()
            .map(|s| SortKey::Str(crate::store::fold(s, attr.case_exact))),
    }
}

/// Orders keyed items; items without a key come last ascending and first descending (§3.4.2.3).
/// The sort is stable, so equal keys keep the store's (id) order.
pub fn sort_keyed<T>(items: &mut [(Option<SortKey>, T)], order: SortOrder) {
    items.sort_by(|(a, _), (b, _)| {
        let asc = match (a, b) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        match order {
            SortOrder::Ascending => asc,
            SortOrder::Descending => asc.reverse(),
        }
    });
}

/// Canonical names of the projection's paths for one resource type; unknown names are dropped.
#[derive(Debug, Default)]
struct Names {
    /// Whole attributes (`emails`, `urn:…:User:manager`) or whole extensions (`urn:…:User`).
    whole: Vec<String>,
    /// Sub-attributes, as (attribute canonical name, sub name).
    subs: Vec<(String, String)>,
}

fn canonical(def: &ResourceDef, names: &[String]) -> Names {
    let mut out = Names::default();
    for n in names {
        if let Some(ext) = def.extension(n) {
            out.whole.push(ext.id.clone());
            continue;
        }
        let Ok(p) = AttrPath::parse(n) else { continue };
        let Some(r) = def.resolve(&p) else { continue };
        let parent = crate::schema::Resolved { sub: None, ..r }.canonical_name();
        match r.sub {
            Some(s) => out.subs.push((parent, s.name.clone())),
            None => out.whole.push(parent),
        }
    }
    out
}

/// Applies `attributes` / `excludedAttributes` and the `returned` rules to a full view,
/// moving the kept values rather than copying them.
pub fn project(
    def: &ResourceDef,
    view: Map<String, Value>,
    projection: &Projection,
) -> Map<String, Value> {
    // Views never hold `returned: never` values (they are set aside on input), so with no
    // projection only `returned: request` attributes could need removing.
    if projection.is_empty() && !def.has_request_only_attributes() {
        return view;
    }
    let include = canonical(def, &projection.attributes);
    let exclude = canonical(def, &projection.excluded);
    let listing = !projection.attributes.is_empty();
    let mut out = Map::new();
    for (key, value) in view {
        if let Some(ext) = def.extension(&key) {
            let Value::Object(obj) = value else {
                continue;
            };
            let ext_whole_in = include.whole.iter().any(|w| w == &ext.id);
            let ext_whole_out = exclude.whole.iter().any(|w| w == &ext.id);
            let mut kept = Map::new();
            for (k, v) in obj {
                let Some(attr) = ext.attr(&k) else { continue };
                let name = format!("{}:{}", ext.id, attr.name);
                if ext_whole_out && attr.returned != Returned::Always {
                    continue;
                }
                if let Some(v) = pick(attr, &name, v, listing && !ext_whole_in, &include, &exclude)
                {
                    kept.insert(k, v);
                }
            }
            if !kept.is_empty() {
                out.insert(key, Value::Object(kept));
            }
            continue;
        }
        let Some(attr) = def.top_attr(&key) else {
            out.insert(key, value);
            continue;
        };
        if let Some(v) = pick(attr, &attr.name, value, listing, &include, &exclude) {
            out.insert(key, v);
        }
    }
    out
}

/// Whether (and how much of) one attribute stays.
fn pick(
    attr: &Attribute,
    name: &str,
    value: Value,
    listing: bool,
    include: &Names,
    exclude: &Names,
) -> Option<Value> {
    match attr.returned {
        Returned::Never => return None,
        Returned::Always => return Some(value),
        _ => {}
    }
    let whole_in = include.whole.iter().any(|w| w == name);
    let subs_in: Vec<&str> = include
        .subs
        .iter()
        .filter(|(a, _)| a == name)
        .map(|(_, s)| s.as_str())
        .collect();
    if exclude.whole.iter().any(|w| w == name) {
        return None;
    }
    let subs_out: Vec<&str> = exclude
        .subs
        .iter()
        .filter(|(a, _)| a == name)
        .map(|(_, s)| s.as_str())
        .collect();
    let keep_sub = |sub: &str| -> bool {
        let def = attr.sub(sub);
        match def.map(|d| d.returned) {
            Some(Returned::Never) => false,
            Some(Returned::Always) => true,
            _ if subs_out.iter().any(|s| s.eq_ignore_ascii_case(sub)) => false,
            Some(Returned::Request) => {
                whole_in || subs_in.iter().any(|s| s.eq_ignore_ascii_case(sub))
            }
            _ => !listing || whole_in || subs_in.iter().any(|s| s.eq_ignore_ascii_case(sub)),
        }
    };
    if listing && !whole_in && subs_in.is_empty() {
        return None;
    }
    if attr.returned == Returned::Request && !whole_in && subs_in.is_empty() {
        return None;
    }
    if !attr.is_complex() {
        return Some(value);
    }
    let filter_obj = |v: Value| -> Option<Value> {
        let Value::Object(o) = v else { return None };
        let kept: Map<String, Value> = o.into_iter().filter(|(k, _)| keep_sub(k)).collect();
        (!kept.is_empty()).then_some(Value::Object(kept))
    };
    match value {
        Value::Array(items) => {
            let kept: Vec<Value> = items.into_iter().filter_map(filter_obj).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        v => filter_obj(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{group_resource, user_resource, ENTERPRISE_USER_URN};
    use serde_json::json;

    fn view() -> Map<String, Value> {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER_URN],
            "id": "u1", "userName": "alice", "name": {"givenName": "Alice", "familyName": "L"},
            "emails": [{"value": "a@x", "type": "work"}],
            (ENTERPRISE_USER_URN): {"employeeNumber": "7", "department": "R&D"},
            "meta": {"resourceType": "User"}
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn check(attributes: &[&str], excluded: &[&str], expected: Value) {
        let p = Projection {
            attributes: attributes.iter().map(|s| s.to_string()).collect(),
            excluded: excluded.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            Value::Object(project(&user_resource(), view(), &p)),
            expected,
            "{attributes:?} {excluded:?}"
        );
    }

    #[test]
    fn attributes_keep_only_what_is_named_plus_always_returned() {
        let schemas = view()["schemas"].clone();
        check(
            &["USERNAME", "name.givenName"],
            &[],
            json!({"schemas": schemas, "id": "u1", "userName": "alice", "name": {"givenName": "Alice"}}),
        );
        check(
            &[&format!("{ENTERPRISE_USER_URN}:employeeNumber")],
            &[],
            json!({"schemas": schemas, "id": "u1", ENTERPRISE_USER_URN: {"employeeNumber": "7"}}),
        );
        check(
            &[ENTERPRISE_USER_URN],
            &[],
            json!({"schemas": schemas, "id": "u1", ENTERPRISE_USER_URN: {"employeeNumber": "7", "department": "R&D"}}),
        );
    }

    #[test]
    fn excluded_attributes_never_drop_always_returned_ones() {
        let mut expected = view();
        expected.remove("emails");
        expected
            .get_mut("name")
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove("familyName");
        check(
            &[],
            &["emails", "id", "name.familyName"],
            Value::Object(expected),
        );
    }

    #[test]
    fn request_only_attributes_are_withheld_unless_named() {
        let def = crate::schema::user_with_extension(
            r#"{"id": "urn:example:Audit", "name": "Audit", "attributes": [
                {"name": "riskScore", "type": "integer", "returned": "request"}, {"name": "team"}]}"#,
            false,
        );
        assert!(
            def.has_request_only_attributes() && !user_resource().has_request_only_attributes()
        );
        let doc = json!({"id": "u", "userName": "a", "urn:example:Audit": {"riskScore": 7, "team": "red"}});
        let plain = project(
            &def,
            doc.as_object().cloned().unwrap(),
            &Projection::default(),
        );
        assert_eq!(
            Value::Object(plain),
            json!({"id": "u", "userName": "a", "urn:example:Audit": {"team": "red"}})
        );
        let named = Projection {
            attributes: vec!["urn:example:Audit:riskScore".into()],
            excluded: vec![],
        };
        let asked = project(&def, doc.as_object().cloned().unwrap(), &named);
        assert_eq!(
            Value::Object(asked),
            json!({"id": "u", "urn:example:Audit": {"riskScore": 7}})
        );
    }

    #[test]
    fn group_members_can_be_excluded() {
        let g = json!({"schemas": [], "id": "g", "displayName": "x", "members": [{"value": "u"}]});
        let p = Projection {
            attributes: vec![],
            excluded: vec!["members".into()],
        };
        let out = project(&group_resource(), g.as_object().cloned().unwrap(), &p);
        assert!(out.get("members").is_none() && out.get("displayName").is_some());
    }

    #[test]
    fn parameters_are_clamped_as_the_rfc_says() {
        let params = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        let q = ListQuery::from_params(&params(&[
            ("startIndex", "0"),
            ("count", "-5"),
            ("sortorder", "DESCENDING"),
        ]))
        .unwrap();
        assert_eq!(
            (q.start_index, q.count, q.sort_order),
            (1, Some(0), SortOrder::Descending)
        );
        assert!(ListQuery::from_params(&params(&[("count", "ten")])).is_err());
        let q = ListQuery::from_search_request(
            &json!({"schemas": [SEARCH_REQUEST_URN], "attributes": ["userName"], "count": 2}),
        )
        .unwrap();
        assert_eq!((q.count, q.projection.attributes.len()), (Some(2), 1));
        assert!(ListQuery::from_search_request(&json!({"schemas": ["x"]})).is_err());
        assert!(ListQuery::from_search_request(
            &json!({"schemas": [SEARCH_REQUEST_URN], "count": "2"})
        )
        .is_err());
    }

    #[test]
    fn missing_sort_values_go_last_ascending_and_first_descending() {
        let def = user_resource();
        let spec = SortSpec::new(&def, "emails").unwrap();
        let docs = [
            json!({"emails": [{"value": "b"}, {"value": "a", "primary": true}]}),
            json!({}),
            json!({"emails": [{"value": "C"}]}),
        ];
        let mut keyed: Vec<(Option<SortKey>, usize)> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| (spec.key(d.as_object().unwrap()), i))
            .collect();
        sort_keyed(&mut keyed, SortOrder::Ascending);
        assert_eq!(
            keyed.iter().map(|(_, i)| *i).collect::<Vec<_>>(),
            vec![0, 2, 1]
        );
        sort_keyed(&mut keyed, SortOrder::Descending);
        assert_eq!(
            keyed.iter().map(|(_, i)| *i).collect::<Vec<_>>(),
            vec![1, 2, 0]
        );
    }
}
