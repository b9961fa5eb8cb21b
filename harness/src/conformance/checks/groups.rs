//! Groups and membership as the RFC and the IdPs use them, and queries across resource types.

use super::*;

const IDS: &[&str] = &[
    "P-GROUP-01",
    "P-GROUP-02",
    "P-SCHEMA-15",
    "P-USER-03",
    "I-OKTA-07",
    "P-PATCH-18",
    "I-ENTRA-04",
    "I-ENTRA-06",
    "I-ENTRA-08",
    "X-INFO-03",
    "X-INFO-05",
    "P-LIST-07",
    "P-SEARCH-03",
];

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    if !has_groups(cx).await {
        s.skip(IDS, "the server has no /Groups endpoint");
        return s.finish();
    }
    let p = cx.prefix.clone();
    let users = match population(cx, &["g-one", "g-two"], |i, u| {
        if i == 0 {
            u["displayName"] = json!(format!("{p}g-root"));
        }
    })
    .await
    {
        Ok(users) => users,
        Err(why) => {
            s.block(IDS, &why);
            return s.finish();
        }
    };
    let (one_path, one) = users[0].clone();
    let one_id = one["id"].as_str().unwrap_or_default().to_owned();
    let two_id = users[1].1["id"].as_str().unwrap_or_default().to_owned();
    let group_body = |name: &str, members: &[&str]| {
        json!({"schemas": [GROUP], "displayName": format!("{p}{name}"),
               "members": members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>()})
    };
    check!(s, "P-GROUP-01", log => {
        let e = post(cx, &mut log, "/Groups", &json!({"schemas": [GROUP], "members": []})).await?;
        status(&e, &[400])
    });
    let mut log = Vec::new();
    let created = post(cx, &mut log, "/Groups", &group_body("g-root", &[&one_id])).await;
    let group = match created.and_then(|e| resource_made(&e)) {
        Ok(group) => group,
        Err(why) => {
            s.block(&IDS[1..], &format!("a group: {why}"));
            return s.finish();
        }
    };
    let path = format!("/Groups/{}", group["id"].as_str().unwrap_or_default());

    let answered = group.clone();
    check!(s, "P-GROUP-02", log => {
        let got = get_json(cx, &mut log, &path).await?;
        for g in [&answered, &got] {
            ensure(member_ids(g) == [one_id.clone()], || format!("members should be [{one_id}], got {}", g["members"]))?;
            for m in g["members"].as_array().into_iter().flatten() {
                ensure(m.get("type").is_none_or(|t| t == "User" || t == "Group"), || format!("member type {} is neither User nor Group", m["type"]))?;
            }
        }
        Ok(())
    });
    check!(s, "P-SCHEMA-15", log => {
        let got = get_json(cx, &mut log, &path).await?;
        let refs: Vec<&str> = got["members"].as_array().into_iter().flatten().filter_map(|m| m["$ref"].as_str()).collect();
        if refs.is_empty() {
            return Err(unsupported("members carry no $ref"));
        }
        // RFC 7643 §2.3.7: absolute, or relative to the base URL ("Users/{id}").
        let points_at_member = |r: &str| r.ends_with(&format!("/Users/{one_id}")) || r == format!("Users/{one_id}");
        ensure(refs.iter().all(|r| points_at_member(r)), || format!("members[].$ref should be the member's URI, got {refs:?}"))
    });
    check!(s, "I-OKTA-07", log => {
        let now = patched(cx, &mut log, &path, json!([{"op": "add", "path": "members", "value": [{"value": two_id}]}])).await?;
        ensure(member_ids(&now) == sorted(&[&one_id, &two_id]), || format!("after adding a member: {}", now["members"]))?;
        let now = patched(cx, &mut log, &path, json!([{"op": "replace", "path": "displayName", "value": format!("{p}g-renamed")}])).await?;
        ensure(now["displayName"] == json!(format!("{p}g-renamed")), || format!("the rename left {}", now["displayName"]))?;
        let now = patched(cx, &mut log, &path, json!([{"op": "remove", "path": format!("members[value eq \"{two_id}\"]")}])).await?;
        ensure(member_ids(&now) == [one_id.clone()], || format!("after removing a member: {}", now["members"]))
    });
    check!(s, "P-PATCH-18", log => {
        patched(cx, &mut log, &path, json!([{"op": "add", "path": "members", "value": [{"value": two_id}]}])).await?;
        let now = patched(cx, &mut log, &path, json!([{"op": "remove", "path": format!("members[value eq \"{one_id}\"]")}])).await?;
        ensure(member_ids(&now) == [two_id.clone()], || format!("removing one member by value path left {}", now["members"]))
    });
    check!(s, "I-ENTRA-04", log => {
        patched(cx, &mut log, &path, json!([{"op": "add", "path": "members", "value": [{"value": one_id}]}])).await?;
        let now = patched(cx, &mut log, &path, json!([{"op": "Remove", "path": "members", "value": [{"value": two_id}]}])).await?;
        ensure(member_ids(&now) == [one_id.clone()], || format!("the legacy removal left {}", now["members"]))
    });
    check!(s, "I-ENTRA-06", log => {
        let got = get_json(cx, &mut log, &format!("{path}?excludedAttributes=members")).await?;
        ensure(got.get("members").is_none() && got["displayName"].is_string(), || format!("excludedAttributes=members returned {got}"))?;
        let filter = encode(&format!("displayName eq {}", got["displayName"]));
        let list = get_json(cx, &mut log, &format!("/Groups?filter={filter}&excludedAttributes=members")).await?;
        ensure(list["totalResults"] == json!(1) && resources(&list).iter().all(|g| g.get("members").is_none()), || format!("the filtered list is {list}"))
    });
    let in_groups = |u: &Value| {
        u["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|g| g["value"] == group["id"])
    };
    check!(s, "P-USER-03", log => {
        patched(cx, &mut log, &path, json!([{"op": "add", "path": "members", "value": [{"value": one_id}]}])).await?;
        ensure(in_groups(&get_json(cx, &mut log, &one_path).await?), || "User.groups of a member does not list the group".into())?;
        patched(cx, &mut log, &path, json!([{"op": "remove", "path": format!("members[value eq \"{one_id}\"]")}])).await?;
        let after = get_json(cx, &mut log, &one_path).await?;
        ensure(!in_groups(&after), || format!("User.groups still lists the group after the member was removed: {}", after["groups"]))?;
        patched(cx, &mut log, &path, json!([{"op": "add", "path": "members", "value": [{"value": one_id}]}])).await.map(|_| ())
    });
    check!(s, "I-ENTRA-08", log => {
        let taken = get_json(cx, &mut log, &path).await?["displayName"].clone();
        let e = post(cx, &mut log, "/Groups", &json!({"schemas": [GROUP], "displayName": taken})).await?;
        scim_error(&e, 409, None)
    });
    note!(s, "X-INFO-03", log => {
        let ghost = format!("{p}no-such-user");
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([{"op": "add", "path": "members", "value": [{"value": ghost}]}]))), &[]).await?;
        Ok(match e.status {
            200 | 204 => "a member id that does not exist is accepted".to_owned(),
            code => format!("a member id that does not exist is refused with {code} {}", e.json().map(|b| b["scimType"].clone()).unwrap_or_default()),
        })
    });
    note!(s, "X-INFO-05", log => {
        let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(json!([{"op": "remove", "path": "members"}]))), &[]).await?;
        status(&e, &[200, 204])?;
        let got = get_json(cx, &mut log, &path).await?;
        Ok(match got.get("members") {
            None | Some(Value::Null) => "members is omitted".to_owned(),
            Some(v) => format!("members is {v}"),
        })
    });
    let root_filter = format!("displayName eq \"{p}g-root\"");
    let spans = |b: &Value| -> Result<(), String> {
        let mut kinds: Vec<String> = resources(b)
            .iter()
            .filter_map(|r| r["meta"]["resourceType"].as_str().map(str::to_owned))
            .collect();
        kinds.sort();
        ensure(kinds == ["Group", "User"], || {
            format!("expected one User and one Group named g-root, got {kinds:?}")
        })
    };
    patched(
        cx,
        &mut Vec::new(),
        &path,
        json!([{"op": "replace", "path": "displayName", "value": format!("{p}g-root")}]),
    )
    .await
    .ok();
    check!(s, "P-LIST-07", log => {
        let e = call(cx, &mut log, Method::GET, &format!("/?filter={}", encode(&root_filter)), None, &[]).await?;
        if matches!(e.status, 404 | 405 | 501) {
            return Err(unsupported(format!("a query at the root answered {}", e.status)));
        }
        status(&e, &[200])?;
        spans(&body(&e)?)
    });
    check!(s, "P-SEARCH-03", log => {
        let e = call(cx, &mut log, Method::POST, "/.search", Some(&json!({"schemas": [SEARCH], "filter": root_filter})), &[]).await?;
        if matches!(e.status, 404 | 405 | 501) {
            return Err(unsupported(format!(".search at the root answered {}", e.status)));
        }
        status(&e, &[200])?;
        spans(&body(&e)?)
    });
    s.finish()
}
