//! `/Bulk` (RFC 7644 §3.7): results, bulkId references, errors, limits and versions.

use super::*;

const IDS: &[&str] = &[
    "P-BULK-01",
    "P-BULK-02",
    "P-BULK-03",
    "P-BULK-04",
    "P-BULK-05",
    "P-BULK-06",
    "P-BULK-07",
    "P-BULK-08",
    "P-BULK-09",
    "P-BULK-10",
];
const REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
/// Limits above these are not probed: the request would be too large to send in a check.
const PROBED_OPERATIONS: u64 = 10_000;
const PROBED_PAYLOAD: u64 = 16 << 20;

fn bulk(ops: Value) -> Value {
    json!({"schemas": [REQUEST], "Operations": ops})
}

fn results(b: &Value) -> Vec<Value> {
    b["Operations"].as_array().cloned().unwrap_or_default()
}

/// The HTTP status inside an operation result ("201", or 201 from lenient servers).
fn op_status(r: &Value) -> u16 {
    match &r["status"] {
        Value::String(s) => s.parse().unwrap_or(0),
        v => v.as_u64().and_then(|n| u16::try_from(n).ok()).unwrap_or(0),
    }
}

/// Registers for clean-up what a bulk request created.
fn keep_all(cx: &Cx, b: &Value) {
    for r in results(b) {
        if let (201, Some(loc)) = (op_status(&r), r["location"].as_str()) {
            cx.created(loc.to_owned());
        }
    }
}

