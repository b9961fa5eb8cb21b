//! The System Log (`/api/v1/logs`) read from the audit log, and the filter evaluator the
//! list endpoints share.

use super::*;

pub(super) fn parse_filter(text: &str) -> Result<Filter> {
    Filter::parse(text).map_err(|e| OktaError::validation(format!("filter: {}", e.detail)))
}

pub(super) fn field<'v>(doc: &'v Value, name: &str) -> Option<&'v Value> {
    doc.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The values a filter path names; arrays fan out, so `target.id` matches any target.
pub(super) fn values<'v>(doc: &'v Value, path: &scim::path::AttrPath) -> Vec<&'v Value> {
    let top: Vec<&Value> = match field(doc, &path.attr) {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
        None => Vec::new(),
    };
    match &path.sub {
        None => top,
        Some(sub) => top.into_iter().filter_map(|v| field(v, sub)).collect(),
    }
}

pub(super) fn compare(v: &Value, op: CompareOp, lit: &Literal) -> bool {
    use std::cmp::Ordering;
    let ord = match (v, lit) {
        (Value::String(a), Literal::String(b)) => {
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            match op {
                CompareOp::Co => return a.contains(&b),
                CompareOp::Sw => return a.starts_with(&b),
                CompareOp::Ew => return a.ends_with(&b),
                _ => a.cmp(&b),
            }
        }
        (Value::Number(a), Literal::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            _ => return false,
        },
        (Value::Bool(a), Literal::Bool(b)) => a.cmp(b),
        (Value::Null, Literal::Null) => Ordering::Equal,
        _ => return op == CompareOp::Ne,
    };
    op.holds(ord)
}

/// Okta's filter and search expressions (SCIM syntax) over an API object; string comparisons
/// ignore case.
pub fn matches(f: &Filter, doc: &Value) -> bool {
    match f {
        Filter::Or(a, b) => matches(a, doc) || matches(b, doc),
        Filter::And(a, b) => matches(a, doc) && matches(b, doc),
        Filter::Not(a) => !matches(a, doc),
        Filter::Present(p) => values(doc, p).iter().any(|v| !v.is_null()),
        Filter::Compare(p, op, lit) => {
            let vs = values(doc, p);
            if vs.is_empty() {
                return *op == CompareOp::Ne || (*op == CompareOp::Eq && *lit == Literal::Null);
            }
            vs.iter().any(|v| compare(v, *op, lit))
        }
        Filter::ValuePath(p, inner) => values(doc, p).iter().any(|v| matches(inner, v)),
    }
}

/// A System Log event from an audit event: the audit sequence number is the paging cursor.
pub(super) fn log_event(e: &AuditEvent) -> Value {
    let mut doc = match &e.data {
        Value::Object(o) => o.clone(),
        _ => Map::new(),
    };
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &e.hash[0..8],
        &e.hash[8..12],
        &e.hash[12..16],
        &e.hash[16..20],
        &e.hash[20..32]
    );
    let failed = doc
        .get("outcome")
        .and_then(|o| o.get("result"))
        .and_then(Value::as_str)
        == Some("FAILURE");
    doc.insert("uuid".into(), json!(uuid));
    doc.insert("published".into(), json!(e.applied));
    doc.insert("eventType".into(), json!(e.kind));
    doc.insert("version".into(), json!("0"));
    doc.insert(
        "severity".into(),
        json!(if failed { "WARN" } else { "INFO" }),
    );
    doc.insert(
        "transaction".into(),
        json!({"type": "WEB", "id": e.seq.to_string()}),
    );
    doc.entry("outcome")
        .or_insert_with(|| json!({"result": "SUCCESS"}));
    doc.entry("target").or_insert_with(|| json!([]));
    Value::Object(doc)
}

pub(super) async fn logs(
    _: Admin,
    State(idp): State<Shared>,
    Query(params): Params,
) -> Result<Response> {
    let size = limit(&params, 100, 1000)?;
    let time = |name: &str| -> Result<Option<chrono::DateTime<chrono::FixedOffset>>> {
        params
            .get(name)
            .map(|t| {
                chrono::DateTime::parse_from_rfc3339(t).map_err(|_| {
                    OktaError::validation(format!("{name}: '{t}' is not an ISO 8601 time"))
                })
            })
            .transpose()
    };
    let (since, until) = (time("since")?, time("until")?);
    let filter = params.get("filter").map(|f| parse_filter(f)).transpose()?;
    let q: Vec<String> = params
        .get("q")
        .map(|q| q.split_whitespace().map(str::to_lowercase).collect())
        .unwrap_or_default();
    let descending = match params.get("sortOrder").map(String::as_str) {
        None | Some("ASCENDING") => false,
        Some("DESCENDING") => true,
        Some(s) => {
            return Err(OktaError::validation(format!(
                "sortOrder: '{s}' is not ASCENDING or DESCENDING"
            )))
        }
    };
    let mut after: u64 = match params.get("after") {
        None => 0,
        Some(a) => a
            .parse()
            .map_err(|_| OktaError::validation(format!("after: '{a}' is not a cursor")))?,
    };
    let keep = |e: &AuditEvent, doc: &Value| {
        let at = chrono::DateTime::parse_from_rfc3339(&e.applied).ok();
        since.is_none_or(|s| at.is_some_and(|t| t >= s))
            && until.is_none_or(|u| at.is_some_and(|t| t < u))
            && filter.as_ref().is_none_or(|f| matches(f, doc))
            && (q.is_empty() || {
                let text = doc.to_string().to_lowercase();
                q.iter().all(|w| text.contains(w))
            })
    };
    let mut found: Vec<(u64, Value)> = Vec::new();
    loop {
        let chunk = idp.store.audit().since(after, 1000)?;
        let Some(last) = chunk.last() else { break };
        after = last.seq;
        for e in &chunk {
            let doc = log_event(e);
            if keep(e, &doc) {
                found.push((e.seq, doc));
            }
        }
        if !descending && found.len() >= size {
            break;
        }
    }
    if descending {
        found.reverse();
    }
    let full = found.len() > size;
    found.truncate(size);
    let cursor = found.last().map(|(s, _)| s.to_string());
    // A polling client (ascending, no `until`) always gets a next link, as Okta gives.
    let next = if full || (!descending && until.is_none()) {
        cursor.or_else(|| params.get("after").cloned())
    } else {
        None
    };
    let items = found.into_iter().map(|(_, d)| d).collect();
    Ok(page(&idp, "/api/v1/logs", &params, items, next, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_match_nested_and_listed_fields() {
        let doc = json!({"status": "ACTIVE", "profile": {"login": "Ann@X.test"},
            "target": [{"id": "a"}, {"id": "b"}], "lastUpdated": "2026-01-02T00:00:00.000Z"});
        let m = |f: &str| matches(&parse_filter(f).unwrap(), &doc);
        assert!(m("status eq \"ACTIVE\""));
        assert!(m("profile.login eq \"ann@x.test\""));
        assert!(m("target.id eq \"b\" and status eq \"active\""));
        assert!(m("lastUpdated gt \"2026-01-01T00:00:00.000Z\""));
        assert!(!m("lastUpdated lt \"2026-01-01T00:00:00.000Z\""));
        assert!(m("profile.login sw \"ann\" or status eq \"x\""));
        assert!(!m("not (status pr)"));
        assert!(parse_filter("status eq").is_err());
    }
}
