//! `--profile ipsie`: the OpenID IPSIE AL1 SCIM 2.0 profile (draft-ipsie-scim-al1-profile.md in
//! openid/ipsie-scim-al1 at dabf99d; its predecessor IL1-SCIM.md in openid/ipsie says the same
//! with other headings). Each check's section names the lines it tests.

use super::*;

const IDS: &[&str] = &[
    "I-IPSIE-01",
    "I-IPSIE-02",
    "I-IPSIE-03",
    "I-IPSIE-04",
    "I-IPSIE-05",
    "I-IPSIE-07",
    "I-IPSIE-08",
];

/// Run after every other section: it spends the credential's rate limit.
const LAST: &[&str] = &["I-IPSIE-06"];

/// Requests in flight at once while I-IPSIE-06 looks for the limit.
const BURST_CONCURRENCY: usize = 8;

/// Longest `Retry-After` the check waits out before asking once more.
const LONGEST_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    if !IDS.iter().any(|id| s.wants(id)) {
        return s.finish();
    }
    discovery(cx, &mut s).await;
    users(cx, &mut s).await;
    groups(cx, &mut s).await;
    s.finish()
}

async fn discovery(cx: &Cx, s: &mut Section<'_>) {
    check!(s, "I-IPSIE-07", log => {
        let spc = get_json(cx, &mut log, "/ServiceProviderConfig").await?;
        let types: Vec<String> = spc["authenticationSchemes"].as_array().into_iter().flatten()
            .filter_map(|a| a["type"].as_str().map(str::to_ascii_lowercase)).collect();
        ensure(types.iter().any(|t| t.starts_with("oauth")), || format!("authenticationSchemes lists {types:?}, no OAuth scheme"))
    });
    check!(s, "I-IPSIE-08", log => {
        let types = get_json(cx, &mut log, "/ResourceTypes").await?;
        let names: Vec<&str> = types["Resources"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
        ensure(names.contains(&"User") && names.contains(&"Group"), || format!("/ResourceTypes lists {names:?}, not User and Group"))?;
        let schemas = get_json(cx, &mut log, "/Schemas").await?;
        let ids: Vec<&str> = schemas["Resources"].as_array().into_iter().flatten().filter_map(|t| t["id"].as_str()).collect();
        ensure(ids.contains(&USER) && ids.contains(&GROUP), || format!("/Schemas holds {ids:?}, not the User and Group schemas"))?;
        let user = schemas["Resources"].as_array().into_iter().flatten().find(|t| t["id"] == USER);
        let has_emails = user.is_some_and(|u| u["attributes"].as_array().into_iter().flatten().any(|a| a["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case("emails"))));
        ensure(has_emails, || "the User schema has no emails attribute (the profile requires the user's primary email)".into())
    });
}

async fn users(cx: &Cx, s: &mut Section<'_>) {
    check!(s, "I-IPSIE-01", log => {
        let (_, made) = own_user(cx, &mut log, "ip-look").await?;
        let id = made["id"].clone();
        let name = format!("{}ip-look", cx.prefix);
        for filter in [
            format!("username eq \"{name}\""),
            format!("externalId eq \"{name}\""),
            format!("emails[value eq \"{name}@example.com\"]"),
        ] {
            let found = get_json(cx, &mut log, &format!("/Users?filter={}", encode(&filter))).await?;
            let hits: Vec<Value> = resources(&found).iter().map(|r| r["id"].clone()).collect();
            ensure(hits == [id.clone()], || format!("filter {filter} found {hits:?}, expected only {id}"))?;
        }
        Ok(())
    });
    check!(s, "I-IPSIE-02", log => {
        let (path, _) = own_user(cx, &mut log, "ip-again").await?;
        let e = call(cx, &mut log, Method::DELETE, &path, None, &[]).await?;
        ensure((200..300).contains(&e.status), || unprepared(format!("DELETE {path} answered {}", e.status)))?;
        let e = post(cx, &mut log, "/Users", &user(cx, "ip-again")).await?;
        resource_made(&e).map(|_| ()).map_err(|why| format!("the same userName could not be created again after the delete: {why}"))
    });
    check!(s, "I-IPSIE-05", log => {
        for endpoint in ["/Users", "/Groups"] {
            let by_index = get_json(cx, &mut log, &format!("{endpoint}?startIndex=1&count=1")).await?;
            if resources(&by_index).len() <= 1 && by_index["startIndex"] == json!(1) {
                continue;
            }
            // Either method will do: a cursor then.
            let by_cursor = get_json(cx, &mut log, &format!("{endpoint}?cursor=&count=1")).await;
            let more = |b: &Value| b["totalResults"].as_u64().unwrap_or(0) > 1;
            let cursor_pages = by_cursor.as_ref().is_ok_and(|b| resources(b).len() <= 1 && b.get("nextCursor").is_some() == more(b));
            ensure(cursor_pages, || format!("{endpoint} pages neither by index (count=1 gave {} resources, startIndex {}) nor by cursor", resources(&by_index).len(), by_index["startIndex"]))?;
        }
        Ok(())
    });
}

async fn groups(cx: &Cx, s: &mut Section<'_>) {
    if !has_groups(cx).await {
        s.skip(
            &["I-IPSIE-03", "I-IPSIE-04"],
            "the server has no /Groups endpoint",
        );
        return;
    }
    check!(s, "I-IPSIE-03", log => {
        let (one, _) = own_user(cx, &mut log, "ip-one").await?;
        let (two, _) = own_user(cx, &mut log, "ip-two").await?;
        let (one, two) = (one.trim_start_matches("/Users/").to_owned(), two.trim_start_matches("/Users/").to_owned());
        let e = post(cx, &mut log, "/Groups", &json!({"schemas": [GROUP], "displayName": format!("{}ip-role", cx.prefix)})).await?;
        let g = resource_made(&e).map_err(unprepared)?;
        let path = format!("/Groups/{}", g["id"].as_str().unwrap_or_default());
        let now = patched(cx, &mut log, &path, json!([{"op": "add", "path": "members", "value": [{"value": one}, {"value": two}]}])).await?;
        let mut both = vec![one.clone(), two.clone()];
        both.sort();
        ensure(member_ids(&now) == both, || format!("add with path members gave {}", now["members"]))?;
        let now = patched(cx, &mut log, &path, json!([{"op": "remove", "path": format!("members[value eq \"{one}\"]")}])).await?;
        ensure(member_ids(&now) == [two.clone()], || format!("remove of members[value eq \"{one}\"] gave {}", now["members"]))?;
        let now = patched(cx, &mut log, &path, json!([{"op": "remove", "path": "members"}])).await?;
        ensure(member_ids(&now).is_empty(), || format!("remove of members (all) left {}", now["members"]))
    });
    check!(s, "I-IPSIE-04", log => {
        let (member, _) = own_user(cx, &mut log, "ip-member").await?;
        let member = member.trim_start_matches("/Users/").to_owned();
        let name = format!("{}ip-quiet", cx.prefix);
        let e = post(cx, &mut log, "/Groups", &json!({"schemas": [GROUP], "displayName": name, "members": [{"value": member}]})).await?;
        let g = resource_made(&e).map_err(unprepared)?;
        let by_id = get_json(cx, &mut log, &format!("/Groups/{}?excludedAttributes=members", g["id"].as_str().unwrap_or_default())).await?;
        ensure(by_id.get("members").is_none() && by_id["id"] == g["id"], || format!("GET by id with excludedAttributes=members answered {by_id}"))?;
        let filter = encode(&format!("displayName eq \"{name}\""));
        let found = get_json(cx, &mut log, &format!("/Groups?filter={filter}&excludedAttributes=members")).await?;
        let hits = resources(&found);
        ensure(hits.len() == 1 && hits[0]["id"] == g["id"] && hits[0].get("members").is_none(), || format!("the filtered list with excludedAttributes=members answered {found}"))
    });
}

/// I-IPSIE-06, after every other section.
pub async fn last(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[LAST]);
    if !s.wants("I-IPSIE-06") {
        return s.finish();
    }
    let burst = cx.options.rate_limit_burst;
    if burst == 0 {
        s.skip(LAST, "not asked for (--rate-limit-burst 0)");
        return s.finish();
    }
    check!(s, "I-IPSIE-06", log => {
        let eager = cx.target.without_retries();
        let started = std::time::Instant::now();
        let mut sent = 0;
        let mut limited = None;
        while sent < burst && limited.is_none() {
            let wave = BURST_CONCURRENCY.min(burst - sent);
            let answers = futures::future::join_all((0..wave).map(|_| eager.get("/Users?count=1"))).await;
            sent += wave;
            for a in answers {
                let e = a?;
                if e.status == 429 {
                    limited.get_or_insert(e);
                } else if e.status != 200 {
                    log.push(e.clone());
                    return Err(format!("GET /Users?count=1 answered {} during the burst", e.status));
                }
            }
        }
        let Some(e) = limited else {
            let secs = started.elapsed().as_secs_f64();
            return Err(format!(
                "{sent} requests, {BURST_CONCURRENCY} at a time, met no 429 in {secs:.1} s ({:.0}/s): no limit at or below that rate and a burst of {burst} (--rate-limit-burst)",
                sent as f64 / secs.max(0.001)
            ));
        };
        log.push(e.clone());
        let wait = e.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
        let Some(wait) = wait else {
            return Err(format!("the 429 has no Retry-After in seconds (got {:?})", e.header("retry-after")));
        };
        let pause = std::time::Duration::from_secs(wait);
        if pause > LONGEST_WAIT {
            return Ok(()); // too long to wait out in a run; the header is there
        }
        tokio::time::sleep(pause).await;
        let after = eager.get("/Users?count=1").await?;
        log.push(after.clone());
        ensure(after.status == 200, || format!("after waiting the {wait} s Retry-After asked, GET /Users answered {}", after.status))
    });
    s.finish()
}
