//! Sorting, attribute selection and `.search` (RFC 7644 §3.4.2.3, §3.4.2.5, §3.4.3), over
//! users of its own.

use super::*;

const BASICS: &[&str] = &[
    "P-SORT-01",
    "P-SORT-02",
    "P-ATTR-01",
    "P-ATTR-02",
    "P-ATTR-03",
    "P-SEARCH-01",
];

const IN_DEPTH: &[&str] = &[
    "P-SORT-03",
    "P-SORT-04",
    "P-SORT-05",
    "P-ATTR-04",
    "P-ATTR-05",
    "X-INFO-02",
    "P-SEARCH-02",
    "P-SEARCH-04",
];

/// Only these keys (and `schemas`) are in the object.
fn only(v: &Value, keys: &[&str]) -> Result<(), String> {
    let extra: Vec<&String> = v
        .as_object()
        .map(|o| {
            o.keys()
                .filter(|k| *k != "schemas" && !keys.contains(&k.as_str()))
                .collect()
        })
        .unwrap_or_default();
    ensure(
        extra.is_empty() && keys.iter().all(|k| v.get(*k).is_some()),
        || {
            format!(
                "expected exactly {keys:?}, got {:?}",
                v.as_object().map(|o| o.keys().collect::<Vec<_>>())
            )
        },
    )
}

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[BASICS, IN_DEPTH]);
    basics(cx, &mut s).await;
    in_depth(cx, &mut s).await;
    s.finish()
}