async fn send(
    cx: &Cx,
    log: &mut Vec<Exchange>,
    request: &Value,
) -> Result<(Exchange, Value), String> {
    let e = call(cx, log, Method::POST, "/Bulk", Some(request), &[]).await?;
    let b = e.json().unwrap_or(Value::Null);
    keep_all(cx, &b);
    Ok((e, b))
}

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS, &["P-BULK-11"]]);
    if !cx.supports("bulk") {
        check!(s, "P-BULK-11", log => {
            let e = call(cx, &mut log, Method::POST, "/Bulk", Some(&bulk(json!([]))), &[]).await?;
            status(&e, &[501])
        });
        s.skip(
            IDS,
            "ServiceProviderConfig does not advertise bulk.supported",
        );
        return s.finish();
    }
    s.skip(&["P-BULK-11"], "bulk.supported is true");
    let p = cx.prefix.clone();
    let mut log = Vec::new();
    let mixed = bulk(json!([
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user(cx, "bulk-one")},
        {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {"schemas": [GROUP], "displayName": format!("{p}bulk-group"), "members": [{"value": "bulkId:u1", "type": "User"}]}},
        {"method": "POST", "path": "/Users", "bulkId": "bad", "data": {"schemas": [USER], "displayName": "no userName"}}
    ]));
    let (answer, b) = match send(cx, &mut log, &mixed).await {
        Ok(x) => x,
        Err(why) => {
            s.block(IDS, &why);
            return s.finish();
        }
    };
    let ops = results(&b);
    check!(s, "P-BULK-01", log => {
        log.push(answer.clone());
        status(&answer, &[200])?;
        ensure(b["schemas"] == json!([RESPONSE]), || format!("schemas is {}, not [\"{RESPONSE}\"]", b["schemas"]))
    });
    check!(s, "P-BULK-02", log => {
        log.push(answer.clone());
        ensure(ops.len() == 3, || format!("3 operations sent, {} results", ops.len()))?;
        for (r, (id, want)) in ops.iter().zip([("u1", 201), ("g1", 201), ("bad", 400)]) {
            ensure(r["method"].as_str().is_some_and(|m| m.eq_ignore_ascii_case("POST")) && r["bulkId"] == json!(id), || format!("result {r} does not echo method POST and bulkId {id}"))?;
            ensure(op_status(r) == want && r["status"].is_string(), || format!("operation {id} should have status \"{want}\" (a string), got {}", r["status"]))?;
            ensure(want != 201 || r["location"].is_string(), || format!("operation {id} created something but has no location"))?;
        }
        Ok(())
    });
    check!(s, "P-BULK-03", log => {
        log.push(answer.clone());
        let failed = ops.iter().find(|r| r["bulkId"] == json!("bad")).ok_or("no result for the failing operation")?;
        let error = &failed["response"];
        ensure(error["schemas"] == json!([ERROR]) && error["detail"].as_str().is_some_and(|d| !d.is_empty()), || format!("the failed operation's response is {error}, not a SCIM Error with a detail"))
    });
    check!(s, "P-BULK-04", log => {
        log.push(answer.clone());
        let loc = |id: &str| ops.iter().find(|r| r["bulkId"] == json!(id)).and_then(|r| r["location"].as_str()).map(str::to_owned);
        let (Some(user_loc), Some(group_loc)) = (loc("u1"), loc("g1")) else { return Err("the user or the group was not created".into()) };
        let member = get_json(cx, &mut log, &user_loc).await?;
        let group = get_json(cx, &mut log, &group_loc).await?;
        let members: Vec<&Value> = group["members"].as_array().into_iter().flatten().map(|m| &m["value"]).collect();
        ensure(members == [&member["id"]], || format!("bulkId:u1 should resolve to {}, the group holds {:?}", member["id"], members))
    });
    check!(s, "P-BULK-05", log => {
        let cycle = bulk(json!([
            {"method": "POST", "path": "/Groups", "bulkId": "ga", "data": {"schemas": [GROUP], "displayName": format!("{p}bulk-a"), "members": [{"value": "bulkId:gb", "type": "Group"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "gb", "data": {"schemas": [GROUP], "displayName": format!("{p}bulk-b"), "members": [{"value": "bulkId:ga", "type": "Group"}]}}
        ]));
        let (e, b) = send(cx, &mut log, &cycle).await?;
        if e.status == 409 {
            return Ok(());
        }
        status(&e, &[200])?;
        let rs = results(&b);
        ensure(rs.len() == 2, || format!("2 operations sent, {} results", rs.len()))?;
        if rs.iter().all(|r| op_status(r) == 409) {
            return Ok(());
        }
        if let Some(refused) = rs.iter().find(|r| op_status(r) != 201) {
            let answers: Vec<String> = rs.iter().map(|r| format!("{} {} {}", r["bulkId"], r["status"], r["response"]["detail"])).collect();
            return Err(format!("the cycle was neither resolved (every operation 201) nor refused (every operation 409): {}; {} was reported as not created", answers.join(", "), refused["bulkId"]));
        }
        for r in &rs {
            let g = get_json(cx, &mut log, r["location"].as_str().unwrap_or_default()).await?;
            let other = rs.iter().find(|o| o["location"] != r["location"]).and_then(|o| o["location"].as_str()).unwrap_or_default();
            ensure(g["members"].as_array().is_some_and(|m| m.len() == 1 && other.ends_with(m[0]["value"].as_str().unwrap_or("?"))), || format!("the cycle resolved wrongly: {}", g["members"]))?;
        }
        Ok(())
    });
    check!(s, "P-BULK-06", log => {
        let request = bulk(json!([
            {"method": "POST", "path": "/Users", "data": user(cx, "bulk-nobulkid")},
            {"method": "POST", "bulkId": "nopath", "data": user(cx, "bulk-nopath")},
            {"method": "POST", "path": "/Users", "bulkId": "fine", "data": user(cx, "bulk-fine")}
        ]));
        let (e, b) = send(cx, &mut log, &request).await?;
        status(&e, &[200])?;
        let rs = results(&b);
        ensure(rs.len() == 3, || format!("3 operations sent, {} results", rs.len()))?;
        for r in &rs[..2] {
            ensure(op_status(r) == 400 && ["invalidSyntax", "invalidValue"].iter().any(|t| r["response"]["scimType"] == json!(t)), || format!("a malformed operation should fail with 400 invalidSyntax or invalidValue, got {r}"))?;
        }
        ensure(op_status(&rs[2]) == 201, || format!("the well-formed operation should still run, got {}", rs[2]))
    });
    check!(s, "P-BULK-07", log => {
        let mut request = bulk(json!([
            {"method": "POST", "path": "/Users", "bulkId": "broken", "data": {"schemas": [USER]}},
            {"method": "POST", "path": "/Users", "bulkId": "skipped", "data": user(cx, "bulk-skipped")}
        ]));
        request["failOnErrors"] = json!(1);
        let (e, b) = send(cx, &mut log, &request).await?;
        status(&e, &[200])?;
        let rs = results(&b);
        ensure(rs.len() == 1 && op_status(&rs[0]) == 400, || format!("with failOnErrors=1 processing should stop after the first error, got {} results", rs.len()))?;
        let found = get_json(cx, &mut log, &format!("/Users?filter={}", encode(&format!("userName eq \"{p}bulk-skipped\"")))).await?;
        ensure(found["totalResults"] == json!(0), || "the operation after the error was run".into())
    });
    let limit = |key: &str| cx.spc.as_ref().and_then(|c| c["bulk"][key].as_u64());
    match limit("maxOperations").filter(|&m| m < PROBED_OPERATIONS) {
        None => s.skip(
            &["P-BULK-08"],
            "bulk.maxOperations is absent or too large to probe",
        ),
        Some(max) => check!(s, "P-BULK-08", log => {
            let ops: Vec<Value> = (0..=max).map(|i| json!({"method": "DELETE", "path": format!("/Users/{p}missing-{i}")})).collect();
            let e = call(cx, &mut log, Method::POST, "/Bulk", Some(&bulk(json!(ops))), &[]).await?;
            scim_error(&e, 413, None)?;
            ensure(e.response_body.contains(&max.to_string()), || format!("the 413 does not name the limit {max}"))
        }),
    }
    match limit("maxPayloadSize").filter(|&m| m < PROBED_PAYLOAD) {
        None => s.skip(
            &["P-BULK-09"],
            "bulk.maxPayloadSize is absent or too large to probe",
        ),
        Some(max) => check!(s, "P-BULK-09", log => {
            let mut big = user(cx, "bulk-big");
            big["nickName"] = json!("x".repeat(usize::try_from(max).unwrap_or(0) + 1));
            let e = call(cx, &mut log, Method::POST, "/Bulk", Some(&bulk(json!([{"method": "POST", "path": "/Users", "bulkId": "big", "data": big}]))), &[]).await?;
            scim_error(&e, 413, None)?;
            ensure(e.response_body.contains(&max.to_string()), || format!("the 413 does not name the limit {max}"))
        }),
    }
    if cx.supports("etag") {
        check!(s, "P-BULK-10", log => {
            let (target, _) = own_user(cx, &mut log, "bulk-versioned").await?;
            let request = bulk(json!([{"method": "PUT", "path": target, "version": "W/\"scimlab-stale\"", "data": user(cx, "bulk-versioned")}]));
            let (e, b) = send(cx, &mut log, &request).await?;
            status(&e, &[200])?;
            let rs = results(&b);
            ensure(rs.first().is_some_and(|r| op_status(r) == 412), || format!("a stale version should fail the operation with 412, got {:?}", rs.first().map(|r| r["status"].clone())))
        });
    } else {
        s.skip(
            &["P-BULK-10"],
            "ServiceProviderConfig does not advertise etag.supported",
        );
    }
    s.finish()
}
