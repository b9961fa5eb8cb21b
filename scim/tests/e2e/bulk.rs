//! Bulk (RFC 7644 §3.7).
use super::*;

const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

fn bulk(ops: Value) -> Value {
    json!({"schemas": [BULK], "Operations": ops})
}

#[tokio::test]
async fn p_bulk_01_02_04_bulk_ids_resolve_across_operations() {
    let s = Server::start().await;
    let r = s.post("/Bulk", bulk(json!([
        {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"schemas": [GROUP], "displayName": "bulk-team", "members": [{"value": "bulkId:u", "type": "User"}]}},
        {"method": "POST", "path": "/Users", "bulkId": "u", "data": user_body("bulk-user")},
        {"method": "PATCH", "path": "/Users/bulkId:u", "data": {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "title", "value": "T"}]}}
    ]))).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:BulkResponse"])
    );
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(
        ops.iter()
            .map(|o| o["status"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["201", "201", "200"]
    );
    assert_eq!(ops[0]["bulkId"], "g");
    let user_id = ops[1]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let group = s
        .get(&ops[0]["location"].as_str().unwrap().replace(&s.base, ""))
        .await;
    assert_eq!(group.body["members"][0]["value"], *user_id);
    assert_eq!(s.get(&format!("/Users/{user_id}")).await.body["title"], "T");
}

#[tokio::test]
async fn p_bulk_03_05_06_failures_are_per_operation() {
    let s = Server::start().await;
    let r = s.post("/Bulk", bulk(json!([
        {"method": "POST", "path": "/Users", "data": user_body("no-bulk-id")},
        {"method": "POST", "path": "/Users", "bulkId": "x", "data": {"schemas": [USER]}},
        {"method": "POST", "path": "/Groups", "bulkId": "a", "data": {"schemas": [GROUP], "displayName": "A", "members": [{"value": "bulkId:b"}]}},
        {"method": "POST", "path": "/Groups", "bulkId": "b", "data": {"schemas": [GROUP], "displayName": "B", "members": [{"value": "bulkId:a"}]}},
        {"method": "DELETE", "path": "/Users/unknown"},
        {"method": "POST", "path": "/Users", "bulkId": "ok", "data": user_body("fine")}
    ]))).await;
    let ops = r.body["Operations"].as_array().unwrap();
    let statuses: Vec<&str> = ops.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["400", "400", "409", "409", "404", "201"]);
    assert_eq!(ops[0]["response"]["scimType"], "invalidSyntax");
    assert!(ops[2]["response"]["detail"]
        .as_str()
        .unwrap()
        .contains("circular"));
    assert_eq!(ops[1]["response"]["schemas"], json!([ERROR]));
}

#[tokio::test]
async fn p_bulk_07_fail_on_errors_stops_processing() {
    let s = Server::start().await;
    let mut req = bulk(json!([
        {"method": "DELETE", "path": "/Users/a"},
        {"method": "DELETE", "path": "/Users/b"},
        {"method": "POST", "path": "/Users", "bulkId": "late", "data": user_body("late")}
    ]));
    req["failOnErrors"] = json!(2);
    let r = s.post("/Bulk", req).await;
    assert_eq!(r.body["Operations"].as_array().unwrap().len(), 2);
    assert_eq!(s.get("/Users").await.body["totalResults"], 0);
}

#[tokio::test]
async fn p_bulk_08_09_limits_give_413() {
    let s = Server::start_with(ProviderConfig {
        bulk_max_operations: 2,
        bulk_max_payload_bytes: 4096,
        ..Default::default()
    })
    .await;
    let op = json!({"method": "DELETE", "path": "/Users/x"});
    let r = s.post("/Bulk", bulk(json!([op, op, op]))).await;
    r.assert_error(413, None);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("maxOperations is 2"));
    let big = json!({"method": "POST", "path": "/Users", "bulkId": "b", "data": {"schemas": [USER], "userName": "x".repeat(5000)}});
    s.post("/Bulk", bulk(json!([big])))
        .await
        .assert_error(413, None);
}

#[tokio::test]
async fn p_bulk_10_stale_version_fails_with_412() {
    let s = Server::start().await;
    let id = s.user("versioned").await["id"].as_str().unwrap().to_owned();
    let r = s.post("/Bulk", bulk(json!([{"method": "PUT", "path": format!("/Users/{id}"), "version": "W/\"stale\"", "data": user_body("versioned")}]))).await;
    assert_eq!(r.body["Operations"][0]["status"], "412");
}
