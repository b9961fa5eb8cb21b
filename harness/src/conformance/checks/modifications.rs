//! PATCH on a user of its own: the message, order, atomicity, add, replace and remove.

use super::*;

/// The checks of this section.
const IDS: &[&str] = &[
    "P-PATCH-02",
    "P-PATCH-04",
    "P-PATCH-05",
    "P-PATCH-06",
    "P-PATCH-07",
    "P-PATCH-13",
    "P-PATCH-16",
    "P-PATCH-17",
    "P-PATCH-20",
    "P-PATCH-25",
    "I-OKTA-05",
    "I-ENTRA-01",
    "I-ENTRA-03",
];

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    if !cx.supports("patch") {
        s.skip(
            IDS,
            "ServiceProviderConfig does not advertise patch.supported",
        );
        return s.finish();
    }
    let path = match own_user(cx, &mut Vec::new(), "patched").await {
        Ok((path, _)) => path,
        Err(why) => {
            s.block(IDS, &why);
            return s.finish();
        }
    };
    check!(s, "P-PATCH-02", log => {
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]})), &[]).await?;
        scim_error(&e, 400, None)?;
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([]))), &[]).await?;
        scim_error(&e, 400, None)
    });
    check!(s, "P-PATCH-04", log => {
        let ops = patch_op(json!([{"op": "add", "path": "title", "value": "First"}, {"op": "replace", "path": "title", "value": "Second"}]));
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&ops), &[]).await?;
        status(&e, &[200, 204])?;
        let now = body(&call(cx, &mut log, Method::GET, &path, None, &[]).await?)?;
        ensure(now["title"] == json!("Second"), || format!("expected title \"Second\", got {}", now["title"]))
    });
    check!(s, "P-PATCH-05", log => {
        let before = body(&call(cx, &mut log, Method::GET, &path, None, &[]).await?)?;
        let ops = patch_op(json!([{"op": "replace", "path": "nickName", "value": "Atomic"}, {"op": "remove", "path": "userName"}]));
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&ops), &[]).await?;
        ensure(e.status >= 400, || format!("removing userName (required) should fail, got {}", e.status))?;
        let after = body(&call(cx, &mut log, Method::GET, &path, None, &[]).await?)?;
        ensure(after["nickName"] == before["nickName"], || format!("the first operation was applied although the request failed: nickName {}", after["nickName"]))
    });
    check!(s, "P-PATCH-06", log => {
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([{"op": "add", "value": {"nickName": "Merged", "name": {"middleName": "M"}}}]))), &[]).await?;
        status(&e, &[200, 204])?;
        let now = body(&call(cx, &mut log, Method::GET, &path, None, &[]).await?)?;
        ensure(now["nickName"] == json!("Merged") && now["name"]["middleName"] == json!("M") && now["name"]["givenName"] == json!("patched"), || format!("expected nickName and name.middleName merged with name.givenName kept, got {now}"))
    });
    check!(s, "P-PATCH-07", log => {
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([{"op": "add", "path": "emails", "value": [{"value": format!("{}home@example.com", cx.prefix), "type": "home"}]}]))), &[]).await?;
        status(&e, &[200, 204])?;
        let now = body(&call(cx, &mut log, Method::GET, &path, None, &[]).await?)?;
        let n = now["emails"].as_array().map_or(0, Vec::len);
        ensure(n == 2, || format!("expected 2 emails after appending one, got {n}"))
    });
    check!(s, "P-PATCH-13", log => {
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([{"op": "replace", "path": "emails[type eq \"pager\"].value", "value": "x@example.com"}]))), &[]).await?;
        scim_error(&e, 400, Some("noTarget"))
    });
    check!(s, "P-PATCH-16", log => {
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([{"op": "remove"}]))), &[]).await?;
        scim_error(&e, 400, Some("noTarget"))
    });
    check!(s, "P-PATCH-17", log => {
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([{"op": "remove", "path": "nickName"}]))), &[]).await?;
        status(&e, &[200, 204])?;
        let now = body(&call(cx, &mut log, Method::GET, &path, None, &[]).await?)?;
        ensure(now.get("nickName").is_none_or(Value::is_null), || format!("nickName is still {}", now["nickName"]))
    });
    check!(s, "P-PATCH-20", log => {
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([{"op": "replace", "path": "id", "value": "another-id"}]))), &[]).await?;
        scim_error(&e, 400, Some("mutability"))
    });
    check!(s, "P-PATCH-25", log => {
        let e = call(cx, &mut log, Method::PATCH, &format!("/Users/{}missing", cx.prefix), Some(&patch_op(json!([{"op": "add", "path": "title", "value": "x"}]))), &[]).await?;
        status(&e, &[404])
    });
    check!(s, "I-OKTA-05", log => {
        for active in [false, true] {
            let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([{"op": "replace", "value": {"active": active}}]))), &[]).await?;
            status(&e, &[200, 204])?;
            let now = body(&call(cx, &mut log, Method::GET, &path, None, &[]).await?)?;
            ensure(now["active"] == json!(active), || format!("expected active {active}, got {}", now["active"]))?;
        }
        Ok(())
    });
    check!(s, "I-ENTRA-01", log => {
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([{"op": "Replace", "path": "title", "value": "Capitalised"}]))), &[]).await?;
        status(&e, &[200, 204])?;
        let now = body(&call(cx, &mut log, Method::GET, &path, None, &[]).await?)?;
        ensure(now["title"] == json!("Capitalised"), || format!("expected title \"Capitalised\", got {}", now["title"]))
    });
    check!(s, "I-ENTRA-03", log => {
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([{"op": "Replace", "path": "active", "value": "False"}]))), &[]).await?;
        status(&e, &[200, 204])?;
        let now = body(&call(cx, &mut log, Method::GET, &path, None, &[]).await?)?;
        ensure(now["active"] == json!(false), || format!("expected active false, got {}", now["active"]))
    });
    s.finish()
}
