//! What ServiceProviderConfig and /Schemas promise, against what the server does (RFC 7643 §5,
//! §7; Entra's SCIM guide).

use super::*;

/// The checks of this section.
const IDS: &[&str] = &[
    "P-DISC-03",
    "P-DISC-08",
    "I-ENTRA-10",
    "P-FILTER-15",
    "X-INFO-04",
];

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
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
    s.finish()
}
