//! `/Bulk` (RFC 7644 §3.7). Each operation runs through the same provider calls as a single
//! request. `bulkId:` references are resolved as creations finish; an operation that refers to a
//! creation still to come waits for it, and references that can never resolve (a cycle, or an
//! operation that failed) fail with 409.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::error::{Result, ScimError};
use crate::message::{field, Message};
use crate::provider::Provider;
use crate::schema::{BULK_REQUEST_URN, BULK_RESPONSE_URN};

#[derive(Debug)]
struct Op {
    method: String,
    bulk_id: Option<String>,
    version: Option<String>,
    path: String,
    data: Option<Value>,
}

/// Runs a BulkRequest and returns the BulkResponse.
pub async fn run(provider: &Provider, body: &Value) -> Result<Value> {
    let message = Message::open(body, BULK_REQUEST_URN, "a BulkRequest")?;
    let field = |name: &str| message.field(name);
    let fail_on_errors = match field("failOnErrors") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => n.as_u64(),
        Some(_) => {
            return Err(ScimError::invalid_syntax(
                "'failOnErrors' must be a positive integer",
            ))
        }
    };
    let Some(Value::Array(raw_ops)) = field("Operations") else {
        return Err(ScimError::invalid_syntax("'Operations' must be an array"));
    };
    let max = provider.config().bulk_max_operations;
    if raw_ops.len() > max {
        return Err(ScimError::new(
            413,
            None,
            format!(
                "the request has {} operations; maxOperations is {max}",
                raw_ops.len()
            ),
        ));
    }

    let parsed: Vec<Result<Op>> = raw_ops.iter().map(parse_op).collect();
    let mut pending_ids: HashMap<String, usize> = HashMap::new();
    for (i, op) in parsed.iter().enumerate() {
        if let Ok(Op {
            method,
            bulk_id: Some(b),
            ..
        }) = op
        {
            if method == "POST" {
                pending_ids.insert(b.clone(), i);
            }
        }
    }
    let mut resolved: HashMap<String, String> = HashMap::new();
    let mut results: Vec<Option<Value>> = vec![None; parsed.len()];
    let mut waiting: Vec<usize> = Vec::new();
    let mut errors = 0u64;
    let mut order: Vec<usize> = (0..parsed.len()).collect();
    let mut stopped = false;

    // Run in request order; operations waiting on a later creation run again after each pass
    // until a pass makes no progress.
    loop {
        let mut progressed = false;
        for i in std::mem::take(&mut order) {
            if stopped {
                break;
            }
            let op = match &parsed[i] {
                Ok(op) => op,
                Err(e) => {
                    results[i] = Some(error_result(
                        raw_ops[i].get("method"),
                        raw_ops[i].get("bulkId"),
                        e,
                    ));
                    errors += 1;
                    stopped = fail_on_errors.is_some_and(|n| errors >= n);
                    continue;
                }
            };
            match substitute(op, &resolved, &pending_ids) {
                Substituted::Wait => {
                    waiting.push(i);
                    continue;
                }
                Substituted::Unknown(b) => {
                    let e = ScimError::invalid_value(format!(
                        "bulkId:{b} does not name a POST in this request"
                    ));
                    results[i] = Some(error_result(
                        Some(&json!(op.method)),
                        op.bulk_id.as_ref().map(|b| json!(b)).as_ref(),
                        &e,
                    ));
                }
                Substituted::Ready(path, data) => {
                    progressed = true;
                    let outcome = execute(provider, op, &path, data.as_ref()).await;
                    if let (Ok(r), Some(b)) = (&outcome, &op.bulk_id) {
                        if let Some(id) = r
                            .get("location")
                            .and_then(Value::as_str)
                            .and_then(|l| l.rsplit('/').next())
                        {
                            resolved.insert(b.clone(), id.to_owned());
                        }
                    }
                    if let Some(b) = &op.bulk_id {
                        pending_ids.remove(b);
                    }
                    results[i] = Some(match outcome {
                        Ok(r) => r,
                        Err(e) => error_result(
                            Some(&json!(op.method)),
                            op.bulk_id.as_ref().map(|b| json!(b)).as_ref(),
                            &e,
                        ),
                    });
                }
            }
            if results[i]
                .as_ref()
                .is_some_and(|r| r.get("response").is_some())
            {
                errors += 1;
                stopped = fail_on_errors.is_some_and(|n| errors >= n);
            }
        }
        if stopped || waiting.is_empty() || !progressed {
            break;
        }
        order = std::mem::take(&mut waiting);
    }
    if !stopped {
        for i in waiting {
            if let Ok(op) = &parsed[i] {
                let e = ScimError::new(409, None, "circular or unresolvable bulkId reference: the operations it depends on never completed");
                results[i] = Some(error_result(
                    Some(&json!(op.method)),
                    op.bulk_id.as_ref().map(|b| json!(b)).as_ref(),
                    &e,
                ));
            }
        }
    }
    Ok(
        json!({"schemas": [BULK_RESPONSE_URN], "Operations": results.into_iter().flatten().collect::<Vec<_>>()}),
    )
}

