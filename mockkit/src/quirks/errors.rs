//! Error bodies (RFC 7644 §3.12).

use serde_json::json;

use super::Quirk;

pub(super) const QUIRKS: &[Quirk] = &[
    Quirk::answer(
        "scim-numeric-error-status",
        "error bodies carry status as a number, not a string (RFC 7644 §3.12)",
        |_, a| {
            let code = a.status.as_u16();
            if let Some(o) = a.error_body().filter(|o| o.contains_key("status")) {
                o.insert("status".into(), json!(code));
            }
        },
    ),
    Quirk::answer(
        "scim-error-no-schemas",
        "error bodies without schemas (RFC 7644 §3.12)",
        |_, a| drop(a.error_body().map(|o| o.remove("schemas"))),
    ),
    Quirk::answer(
        "scim-error-unknown-type",
        "scimType is answered as badRequest (RFC 7644 §3.12)",
        |call, a| {
            if let Some(o) = a.error_body().filter(|o| o.contains_key("scimType")) {
                o.insert("scimType".into(), json!("badRequest"));
            }
            for r in super::bulk::results(call, a) {
                if r["response"].get("scimType").is_some() {
                    r["response"]["scimType"] = json!("badRequest");
                }
            }
        },
    ),
    Quirk::answer(
        "scim-error-detail-object",
        "error detail is an object (RFC 7644 §3.12)",
        |_, a| {
            if let Some(o) = a.error_body() {
                if let Some(detail) = o.remove("detail") {
                    o.insert("detail".into(), json!({"message": detail}));
                }
            }
        },
    ),
    Quirk::answer(
        "scim-limits-unnamed",
        "413 answers do not name the limit (RFC 7644 §3.7.4)",
        |_, a| {
            if a.status.as_u16() != 413 {
                return;
            }
            if let Some(o) = a.error_body() {
                o.insert("detail".into(), json!("the request is too large"));
            }
        },
    ),
];
