//! One User created, read, replaced and deleted: the lifecycle every provider serves.

use super::*;

/// The checks of this section.
const IDS: &[&str] = &[
    "P-CREATE-01",
    "P-CREATE-02",
    "P-CREATE-03",
    "P-CREATE-04",
    "P-CREATE-05",
    "P-CREATE-06",
    "P-READ-01",
    "P-SCHEMA-01",
    "P-SCHEMA-03",
    "P-SCHEMA-04",
    "P-SCHEMA-12",
    "P-PUT-01",
    "P-DELETE-01",
    "P-DELETE-02",
    "P-DELETE-05",
    "P-PUT-06",
    "P-USER-01",
    "P-CREATE-07",
    "P-CREATE-08",
];

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    let mut created: Option<Exchange> = None;
    check!(s, "P-CREATE-01", log => {
        let mut body = user(cx, "life");
        body["id"] = json!("client-chosen-id");
        body["password"] = json!("Scimlab-pw-1");
        let e = call(cx, &mut log, Method::POST, "/Users", Some(&body), &[]).await?;
        keep(cx, &e);
        created = Some(e.clone());
        status(&e, &[201])
    });
    // The checks below need the user: from the answer's body, or else from its Location.
    let mut found = None;
    if let Some(e) = &created {
        found = match (resource_made(e), e.header("location")) {
            (Ok(b), _) => Some(b),
            (Err(_), Some(at)) if (200..300).contains(&e.status) => {
                let at = at.to_owned();
                get_json(cx, &mut Vec::new(), &at)
                    .await
                    .ok()
                    .filter(|b| b["id"].is_string())
            }
            _ => None,
        };
    }
    let (Some(created), Some(stored)) = (created, found) else {
        s.block(
            &IDS[1..14],
            "the user P-CREATE-01 asked for was not created, or could not be found (no id in the answer, no Location)",
        );
        return s.finish();
    };
    let b = created.json().unwrap_or(Value::Null);
    let id = stored["id"].as_str().unwrap_or_default().to_owned();
    let location = b["meta"]["location"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("/Users/{id}");
    check!(s, "P-CREATE-02", log => {
        log.push(created.clone());
        let header = created.header("location").unwrap_or("");
        ensure(!header.is_empty() && header == location, || format!("expected a Location header equal to meta.location {location:?}, got {header:?}"))
    });
    check!(s, "P-CREATE-03", log => {
        log.push(created.clone());
        ensure(b["id"].is_string() && b["meta"].is_object(), || format!("the 201 body lacks id or meta: {b}"))
    });
    check!(s, "P-CREATE-05", log => {
        log.push(created.clone());
        ensure(!id.is_empty() && id != "client-chosen-id", || format!("the server kept the client's id {id:?}"))
    });
    check!(s, "P-CREATE-06", log => {
        log.push(created.clone());
        ensure(stored["meta"]["resourceType"] == json!("User"), || format!("expected meta.resourceType \"User\", got {}", stored["meta"]["resourceType"]))
    });
    check!(s, "P-SCHEMA-12", log => {
        log.push(created.clone());
        let e = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
        ensure(!created.response_body.contains("Scimlab-pw-1") && !e.response_body.contains("Scimlab-pw-1") && body(&e)?.get("password").is_none(), || "the password came back in a response".into())
    });
    check!(s, "P-CREATE-04", log => {
        let mut dup = user(cx, "life");
        dup["userName"] = json!(format!("{}LIFE", cx.prefix));
        dup["externalId"] = json!(format!("{}other", cx.prefix));
        let e = call(cx, &mut log, Method::POST, "/Users", Some(&dup), &[]).await?;
        keep(cx, &e);
        scim_error(&e, 409, Some("uniqueness"))
    });
    check!(s, "P-READ-01", log => {
        let e = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
        status(&e, &[200])?;
        ensure(body(&e)?["id"] == json!(id), || format!("expected id {id}"))
    });
    check!(s, "P-SCHEMA-01", log => {
        let e = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
        ensure(body(&e)?["schemas"].as_array().is_some_and(|a| a.contains(&json!(USER))), || format!("schemas lacks {USER}"))
    });
    check!(s, "P-SCHEMA-03", log => {
        let e = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
        let meta = body(&e)?["meta"].clone();
        for k in ["resourceType", "created", "lastModified", "location"] {
            ensure(meta[k].is_string(), || format!("meta.{k} is missing: {meta}"))?;
        }
        Ok(())
    });
    check!(s, "P-PUT-01", log => {
        let mut body_put = user(cx, "life");
        body_put["title"] = json!("Replaced");
        let e = call(cx, &mut log, Method::PUT, &path, Some(&body_put), &[]).await?;
        status(&e, &[200])?;
        ensure(body(&e)?["title"] == json!("Replaced"), || "the PUT response does not show the new title".into())
    });
    check!(s, "P-SCHEMA-04", log => {
        log.push(created.clone());
        let e = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
        let now = body(&e)?;
        ensure(stored["meta"]["created"] == stored["meta"]["lastModified"], || "lastModified differs from created on a new resource".into())?;
        let (before, after) = (stored["meta"]["lastModified"].as_str().unwrap_or(""), now["meta"]["lastModified"].as_str().unwrap_or(""));
        let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
        ensure(parse(after) > parse(before), || format!("lastModified did not move forward after a PUT: {before} -> {after}"))
    });
    let mut deleted = false;
    check!(s, "P-DELETE-01", log => {
        let e = call(cx, &mut log, Method::DELETE, &path, None, &[]).await?;
        deleted = (200..300).contains(&e.status);
        status(&e, &[204])
    });
    if deleted {
        check!(s, "P-DELETE-02", log => {
            let e = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
            status(&e, &[404])
        });
    } else {
        s.block(&["P-DELETE-02"], "the DELETE was refused (P-DELETE-01)");
    }
    check!(s, "P-DELETE-05", log => {
        let e = call(cx, &mut log, Method::DELETE, &format!("/Users/{}missing", cx.prefix), None, &[]).await?;
        scim_error(&e, 404, None)
    });
    check!(s, "P-PUT-06", log => {
        let e = call(cx, &mut log, Method::PUT, &format!("/Users/{}missing", cx.prefix), Some(&user(cx, "ghost")), &[]).await?;
        status(&e, &[404])
    });
    check!(s, "P-USER-01", log => {
        let e = call(cx, &mut log, Method::POST, "/Users", Some(&json!({"schemas": [USER], "displayName": format!("{}nameless", cx.prefix)})), &[]).await?;
        status(&e, &[400])
    });
    check!(s, "P-CREATE-07", log => {
        let mut bad = user(cx, "typed");
        bad["active"] = json!("yes");
        let e = call(cx, &mut log, Method::POST, "/Users", Some(&bad), &[]).await?;
        keep(cx, &e);
        scim_error(&e, 400, Some("invalidValue"))
    });
    check!(s, "P-CREATE-08", log => {
        let mut bad = user(cx, "refused");
        bad.as_object_mut().map(|o| o.remove("userName"));
        let _ = call(cx, &mut log, Method::POST, "/Users", Some(&bad), &[]).await?;
        let e = call(cx, &mut log, Method::GET, &format!("/Users?filter={}", encode(&format!("externalId eq \"{}refused\"", cx.prefix))), None, &[]).await?;
        ensure(body(&e)?["totalResults"] == json!(0), || "a refused create left a resource behind".into())
    });
    s.finish()
}
