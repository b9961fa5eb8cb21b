//! Rules every User obeys: ids, names, types of values, readOnly input, replace and delete.

use super::*;

const IDS: &[&str] = &[
    "P-MEDIA-01",
    "P-SCHEMA-02",
    "P-SCHEMA-05",
    "P-SCHEMA-07",
    "P-SCHEMA-08",
    "P-SCHEMA-09",
    "P-SCHEMA-10",
    "P-USER-02",
    "P-PUT-04",
    "P-PUT-05",
    "P-PUT-07",
    "P-PUT-08",
    "P-DELETE-03",
    "P-DELETE-04",
    "X-INFO-06",
    "I-OKTA-03",
    "I-OKTA-06",
];

/// xsd:dateTime (RFC 7643 §2.3.5): `YYYY-MM-DDThh:mm:ss[.s+][Z|(+|-)hh:mm]`.
pub fn is_xsd_datetime(text: &str) -> bool {
    let (main, zone) = match text
        .find(['Z', '+'])
        .or_else(|| text.rfind('-').filter(|&i| i > 10))
    {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let zone_ok = zone.is_empty()
        || zone == "Z"
        || chrono::NaiveTime::parse_from_str(&format!("{}:00", &zone[1..]), "%H:%M:%S").is_ok()
            && zone.len() == 6;
    zone_ok && chrono::NaiveDateTime::parse_from_str(main, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
}

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    let users = match population(cx, &["rule-a", "rule-b"], |_, _| {}).await {
        Ok(users) => users,
        Err(why) => {
            s.block(IDS, &why);
            return s.finish();
        }
    };
    let (a_path, a) = users[0].clone();
    let (b_path, b) = users[1].clone();
    let p = cx.prefix.clone();
    check!(s, "P-MEDIA-01", log => {
        let mut u = user(cx, "rule-utf8");
        u["name"]["givenName"] = json!("Zoë Ñandú 日本");
        let e = post(cx, &mut log, "/Users", &u).await?;
        resource_made(&e)?;
        let path = format!("/Users/{}", body(&e)?["id"].as_str().unwrap_or_default());
        let now = get_json(cx, &mut log, &path).await?;
        ensure(now["name"]["givenName"] == json!("Zoë Ñandú 日本"), || format!("the UTF-8 name came back as {}", now["name"]["givenName"]))
    });
    check!(s, "P-SCHEMA-02", log => {
        let (ida, idb) = (a["id"].as_str().unwrap_or(""), b["id"].as_str().unwrap_or(""));
        ensure(!ida.is_empty() && ida != idb && ida != "bulkId" && idb != "bulkId", || format!("ids {ida:?} and {idb:?} are not distinct server-issued ids"))?;
        for _ in 0..2 {
            let again = get_json(cx, &mut log, &a_path).await?;
            ensure(again["id"] == a["id"], || format!("id changed between reads: {} then {}", a["id"], again["id"]))?;
        }
        Ok(())
    });
    check!(s, "P-SCHEMA-05", log => {
        let now = get_json(cx, &mut log, &a_path).await?;
        for k in ["created", "lastModified"] {
            let v = now["meta"][k].as_str().unwrap_or("");
            ensure(is_xsd_datetime(v), || format!("meta.{k} {v:?} is not an xsd:dateTime"))?;
        }
        Ok(())
    });
    check!(s, "P-SCHEMA-07", log => {
        let upper = json!({"schemas": [USER], "USERNAME": format!("{p}rule-upper"), "NAME": {"GIVENNAME": "Upper"}});
        let e = post(cx, &mut log, "/Users", &upper).await?;
        resource_made(&e)?;
        let got = body(&e)?;
        ensure(got["userName"] == json!(format!("{p}rule-upper")), || format!("USERNAME was not read as userName: {}", got["userName"]))
    });
    check!(s, "P-SCHEMA-08", log => {
        let mut u = user(cx, "rule-null");
        u["nickName"] = Value::Null;
        u["phoneNumbers"] = json!([]);
        let e = post(cx, &mut log, "/Users", &u).await?;
        resource_made(&e)?;
        let path = format!("/Users/{}", body(&e)?["id"].as_str().unwrap_or_default());
        let now = get_json(cx, &mut log, &path).await?;
        ensure(now.get("nickName").is_none_or(Value::is_null), || format!("nickName sent as null came back as {}", now["nickName"]))?;
        ensure(now.get("phoneNumbers").is_none_or(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty)), || format!("phoneNumbers sent as [] came back as {}", now["phoneNumbers"]))
    });
    check!(s, "P-SCHEMA-09", log => {
        let mut u = user(cx, "rule-primary");
        u["emails"] = json!([{"value": format!("{p}rule-primary@example.com"), "type": "work", "primary": true},
                             {"value": format!("{p}rule-primary@example.org"), "type": "home"}]);
        let e = post(cx, &mut log, "/Users", &u).await?;
        resource_made(&e)?;
        let path = format!("/Users/{}", body(&e)?["id"].as_str().unwrap_or_default());
        let now = get_json(cx, &mut log, &path).await?;
        let primaries = now["emails"].as_array().into_iter().flatten().filter(|m| m["primary"] == json!(true)).count();
        ensure(primaries <= 1, || format!("{primaries} emails are primary"))
    });
    check!(s, "P-SCHEMA-10", log => {
        let mut u = user(cx, "rule-readonly");
        u["groups"] = json!([{"value": format!("{p}no-group")}]);
        u["meta"] = json!({"created": "2001-01-01T00:00:00Z", "resourceType": "Group"});
        let e = post(cx, &mut log, "/Users", &u).await?;
        resource_made(&e)?;
        let path = format!("/Users/{}", body(&e)?["id"].as_str().unwrap_or_default());
        for got in [body(&e)?, get_json(cx, &mut log, &path).await?] {
            ensure(!got["groups"].to_string().contains("no-group"), || format!("the client's groups were kept: {}", got["groups"]))?;
            ensure(got["meta"]["created"] != json!("2001-01-01T00:00:00Z") && got["meta"]["resourceType"] == json!("User"), || format!("the client's meta was kept: {}", got["meta"]))?;
        }
        Ok(())
    });
    check!(s, "P-USER-02", log => {
        let e = post(cx, &mut log, "/Users", &user(cx, "rule-a")).await?;
        scim_error(&e, 409, Some("uniqueness"))
    });
    check!(s, "I-OKTA-03", log => {
        let e = post(cx, &mut log, "/Users", &user(cx, "rule-b")).await?;
        scim_error(&e, 409, None)
    });
    check!(s, "I-OKTA-06", log => {
        let mut u = user(cx, "rule-okta-pw");
        u["password"] = json!("Okta-Secret-77");
        let e = post(cx, &mut log, "/Users", &u).await?;
        resource_made(&e)?;
        let path = format!("/Users/{}", body(&e)?["id"].as_str().unwrap_or_default());
        let later = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
        ensure(![&e, &later].iter().any(|x| x.response_body.contains("Okta-Secret-77")), || "the password came back".into())
    });
    check!(s, "P-PUT-04", log => {
        let mut u = user(cx, "rule-a");
        u["id"] = json!(format!("{p}other-id"));
        u["meta"] = json!({"created": "2001-01-01T00:00:00Z"});
        u["groups"] = json!([{"value": format!("{p}no-group")}]);
        let e = call(cx, &mut log, Method::PUT, &a_path, Some(&u), &[]).await?;
        status(&e, &[200])?;
        for got in [body(&e)?, get_json(cx, &mut log, &a_path).await?] {
            ensure(got["id"] == a["id"], || format!("the id became {}", got["id"]))?;
            ensure(got["meta"]["created"] == a["meta"]["created"], || format!("meta.created became {}", got["meta"]["created"]))?;
            ensure(!got["groups"].to_string().contains("no-group"), || format!("the client's groups were kept: {}", got["groups"]))?;
        }
        Ok(())
    });
    check!(s, "P-PUT-05", log => {
        let mut u = user(cx, "rule-a");
        u.as_object_mut().map(|o| o.remove("userName"));
        let e = call(cx, &mut log, Method::PUT, &a_path, Some(&u), &[]).await?;
        status(&e, &[400])?;
        let now = get_json(cx, &mut log, &a_path).await?;
        ensure(now["userName"] == json!(format!("{p}rule-a")), || format!("userName became {}", now["userName"]))
    });
    check!(s, "P-PUT-07", log => {
        let mut u = user(cx, "rule-a");
        u["userName"] = b["userName"].clone();
        let e = call(cx, &mut log, Method::PUT, &a_path, Some(&u), &[]).await?;
        scim_error(&e, 409, Some("uniqueness"))
    });
    check!(s, "P-PUT-08", log => {
        let before = get_json(cx, &mut log, &a_path).await?;
        let mut u = user(cx, "rule-a");
        u["title"] = json!("Moved on");
        let e = call(cx, &mut log, Method::PUT, &a_path, Some(&u), &[]).await?;
        status(&e, &[200])?;
        let after = get_json(cx, &mut log, &a_path).await?;
        let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v["meta"]["lastModified"].as_str().unwrap_or("")).ok();
        ensure(at(&after).is_some() && at(&after) > at(&before), || format!("lastModified did not move forward: {} -> {}", before["meta"]["lastModified"], after["meta"]["lastModified"]))?;
        if cx.supports("etag") {
            ensure(after["meta"]["version"] != before["meta"]["version"], || format!("meta.version stayed {}", after["meta"]["version"]))?;
        }
        Ok(())
    });
    let deleted = call(cx, &mut Vec::new(), Method::DELETE, &b_path, None, &[]).await;
    if !matches!(&deleted, Ok(e) if e.status == 204) {
        s.block(
            &["P-DELETE-03", "P-DELETE-04", "X-INFO-06"],
            "deleting a test user failed",
        );
        return s.finish();
    }
    let b_name = format!("{p}rule-b");
    check!(s, "P-DELETE-03", log => {
        let filter = encode(&format!("userName eq \"{b_name}\""));
        let by_filter = get_json(cx, &mut log, &format!("/Users?filter={filter}")).await?;
        ensure(by_filter["totalResults"] == json!(0), || "a filter still finds the deleted user".into())?;
        let search = json!({"schemas": [SEARCH], "filter": format!("userName eq \"{b_name}\"")});
        let e = call(cx, &mut log, Method::POST, "/Users/.search", Some(&search), &[]).await?;
        if e.status == 200 {
            ensure(body(&e)?["totalResults"] == json!(0), || ".search still finds the deleted user".into())?;
        }
        let listed = get_json(cx, &mut log, &format!("/Users?filter={}", encode(&format!("userName sw \"{p}rule-\"")))).await?;
        ensure(!user_names(cx, &listed).contains(&"rule-b".to_owned()), || "the list still holds the deleted user".into())
    });
    note!(s, "X-INFO-06", log => {
        let filter = encode(&format!("userName eq \"{b_name}\" and active eq false"));
        let e = call(cx, &mut log, Method::GET, &format!("/Users?filter={filter}"), None, &[]).await?;
        Ok(match e.json().map(|b| b["totalResults"].clone()) {
            Some(n) if n == json!(0) => "hard delete: the resource is gone from every query".to_owned(),
            Some(n) => format!("soft delete: {n} resource(s) still found with active false"),
            None => format!("the filter answered {}", e.status),
        })
    });
    check!(s, "P-DELETE-04", log => {
        let e = post(cx, &mut log, "/Users", &user(cx, "rule-b")).await?;
        resource_made(&e).map(|_| ())
    });
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::is_xsd_datetime;

    #[test]
    fn xsd_datetimes() {
        for ok in [
            "2008-01-23T04:56:22Z",
            "2008-01-23T04:56:22.123Z",
            "2008-01-23T04:56:22+02:00",
            "2008-01-23T04:56:22-05:00",
            "2008-01-23T04:56:22",
        ] {
            assert!(is_xsd_datetime(ok), "{ok}");
        }
        for bad in [
            "2008-01-23 04:56:22",
            "01/23/2008 04:56:22",
            "2008-01-23",
            "2008-01-23T04:56:22+2",
            "",
        ] {
            assert!(!is_xsd_datetime(bad), "{bad}");
        }
    }
}
