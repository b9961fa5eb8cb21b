//! PATCH in depth: answers, add and replace on every kind of attribute, errors, primary.

use super::*;

const IDS: &[&str] = &[
    "P-PATCH-03",
    "P-PATCH-08",
    "P-PATCH-09",
    "P-PATCH-10",
    "P-PATCH-11",
    "P-PATCH-12",
    "P-PATCH-14",
    "P-PATCH-15",
    "P-PATCH-19",
    "P-PATCH-21",
    "P-PATCH-22",
    "P-PATCH-24",
];

fn emails(u: &Value) -> Vec<Value> {
    u["emails"].as_array().cloned().unwrap_or_default()
}

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS, &["P-PATCH-01"]]);
    if !cx.supports("patch") {
        check!(s, "P-PATCH-01", log => {
            let e = call(cx, &mut log, Method::PATCH, &format!("/Users/{}missing", cx.prefix), Some(&patch_op(json!([{"op": "add", "path": "title", "value": "x"}]))), &[]).await?;
            status(&e, &[501])
        });
        s.skip(
            IDS,
            "ServiceProviderConfig does not advertise patch.supported",
        );
        return s.finish();
    }
    s.skip(&["P-PATCH-01"], "patch.supported is true");
    let p = cx.prefix.clone();
    let path = match own_user(cx, &mut Vec::new(), "pt").await {
        Ok((path, _)) => path,
        Err(why) => {
            s.block(IDS, &why);
            return s.finish();
        }
    };
    check!(s, "P-PATCH-03", log => {
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([{"op": "add", "path": "title", "value": "Answered"}]))), &[]).await?;
        status(&e, &[200, 204])?;
        if e.status == 200 {
            ensure(body(&e)?["id"].is_string(), || "a 200 answer to PATCH does not hold the resource".into())?;
        }
        let e = call(cx, &mut log, Method::PATCH, &format!("{path}?attributes=title"), Some(&patch_op(json!([{"op": "replace", "path": "title", "value": "Selected"}]))), &[]).await?;
        status(&e, &[200])?;
        ensure(body(&e)?["title"] == json!("Selected"), || "with attributes=title the answer does not show the title".into())
    });
    check!(s, "P-PATCH-08", log => {
        let now = patched(cx, &mut log, &path, json!([{"op": "add", "path": "nickName", "value": "One"}])).await?;
        ensure(now["nickName"] == json!("One"), || format!("add set nickName to {}", now["nickName"]))?;
        let now = patched(cx, &mut log, &path, json!([{"op": "add", "path": "nickName", "value": "Two"}])).await?;
        ensure(now["nickName"] == json!("Two"), || format!("a second add left nickName {}", now["nickName"]))?;
        let now = patched(cx, &mut log, &path, json!([{"op": "add", "path": "name", "value": {"honorificPrefix": "Dr."}}])).await?;
        ensure(now["name"]["honorificPrefix"] == json!("Dr.") && now["name"]["givenName"] == json!("pt"), || format!("add of name.honorificPrefix gave name {}", now["name"]))
    });
    check!(s, "P-PATCH-09", log => {
        let before = patched(cx, &mut log, &path, json!([{"op": "add", "path": "title", "value": "Same"}])).await?;
        let after = patched(cx, &mut log, &path, json!([{"op": "add", "path": "title", "value": "Same"}])).await?;
        ensure(after["meta"]["lastModified"] == before["meta"]["lastModified"], || format!("adding the value already there moved lastModified {} -> {}", before["meta"]["lastModified"], after["meta"]["lastModified"]))
    });
    check!(s, "P-PATCH-10", log => {
        let fresh = json!([{"value": format!("{p}pt-only@example.com"), "type": "work", "primary": true}]);
        let now = patched(cx, &mut log, &path, json!([{"op": "replace", "value": {"title": "Pathless", "emails": fresh}}])).await?;
        ensure(now["title"] == json!("Pathless"), || format!("title is {}", now["title"]))?;
        ensure(emails(&now).len() == 1 && now["emails"][0]["value"] == fresh[0]["value"], || format!("emails should be exactly {fresh}, got {}", now["emails"]))?;
        ensure(now["nickName"] == json!("Two"), || format!("nickName (not in the value) changed to {}", now["nickName"]))
    });
    check!(s, "P-PATCH-11", log => {
        let two = json!([{"value": format!("{p}pt-w@example.com"), "type": "work", "primary": true}, {"value": format!("{p}pt-h@example.org"), "type": "home"}]);
        let now = patched(cx, &mut log, &path, json!([{"op": "replace", "path": "emails", "value": two}])).await?;
        let values: Vec<Value> = emails(&now).iter().map(|m| m["value"].clone()).collect();
        ensure(values.len() == 2 && values.contains(&two[0]["value"]) && values.contains(&two[1]["value"]), || format!("emails should be exactly {two}, got {}", now["emails"]))
    });
    check!(s, "P-PATCH-12", log => {
        let now = patched(cx, &mut log, &path, json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": format!("{p}pt-new@example.com")}])).await?;
        let work = emails(&now).into_iter().find(|m| m["type"] == json!("work")).unwrap_or(Value::Null);
        let home = emails(&now).into_iter().find(|m| m["type"] == json!("home")).unwrap_or(Value::Null);
        ensure(work["value"] == json!(format!("{p}pt-new@example.com")) && work["primary"] == json!(true), || format!("the work email became {work}"))?;
        ensure(home["value"] == json!(format!("{p}pt-h@example.org")), || format!("the home email changed to {home}"))
    });
    check!(s, "P-PATCH-14", log => {
        let now = patched(cx, &mut log, &path, json!([{"op": "replace", "path": "displayName", "value": "Shown"}])).await?;
        ensure(now["displayName"] == json!("Shown"), || format!("replace of the unassigned displayName left {}", now["displayName"]))
    });
    check!(s, "P-PATCH-15", log => {
        let now = patched(cx, &mut log, &path, json!([{"op": "replace", "path": "name", "value": {"givenName": "Renamed"}}])).await?;
        ensure(now["name"]["givenName"] == json!("Renamed") && now["name"]["familyName"] == json!("Scimlab"), || format!("replace of name.givenName gave name {}", now["name"]))
    });
    check!(s, "P-PATCH-19", log => {
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([{"op": "remove", "path": "userName"}]))), &[]).await?;
        scim_error(&e, 400, Some("mutability"))
    });
    check!(s, "P-PATCH-21", log => {
        for bad in ["emails[type eq", "scimlabUndefinedAttribute"] {
            let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([{"op": "replace", "path": bad, "value": "x"}]))), &[]).await?;
            scim_error(&e, 400, Some("invalidPath"))?;
        }
        Ok(())
    });
    check!(s, "P-PATCH-22", log => {
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([{"op": "replace", "path": "active", "value": {"not": "a boolean"}}]))), &[]).await?;
        scim_error(&e, 400, Some("invalidValue"))
    });
    check!(s, "P-PATCH-24", log => {
        let now = patched(cx, &mut log, &path, json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}])).await?;
        let primaries: Vec<Value> = emails(&now).into_iter().filter(|m| m["primary"] == json!(true)).map(|m| m["type"].clone()).collect();
        ensure(primaries == [json!("home")], || format!("after making home primary, the primary emails are {primaries:?}"))
    });
    s.finish()
}
