//! Transport, versions, error bodies, discovery promises and /Me.

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

/// RFC 7644 §7.1 for a base URL: TLS unless the server is on loopback (then `None`: nothing to check).
pub fn transport_finding(base: &str) -> Option<Result<(), String>> {
    if base.starts_with("https://") {
        Some(Ok(()))
    } else if super::super::target::is_loopback(base) {
        None
    } else {
        Some(Err(format!(
            "{base} is reached over plain http off loopback: credentials and personal data cross the network unencrypted"
        )))
    }
}

/// The checks of this section.
const IDS: &[&str] = &[
    "P-SEC-01",
    "P-AUTH-04",
    "P-VERS-01",
    "P-ERR-01",
    "P-ERR-02",
    "P-ERR-03",
    "P-ERR-04",
    "I-OKTA-04",
    "X-INFO-01",
    "P-DISC-03",
    "P-DISC-08",
    "I-ENTRA-10",
    "P-FILTER-15",
    "X-INFO-04",
    "P-ME-01",
    "P-ME-02",
    "P-ME-03",
];

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    match transport_finding(&cx.target.base) {
        Some(result) => check!(s, "P-SEC-01", log => { let _ = &mut log; result }),
        None => s.skip(
            &["P-SEC-01"],
            "the server is on loopback, where TLS is not required",
        ),
    }
    match &cx.options.limited_auth {
        Some(limited) => check!(s, "P-AUTH-04", log => {
            let e = cx.target.with_auth(limited.clone()).get("/Users?count=1").await?;
            log.push(e.clone());
            status(&e, &[403])
        }),
        None => s.skip(
            &["P-AUTH-04"],
            "no credential without permission was given (--limited-token)",
        ),
    }
    check!(s, "P-VERS-01", log => {
        let e = call(cx, &mut log, Method::GET, "/v9/Users?count=1", None, &[]).await?;
        ensure((400..500).contains(&e.status), || format!("a request under the unknown version prefix /v9 got {}, not a 4xx", e.status))
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
    discovery_promises(cx, &mut s).await;
    me(cx, &mut s).await;
    s.finish()
}

/// What ServiceProviderConfig and /Schemas promise, against what the server does.
async fn discovery_promises(cx: &Cx, s: &mut Section<'_>) {
    check!(s, "P-DISC-03", log => {
        let Some(spc) = cx.spc.clone() else { return Err("ServiceProviderConfig could not be read".into()) };
        let probe = call(cx, &mut log, Method::PATCH, &format!("/Users/{}missing", cx.prefix), Some(&patch_op(json!([{"op": "add", "path": "title", "value": "x"}]))), &[]).await?;
        let patch_on = spc["patch"]["supported"] == json!(true);
        ensure(patch_on == (probe.status != 501), || format!("patch.supported is {patch_on} but PATCH answered {}", probe.status))?;
        let bulk = call(cx, &mut log, Method::POST, "/Bulk", Some(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []})), &[]).await?;
        let bulk_on = spc["bulk"]["supported"] == json!(true);
        ensure(bulk_on == (bulk.status != 501), || format!("bulk.supported is {bulk_on} but POST /Bulk answered {}", bulk.status))?;
        if spc["etag"]["supported"] == json!(true) {
            // Other sections create and delete users meanwhile: one listed may be gone by the GET
            // (a 404, or whatever else a server answers for a missing id), so only the answer
            // that is the user counts.
            let list = get_json(cx, &mut log, "/Users?count=5").await?;
            for id in resources(&list).iter().filter_map(|u| u["id"].as_str()) {
                let e = call(cx, &mut log, Method::GET, &format!("/Users/{id}"), None, &[]).await?;
                if e.status != 200 || e.json().is_none_or(|b| b["id"] != json!(id)) {
                    continue;
                }
                ensure(e.header("etag").is_some(), || "etag.supported is true but a GET of a user has no ETag".into())?;
                break;
            }
        }
        if let Some(max) = cx.max_results() {
            let list = get_json(cx, &mut log, &format!("/Users?count={}", max + 1)).await?;
            let n = resources(&list).len() as u64;
            ensure(n <= max, || format!("filter.maxResults is {max} but a page held {n}"))?;
        }
        Ok(())
    });
    check!(s, "P-DISC-08", log => {
        let listed = call(cx, &mut log, Method::GET, "/Schemas", None, &[]).await?;
        let first = listed.json().and_then(|b| resources(&b).first().and_then(|s| s["id"].as_str().map(str::to_owned)));
        let Some(urn) = first else { return Err("/Schemas listed no schema to ask for".into()) };
        let e = call(cx, &mut log, Method::GET, &format!("/Schemas/{urn}"), None, &[]).await?;
        if matches!(e.status, 404 | 501) {
            return Err(unsupported(format!("GET /Schemas/{{URN}} answered {}", e.status)));
        }
        status(&e, &[200])?;
        let b = body(&e)?;
        ensure(b["id"] == json!(urn) && b.get("Resources").is_none(), || format!("expected the schema {urn} itself, got {}", b["id"]))
    });
    check!(s, "I-ENTRA-10", log => {
        let b = get_json(cx, &mut log, "/Schemas").await?;
        fn walk(v: &Value, at: &str) -> Result<(), String> {
            match v {
                Value::Null => Err(format!("null at {at}")),
                Value::Array(items) => items.iter().enumerate().try_for_each(|(i, x)| walk(x, &format!("{at}[{i}]"))),
                Value::Object(o) => o.iter().try_for_each(|(k, x)| {
                    if matches!(k.as_str(), "mutability" | "returned" | "uniqueness" | "type") {
                        if let Some(t) = x.as_str().filter(|t| t.chars().next().is_some_and(char::is_uppercase) || t.contains(['_', '-', ' '])) {
                            return Err(format!("{at}.{k} is {t:?}, not camelCase"));
                        }
                    }
                    walk(x, &format!("{at}.{k}"))
                }),
                _ => Ok(()),
            }
        }
        walk(&b, "")
    });
    if cx.supports("filter") {
        s.skip(&["P-FILTER-15"], "filter.supported is true");
    } else {
        check!(s, "P-FILTER-15", log => {
            let e = call(cx, &mut log, Method::GET, &format!("/Users?filter={}", encode("userName eq \"x\"")), None, &[]).await?;
            if e.status == 501 { Ok(()) } else { scim_error(&e, 400, Some("invalidFilter")) }
        });
    }
    if cx.supports("sort") {
        s.skip(&["X-INFO-04"], "sort.supported is true");
    } else {
        note!(s, "X-INFO-04", log => {
            let e = call(cx, &mut log, Method::GET, "/Users?count=2&sortBy=userName", None, &[]).await?;
            Ok(match e.status {
                200 => "sortBy is ignored (200)".to_owned(),
                code => format!("sortBy is refused with {code}"),
            })
        });
    }
}

