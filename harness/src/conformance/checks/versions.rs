//! ETags, sorting and attribute selection over users of its own.

use super::*;

/// The checks of this section.
const IDS: &[&str] = &[
    "P-ETAG-01",
    "P-ETAG-03",
    "P-ETAG-04",
    "P-ETAG-05",
    "P-SORT-01",
    "P-SORT-02",
    "P-ATTR-01",
    "P-ATTR-02",
    "P-ATTR-03",
    "P-SEARCH-01",
];

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    let etag_ids = &IDS[..4];
    let path = match own_user(cx, &mut Vec::new(), "sel-b").await {
        Ok((path, _)) => path,
        Err(why) => {
            s.block(IDS, &why);
            return s.finish();
        }
    };
    if let Err(why) = own_user(cx, &mut Vec::new(), "sel-a").await {
        s.block(&["P-SORT-01", "P-SORT-02", "P-SEARCH-01"], &why);
    }
    if cx.supports("etag") {
        check!(s, "P-ETAG-01", log => {
            let e = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
            ensure(e.header("etag").is_some(), || "GET of a resource has no ETag header".into())
        });
        check!(s, "P-ETAG-03", log => {
            let e = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
            let tag = e.header("etag").ok_or("no ETag to send back")?.to_owned();
            let e = call(cx, &mut log, Method::GET, &path, None, &[("if-none-match", &tag)]).await?;
            status(&e, &[304])
        });
        check!(s, "P-ETAG-04", log => {
            let e = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
            let before = body(&e)?;
            let e = call(cx, &mut log, Method::PUT, &path, Some(&user(cx, "sel-b")), &[("if-match", "W/\"scimlab-stale\"")]).await?;
            status(&e, &[412])?;
            let after = body(&call(cx, &mut log, Method::GET, &path, None, &[]).await?)?;
            ensure(after["meta"]["lastModified"] == before["meta"]["lastModified"], || "the resource changed despite the 412".into())
        });
        check!(s, "P-ETAG-05", log => {
            let e = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
            let tag = e.header("etag").ok_or("no ETag to send back")?.to_owned();
            let mut changed = user(cx, "sel-b");
            changed["title"] = json!("Versioned");
            let e = call(cx, &mut log, Method::PUT, &path, Some(&changed), &[("if-match", &tag)]).await?;
            status(&e, &[200])?;
            ensure(e.header("etag").is_some_and(|t| t != tag), || format!("the ETag did not change after a write (was {tag})"))
        });
    } else {
        s.skip(
            etag_ids,
            "ServiceProviderConfig does not advertise etag.supported",
        );
    }
    let mine = encode(&format!("userName sw \"{}sel-\"", cx.prefix));
    let names = |b: &Value| -> Vec<String> {
        resources(b)
            .iter()
            .filter_map(|u| {
                u["userName"]
                    .as_str()
                    .map(|n| n.trim_start_matches(&cx.prefix).to_owned())
            })
            .collect()
    };
    if cx.supports("sort") {
        check!(s, "P-SORT-01", log => {
            let b = body(&call(cx, &mut log, Method::GET, &format!("/Users?filter={mine}&sortBy=userName"), None, &[]).await?)?;
            ensure(names(&b) == ["sel-a", "sel-b"], || format!("expected [sel-a, sel-b], got {:?}", names(&b)))
        });
        check!(s, "P-SORT-02", log => {
            let b = body(&call(cx, &mut log, Method::GET, &format!("/Users?filter={mine}&sortBy=userName&sortOrder=descending"), None, &[]).await?)?;
            ensure(names(&b) == ["sel-b", "sel-a"], || format!("expected [sel-b, sel-a], got {:?}", names(&b)))
        });
    } else {
        s.skip(
            &["P-SORT-01", "P-SORT-02"],
            "ServiceProviderConfig does not advertise sort.supported",
        );
    }
    check!(s, "P-ATTR-01", log => {
        let b = body(&call(cx, &mut log, Method::GET, &format!("{path}?attributes=userName"), None, &[]).await?)?;
        let extra: Vec<&String> = b.as_object().map(|o| o.keys().filter(|k| !["schemas", "id", "userName"].contains(&k.as_str())).collect()).unwrap_or_default();
        ensure(b["userName"].is_string() && b["id"].is_string() && extra.is_empty(), || format!("attributes=userName returned {:?} besides schemas, id and userName", extra))
    });
    check!(s, "P-ATTR-02", log => {
        let b = body(&call(cx, &mut log, Method::GET, &format!("{path}?excludedAttributes=emails"), None, &[]).await?)?;
        ensure(b.get("emails").is_none() && b["userName"].is_string(), || "excludedAttributes=emails still returned emails (or dropped userName)".into())
    });
    check!(s, "P-ATTR-03", log => {
        let b = body(&call(cx, &mut log, Method::GET, &format!("{path}?excludedAttributes=id"), None, &[]).await?)?;
        ensure(b["id"].is_string(), || "excludedAttributes=id removed id, which is returned always".into())
    });
    check!(s, "P-SEARCH-01", log => {
        let filter = format!("userName sw \"{}sel-\"", cx.prefix);
        let get = body(&call(cx, &mut log, Method::GET, &format!("/Users?filter={mine}&sortBy=userName"), None, &[]).await?)?;
        let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": filter, "sortBy": "userName"});
        let e = call(cx, &mut log, Method::POST, "/Users/.search", Some(&search), &[]).await?;
        status(&e, &[200])?;
        let post = body(&e)?;
        ensure(names(&post) == names(&get) && post["totalResults"] == get["totalResults"], || format!("POST .search gave {:?}, GET gave {:?}", names(&post), names(&get)))
    });
    s.finish()
}