fn parse_op(raw: &Value) -> Result<Op> {
    let Value::Object(o) = raw else {
        return Err(ScimError::invalid_syntax("an operation must be an object"));
    };
    let get = |name: &str| field(o, name);
    let text = |name: &str| get(name).and_then(Value::as_str).map(str::to_owned);
    let method = text("method")
        .map(|m| m.to_ascii_uppercase())
        .ok_or_else(|| ScimError::invalid_syntax("'method' is missing"))?;
    if !matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
        return Err(ScimError::invalid_syntax(format!(
            "method '{method}' is not one of POST, PUT, PATCH, DELETE"
        )));
    }
    let path = text("path").ok_or_else(|| ScimError::invalid_syntax("'path' is missing"))?;
    let bulk_id = text("bulkId");
    if method == "POST" && bulk_id.is_none() {
        return Err(ScimError::invalid_syntax(
            "a POST operation needs a 'bulkId'",
        ));
    }
    let data = get("data").filter(|d| !d.is_null()).cloned();
    if method != "DELETE" && data.is_none() {
        return Err(ScimError::invalid_syntax(format!(
            "a {method} operation needs 'data'"
        )));
    }
    Ok(Op {
        method,
        bulk_id,
        version: text("version"),
        path,
        data,
    })
}

enum Substituted {
    Ready(String, Option<Value>),
    /// Refers to a creation not done yet.
    Wait,
    /// Refers to a bulkId that no POST carries (or one that failed).
    Unknown(String),
}

fn substitute(
    op: &Op,
    resolved: &HashMap<String, String>,
    pending: &HashMap<String, usize>,
) -> Substituted {
    let mut missing: Option<String> = None;
    let mut wait = false;
    let mut swap = |s: &str| -> String {
        let Some(b) = s.strip_prefix("bulkId:") else {
            return s.to_owned();
        };
        match resolved.get(b) {
            Some(id) => id.clone(),
            None if pending.contains_key(b) && op.bulk_id.as_deref() != Some(b) => {
                wait = true;
                s.to_owned()
            }
            None => {
                missing.get_or_insert_with(|| b.to_owned());
                s.to_owned()
            }
        }
    };
    let path = op
        .path
        .split('/')
        .map(&mut swap)
        .collect::<Vec<_>>()
        .join("/");
    let data = op.data.as_ref().map(|d| map_strings(d, &mut swap));
    if let Some(b) = missing {
        Substituted::Unknown(b)
    } else if wait {
        Substituted::Wait
    } else {
        Substituted::Ready(path, data)
    }
}

fn map_strings(v: &Value, f: &mut impl FnMut(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| map_strings(x, f)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), map_strings(x, f)))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

async fn execute(provider: &Provider, op: &Op, path: &str, data: Option<&Value>) -> Result<Value> {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let endpoint = parts.next().unwrap_or("");
    let id = parts.next();
    let rt = provider
        .type_for_endpoint(endpoint)
        .ok_or_else(|| ScimError::invalid_value(format!("'{path}' is not a resource endpoint")))?;
    let version = op.version.as_deref();
    let body = data.unwrap_or(&Value::Null);
    let (status, view) = match (op.method.as_str(), id) {
        ("POST", None) => (201, Some(provider.create(rt, body).await?)),
        ("PUT", Some(id)) => (200, Some(provider.replace(rt, id, body, version).await?)),
        ("PATCH", Some(id)) => (200, Some(provider.patch(rt, id, body, version).await?)),
        ("DELETE", Some(id)) => {
            provider.delete(rt, id, version).await?;
            (204, None)
        }
        (m, _) => {
            return Err(ScimError::invalid_value(format!(
                "{m} cannot be applied to '{path}'"
            )))
        }
    };
    let mut out = json!({"method": op.method, "status": status.to_string()});
    if let Some(b) = &op.bulk_id {
        out["bulkId"] = json!(b);
    }
    match view {
        Some(v) => {
            out["location"] = json!(provider.location(v.rt, &v.id));
            out["version"] = json!(v.version);
        }
        None => {
            if let Some(id) = id {
                out["location"] = json!(provider.location(rt, id));
            }
        }
    }
    Ok(out)
}

fn error_result(method: Option<&Value>, bulk_id: Option<&Value>, e: &ScimError) -> Value {
    let mut out = json!({"method": method.cloned().unwrap_or(Value::Null), "status": e.status.to_string(), "response": e.body()});
    if let Some(b) = bulk_id {
        out["bulkId"] = b.clone();
    }
    out
}