/// Sorting, attribute selection and `.search` as every server must have them, over two users.
async fn basics(cx: &Cx, s: &mut Section<'_>) {
    let path = match own_user(cx, &mut Vec::new(), "sel-b").await {
        Ok((path, _)) => path,
        Err(why) => {
            s.block(BASICS, &why);
            return;
        }
    };
    if let Err(why) = own_user(cx, &mut Vec::new(), "sel-a").await {
        s.block(&["P-SORT-01", "P-SORT-02", "P-SEARCH-01"], &why);
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
}

/// Case, missing values and multi-valued keys in sorting; sub-attributes, URNs and writes in
/// attribute selection; paging and errors in `.search`: over three users.
async fn in_depth(cx: &Cx, s: &mut Section<'_>) {
    let p = cx.prefix.clone();
    let made = population(cx, &["so-a", "so-b", "so-C"], |i, u| {
        if i == 0 {
            u["emails"] = json!([{"value": format!("{p}so-z-home@example.org"), "type": "home"},
                                 {"value": format!("{p}so-a@example.com"), "type": "work", "primary": true}]);
        }
        if i == 2 {
            u["title"] = json!("Alpha");
        }
    })
    .await;
    let users = match made {
        Ok(users) => users,
        Err(why) => {
            s.block(IN_DEPTH, &why);
            return;
        }
    };
    let b_path = users[1].0.clone();
    let mine = encode(&format!("userName sw \"{p}so-\""));
    let sorted = |by: &str, order: &str| format!("/Users?filter={mine}&sortBy={by}{order}");
    if cx.supports("sort") {
        check!(s, "P-SORT-03", log => {
            let b = get_json(cx, &mut log, &sorted("userName", "")).await?;
            ensure(user_names(cx, &b) == ["so-a", "so-b", "so-C"], || format!("userName (caseExact false) should sort so-a, so-b, so-C; got {:?}", user_names(cx, &b)))?;
            let b = get_json(cx, &mut log, &sorted("externalId", "")).await?;
            ensure(user_names(cx, &b) == ["so-C", "so-a", "so-b"], || format!("externalId (caseExact true) should sort so-C, so-a, so-b; got {:?}", user_names(cx, &b)))
        });
        check!(s, "P-SORT-04", log => {
            for (order, missing_last) in [("", true), ("&sortOrder=descending", false)] {
                let b = get_json(cx, &mut log, &sorted("title", order)).await?;
                let has: Vec<bool> = resources(&b).iter().map(|u| u["title"].is_string()).collect();
                let mut expected = has.clone();
                expected.sort_by_key(|h| *h != missing_last);
                ensure(has.len() == 3 && has == expected, || format!("sortBy=title{order}: resources without a title should come {}, got {:?}", if missing_last { "last" } else { "first" }, user_names(cx, &b)))?;
            }
            Ok(())
        });
        check!(s, "P-SORT-05", log => {
            let b = get_json(cx, &mut log, &sorted("emails", "")).await?;
            ensure(user_names(cx, &b) == ["so-a", "so-b", "so-C"], || format!("sortBy=emails should use the primary email (so-a first); got {:?}", user_names(cx, &b)))?;
            let b = get_json(cx, &mut log, &sorted("name.givenName", "&sortOrder=descending")).await?;
            ensure(user_names(cx, &b) == ["so-C", "so-b", "so-a"], || format!("sortBy=name.givenName descending should give so-C, so-b, so-a; got {:?}", user_names(cx, &b)))
        });
    } else {
        s.skip(
            &["P-SORT-03", "P-SORT-04", "P-SORT-05"],
            "ServiceProviderConfig does not advertise sort.supported",
        );
    }
    check!(s, "P-ATTR-04", log => {
        for r in resources(&get_json(cx, &mut log, &format!("/Users?filter={mine}&attributes=userName")).await?) {
            only(&r, &["id", "userName"]).map_err(|e| format!("list: {e}"))?;
        }
        let search = json!({"schemas": [SEARCH], "filter": format!("userName sw \"{p}so-\""), "attributes": ["userName"]});
        let e = call(cx, &mut log, Method::POST, "/Users/.search", Some(&search), &[]).await?;
        for r in resources(&body(&e)?) {
            only(&r, &["id", "userName"]).map_err(|e| format!(".search: {e}"))?;
        }
        let e = post(cx, &mut log, "/Users?attributes=userName", &user(cx, "attr-new")).await?;
        resource_made(&e)?;
        only(&body(&e)?, &["id", "userName"]).map_err(|e| format!("POST: {e}"))?;
        let e = call(cx, &mut log, Method::PUT, &format!("{b_path}?attributes=userName"), Some(&user(cx, "so-b")), &[]).await?;
        status(&e, &[200])?;
        only(&body(&e)?, &["id", "userName"]).map_err(|e| format!("PUT: {e}"))?;
        if cx.supports("patch") {
            let e = call(cx, &mut log, Method::PATCH, &format!("{b_path}?attributes=userName"), Some(&patch_op(json!([{"op": "replace", "path": "nickName", "value": "Sel"}]))), &[]).await?;
            status(&e, &[200])?;
            only(&body(&e)?, &["id", "userName"]).map_err(|e| format!("PATCH: {e}"))?;
        }
        Ok(())
    });
    check!(s, "P-ATTR-05", log => {
        let b = get_json(cx, &mut log, &format!("{b_path}?attributes=NAME.givenName")).await?;
        ensure(b["name"]["givenName"].is_string() && b["name"].get("familyName").is_none() && b.get("emails").is_none(), || format!("attributes=NAME.givenName returned {b}"))?;
        let urn = encode(&format!("{}:USERNAME", USER.to_uppercase()));
        let b = get_json(cx, &mut log, &format!("{b_path}?attributes={urn}")).await?;
        only(&b, &["id", "userName"])
    });
    note!(s, "X-INFO-02", log => {
        let e = call(cx, &mut log, Method::GET, &format!("{b_path}?attributes=userName&excludedAttributes=emails"), None, &[]).await?;
        Ok(match (e.status, e.json()) {
            (200, Some(b)) => format!("200; the answer holds {:?}", b.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default()),
            (code, b) => format!("{code} with scimType {}", b.map(|b| b["scimType"].clone()).unwrap_or_default()),
        })
    });
    check!(s, "P-SEARCH-02", log => {
        let search = json!({"schemas": [SEARCH], "filter": format!("userName sw \"{p}so-\""), "attributes": ["userName"],
                            "sortBy": "userName", "sortOrder": "descending", "startIndex": 2, "count": 1});
        let e = call(cx, &mut log, Method::POST, "/Users/.search", Some(&search), &[]).await?;
        status(&e, &[200])?;
        let b = body(&e)?;
        ensure(b["totalResults"] == json!(3) && user_names(cx, &b) == ["so-b"], || format!("expected so-b alone of 3, got {:?} of {}", user_names(cx, &b), b["totalResults"]))?;
        resources(&b).iter().try_for_each(|r| only(r, &["id", "userName"]))?;
        let excluded = json!({"schemas": [SEARCH], "filter": format!("userName sw \"{p}so-\""), "excludedAttributes": ["emails"]});
        let e = call(cx, &mut log, Method::POST, "/Users/.search", Some(&excluded), &[]).await?;
        ensure(resources(&body(&e)?).iter().all(|r| r.get("emails").is_none()), || "excludedAttributes [emails] in the body did not drop emails".into())
    });
    check!(s, "P-SEARCH-04", log => {
        let e = call(cx, &mut log, Method::POST, "/Users/.search", Some(&json!({"schemas": ["urn:scimlab:not-a-search"], "filter": "userName pr"})), &[]).await?;
        scim_error(&e, 400, Some("invalidSyntax"))?;
        let e = call(cx, &mut log, Method::POST, "/Users/.search", Some(&json!({"schemas": [SEARCH], "count": "ten"})), &[]).await?;
        scim_error(&e, 400, Some("invalidSyntax"))
    });
}
