//! Error answers: their status and their SCIM Error bodies (RFC 7644 §3.12).

use super::*;

/// The scimTypes of RFC 7644 Table 9 and RFC 9865 §2.1.
const SCIM_TYPES: &[&str] = &[
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVers",
    "sensitive",
    "invalidCursor",
    "expiredCursor",
    "invalidCount",
];

/// The checks of this section.
const IDS: &[&str] = &[
    "P-ERR-01",
    "P-ERR-02",
    "P-ERR-03",
    "P-ERR-04",
    "P-ERR-05",
    "P-READ-02",
    "I-OKTA-04",
    "X-INFO-01",
];

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    check!(s, "P-ERR-05", log => {
        let e = call(cx, &mut log, Method::GET, &format!("/{}NoSuchEndpoint", cx.prefix), None, &[]).await?;
        scim_error(&e, 404, None)
    });
    check!(s, "P-READ-02", log => {
        let e = call(cx, &mut log, Method::GET, &format!("/Users/{}missing", cx.prefix), None, &[]).await?;
        scim_error(&e, 404, None)
    });
    // Error bodies of every kind the suite can provoke without side effects.
    let mut errors: Vec<Exchange> = Vec::new();
    let provoke = [
        (Method::GET, format!("/Users/{}missing", cx.prefix), None),
        (
            Method::GET,
            format!("/Users?filter={}", encode("userName eq")),
            None,
        ),
        (
            Method::POST,
            "/Users".to_owned(),
            Some(json!({"schemas": [USER], "displayName": format!("{}error-probe", cx.prefix)})),
        ),
        (Method::GET, format!("/{}NoSuchEndpoint", cx.prefix), None),
    ];
    for (method, path, b) in provoke {
        if let Ok(e) = cx.target.send(method, &path, b.as_ref(), &[]).await {
            keep(cx, &e);
            errors.push(e);
        }
    }
    let each_error =
        |rule: &dyn Fn(&Exchange, &Value) -> Result<(), String>| -> Result<(), String> {
            // A request the server took leniently tells nothing about error bodies: only the
            // answers that are errors are judged, and with none there is nothing to judge.
            let failed: Vec<&Exchange> = errors.iter().filter(|e| e.status >= 400).collect();
            ensure(!failed.is_empty(), || {
                unprepared("none of the requests meant to provoke an error got one")
            })?;
            for e in failed {
                let b = body(e)?;
                rule(e, &b)
                    .map_err(|why| format!("{} {} -> {}: {why}", e.method, e.url, e.status))?;
            }
            Ok(())
        };
    check!(s, "P-ERR-01", log => {
        log.extend(errors.iter().cloned());
        each_error(&|_, b| ensure(b["schemas"] == json!([ERROR]), || format!("schemas is {}, not [\"{ERROR}\"]", b["schemas"])))
    });
    check!(s, "P-ERR-02", log => {
        log.extend(errors.iter().cloned());
        each_error(&|e, b| ensure(b["status"] == json!(e.status.to_string()), || format!("status is {}, not the string \"{}\"", b["status"], e.status)))
    });
    check!(s, "P-ERR-03", log => {
        log.extend(errors.iter().cloned());
        each_error(&|e, b| match b.get("scimType") {
            None | Some(Value::Null) => Ok(()),
            Some(Value::String(t)) if SCIM_TYPES.contains(&t.as_str()) => {
                let fits = if t == "uniqueness" { e.status == 409 } else { e.status == 400 };
                ensure(fits, || format!("scimType {t} does not fit status {}", e.status))
            }
            Some(other) => Err(format!("scimType {other} is not one of RFC 7644 Table 9 or RFC 9865 §2.1")),
        })
    });
    check!(s, "P-ERR-04", log => {
        log.extend(errors.iter().cloned());
        each_error(&|_, b| ensure(b.get("detail").is_none_or(|d| d.is_string() || d.is_null()), || format!("detail is {}, not a string", b["detail"])))
    });
    check!(s, "I-OKTA-04", log => {
        let mut probes = vec![call(cx, &mut log, Method::GET, &format!("/Users/{}missing", cx.prefix), None, &[]).await?];
        if !matches!(cx.target.auth, super::super::Auth::None) {
            probes.push(call(cx, &mut log, Method::GET, "/Users?count=1", None, &[("authorization", "")]).await?);
        }
        for e in &probes {
            scim_error(e, e.status, None)?;
            ensure(matches!(e.status, 401 | 404), || format!("expected 401 or 404, got {}", e.status))?;
            ensure(body(e)?["detail"].as_str().is_some_and(|d| !d.trim().is_empty()), || format!("the {} has no detail", e.status))?;
        }
        Ok(())
    });
    note!(s, "X-INFO-01", log => {
        let e = call(cx, &mut log, Method::GET, &format!("/Users?filter={}", encode("scimlabUndefinedAttribute eq \"x\"")), None, &[]).await?;
        let b = e.json().unwrap_or(Value::Null);
        Ok(match e.status {
            200 => format!("200 with totalResults {}", b["totalResults"]),
            code => format!("{code} with scimType {}", b["scimType"]),
        })
    });
    s.finish()
}
