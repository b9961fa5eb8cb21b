//! PATCH (RFC 7644 §3.5.2).

use axum::http::Method;
use serde_json::{json, Value};

use super::{refuse, Call, Quirk};
use scim::ScimType;

pub(super) const QUIRKS: &[Quirk] = &[
    Quirk::refusal(
        "scim-patch-op-case-sensitive",
        "PATCH op names other than lower-case are refused (RFC 7644 §3.5.2)",
        |call| {
            let shouted = read_operations(call)
                .iter()
                .any(|op| op_name(op) != op_name(op).to_ascii_lowercase());
            if shouted {
                return refuse(
                    400,
                    Some(ScimType::InvalidSyntax),
                    "op must be one of add, remove, replace",
                );
            }
            None
        },
    ),
    Quirk::rewrite(
        "scim-patch-remove-ignored",
        "PATCH remove operations are dropped (RFC 7644 §3.5.2.2)",
        |call| {
            if let Some(ops) = operations(call) {
                ops.retain(|op| !op_name(op).eq_ignore_ascii_case("remove"));
            }
        },
    ),
    Quirk::rewrite(
        "scim-patch-ops-reversed",
        "PATCH operations run last to first (RFC 7644 §3.5.2)",
        |call| {
            if let Some(ops) = operations(call) {
                ops.reverse();
            }
        },
    ),
    Quirk::rewrite(
        "scim-patch-add-as-replace",
        "PATCH add is run as replace (RFC 7644 §3.5.2.1)",
        |call| {
            rename_ops(call, "add", "replace");
        },
    ),
    Quirk::rewrite(
        "scim-patch-replace-as-add",
        "PATCH replace is run as add (RFC 7644 §3.5.2.3)",
        |call| {
            rename_ops(call, "replace", "add");
        },
    ),
    Quirk::rewrite(
        "scim-patch-complex-overwrites",
        "PATCH of a complex value drops its other sub-attributes (RFC 7644 §3.5.2.1)",
        |call| {
            if let Some(ops) = operations(call) {
                *ops = ops.drain(..).flat_map(wipe_first).collect();
            }
        },
    ),
];

/// The operations of a PATCH.
fn operations<'a>(call: &'a mut Call<'_>) -> Option<&'a mut Vec<Value>> {
    if call.method != Method::PATCH {
        return None;
    }
    call.body
        .as_mut()?
        .get_mut("Operations")
        .and_then(Value::as_array_mut)
}

/// The operations of a PATCH, to read.
fn read_operations<'a>(call: &'a Call<'_>) -> &'a [Value] {
    let ops = call.body.as_ref().and_then(|b| b.get("Operations"));
    match ops.and_then(Value::as_array) {
        Some(ops) if call.method == Method::PATCH => ops,
        _ => &[],
    }
}

fn op_name(op: &Value) -> &str {
    op.get("op").and_then(Value::as_str).unwrap_or("")
}

fn rename_ops(call: &mut Call<'_>, from: &str, to: &str) {
    for op in operations(call)
        .into_iter()
        .flatten()
        .filter(|op| op_name(op).eq_ignore_ascii_case(from))
    {
        op["op"] = json!(to);
    }
}

/// An operation preceded by removals of each complex attribute it sets, as a server that
/// replaces complex values whole would run it.
fn wipe_first(op: Value) -> Vec<Value> {
    let path = op.get("path").and_then(Value::as_str);
    let wiped: Vec<String> = match (path, op.get("value")) {
        (Some(p), Some(Value::Object(_))) if !p.contains(['.', '[']) => vec![p.to_owned()],
        (None, Some(Value::Object(o))) => o
            .iter()
            .filter(|(_, x)| x.is_object())
            .map(|(k, _)| k.clone())
            .collect(),
        _ => Vec::new(),
    };
    wiped
        .into_iter()
        .map(|p| json!({"op": "remove", "path": p}))
        .chain([op])
        .collect()
}