async fn me(cx: &Cx, s: &mut Section<'_>) {
    let mut log = Vec::new();
    let answer = match call(cx, &mut log, Method::GET, "/Me", None, &[]).await {
        Ok(e) => e,
        Err(why) => {
            s.block(&["P-ME-01", "P-ME-02", "P-ME-03"], &why);
            return;
        }
    };
    if answer.status == 200 {
        s.skip(&["P-ME-02"], "/Me is supported");
        let me = answer.json().unwrap_or(Value::Null);
        check!(s, "P-ME-01", log => {
            log.push(answer.clone());
            let id = me["id"].as_str().ok_or("the /Me answer has no id")?;
            let direct = get_json(cx, &mut log, &format!("/Users/{id}")).await?;
            ensure(direct["id"] == me["id"], || format!("/Me is {id} but /Users/{id} is {}", direct["id"]))
        });
        check!(s, "P-ME-03", log => {
            log.push(answer.clone());
            let location = me["meta"]["location"].as_str().unwrap_or("");
            ensure(!location.is_empty() && !location.trim_end_matches('/').ends_with("/Me"), || format!("meta.location is {location:?}, not the permanent URI"))?;
            ensure(answer.header("location").is_none_or(|l| !l.trim_end_matches('/').ends_with("/Me")), || "the Location header points at /Me".into())
        });
    } else {
        let reason = format!("/Me is not supported ({})", answer.status);
        s.skip(&["P-ME-01", "P-ME-03"], &reason);
        check!(s, "P-ME-02", log => {
            log.push(answer.clone());
            scim_error(&answer, 501, None)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::transport_finding;

    #[test]
    fn plain_http_fails_only_off_loopback() {
        assert_eq!(
            transport_finding("https://scim.example.com/v2"),
            Some(Ok(()))
        );
        assert_eq!(transport_finding("http://127.0.0.1:8080"), None);
        assert_eq!(transport_finding("http://localhost/scim"), None);
        assert!(matches!(
            transport_finding("http://scim.example.com"),
            Some(Err(_))
        ));
    }
}
