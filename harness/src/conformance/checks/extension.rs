//! The enterprise User extension, Entra's flavour of PATCH, and inactive users.

use super::*;

const IDS: &[&str] = &[
    "P-ENT-01",
    "P-ENT-02",
    "P-ENT-03",
    "P-PATCH-23",
    "I-ENTRA-02",
];

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS, &["I-ENTRA-07"]]);
    let p = cx.prefix.clone();
    check!(s, "I-ENTRA-07", log => {
        let (path, _) = own_user(cx, &mut log, "ent-inactive").await?;
        let e = call(cx, &mut log, Method::PUT, &path, Some(&json!({"schemas": [USER], "userName": format!("{p}ent-inactive"), "active": false})), &[]).await?;
        status(&e, &[200])?;
        let got = get_json(cx, &mut log, &path).await?;
        ensure(got["active"] == json!(false), || format!("GET shows active {}", got["active"]))?;
        let found = get_json(cx, &mut log, &format!("/Users?filter={}", encode(&format!("userName eq \"{p}ent-inactive\"")))).await?;
        ensure(resources(&found).first().is_some_and(|u| u["active"] == json!(false)), || format!("a filter does not find the inactive user: {found}"))
    });
    if cx.schema(ENTERPRISE).is_none() {
        s.skip(IDS, "/Schemas does not list the enterprise User extension");
        return s.finish();
    }
    let boss_id = match own_user(cx, &mut Vec::new(), "ent-boss").await {
        Ok((_, b)) => b["id"].as_str().unwrap_or_default().to_owned(),
        Err(why) => {
            s.block(IDS, &why);
            return s.finish();
        }
    };
    let mut employee = user(cx, "ent-emp");
    employee["schemas"] = json!([USER, ENTERPRISE]);
    employee[ENTERPRISE] = json!({"employeeNumber": format!("{p}701"), "department": "Engineering",
                                 "manager": {"value": boss_id, "displayName": "Bogus Name"}});
    let mut log = Vec::new();
    let answer = post(cx, &mut log, "/Users", &employee).await;
    let (created, b) = match answer.and_then(|e| resource_made(&e).map(|b| (e, b))) {
        Ok(made) => made,
        Err(why) => {
            s.block(IDS, &format!("a user with enterprise attributes: {why}"));
            return s.finish();
        }
    };
    let path = format!("/Users/{}", b["id"].as_str().unwrap_or_default());
    check!(s, "P-ENT-01", log => {
        log.push(created.clone());
        let got = get_json(cx, &mut log, &path).await?;
        for v in [&b, &got] {
            ensure(v[ENTERPRISE]["employeeNumber"] == json!(format!("{p}701")), || format!("employeeNumber is not under the extension key: {}", v[ENTERPRISE]))?;
            ensure(v["schemas"].as_array().is_some_and(|a| a.contains(&json!(ENTERPRISE))), || format!("schemas lacks the extension URN: {}", v["schemas"]))?;
        }
        Ok(())
    });
    check!(s, "P-ENT-02", log => {
        let got = get_json(cx, &mut log, &path).await?;
        let manager = &got[ENTERPRISE]["manager"];
        ensure(manager["value"] == json!(boss_id), || format!("manager.value should be {boss_id}, got {manager}"))?;
        ensure(manager["displayName"] != json!("Bogus Name"), || "the client's manager.displayName (readOnly) was stored".into())
    });
    check!(s, "P-ENT-03", log => {
        let qualified = format!("{ENTERPRISE}:employeeNumber");
        let got = get_json(cx, &mut log, &format!("{path}?attributes={}", encode(&qualified))).await?;
        ensure(got[ENTERPRISE]["employeeNumber"].is_string() && got.get("userName").is_none(), || format!("attributes={qualified} returned {got}"))?;
        let filter = encode(&format!("{qualified} eq \"{p}701\""));
        let found = get_json(cx, &mut log, &format!("/Users?filter={filter}")).await?;
        ensure(found["totalResults"] == json!(1), || format!("the qualified filter found {}", found["totalResults"]))?;
        if cx.supports("sort") {
            let mine = encode(&format!("userName sw \"{p}ent-\""));
            let sorted = get_json(cx, &mut log, &format!("/Users?filter={mine}&sortBy={}", encode(&qualified))).await?;
            ensure(user_names(cx, &sorted).first().map(String::as_str) == Some("ent-emp"), || format!("sortBy={qualified} should put the one with a number first, got {:?}", user_names(cx, &sorted)))?;
        }
        Ok(())
    });
    if !cx.supports("patch") {
        s.skip(
            &["P-PATCH-23", "I-ENTRA-02"],
            "ServiceProviderConfig does not advertise patch.supported",
        );
        return s.finish();
    }
    check!(s, "P-PATCH-23", log => {
        let department = format!("{ENTERPRISE}:department");
        for (op, value, want) in [("add", json!("Operations"), json!("Operations")), ("replace", json!("Sales"), json!("Sales")), ("remove", Value::Null, Value::Null)] {
            let mut operation = json!({"op": op, "path": department});
            if !value.is_null() {
                operation["value"] = value;
            }
            let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([operation]))), &[]).await?;
            status(&e, &[200, 204])?;
            let got = get_json(cx, &mut log, &path).await?;
            ensure(got[ENTERPRISE]["department"] == want, || format!("after {op} of {department}, department is {}", got[ENTERPRISE]["department"]))?;
        }
        Ok(())
    });
    check!(s, "I-ENTRA-02", log => {
        let value = json!({"name.givenName": "Dotted", format!("{ENTERPRISE}:employeeNumber"): format!("{p}702")});
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([{"op": "replace", "value": value}]))), &[]).await?;
        status(&e, &[200, 204])?;
        let got = get_json(cx, &mut log, &path).await?;
        ensure(got["name"]["givenName"] == json!("Dotted") && got[ENTERPRISE]["employeeNumber"] == json!(format!("{p}702")), || format!("dotted and qualified keys gave name {} and employeeNumber {}", got["name"], got[ENTERPRISE]["employeeNumber"]))
    });
    s.finish()
}
