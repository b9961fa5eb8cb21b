//! Create, read, replace, delete (RFC 7644 §3.3-§3.6) and attribute characteristics (RFC 7643).
use super::*;

#[tokio::test]
async fn p_create_01_02_03_05_06_created_resource_is_complete() {
    let s = Server::start().await;
    let mut body = user_body("alice");
    body["id"] = json!("client-chosen");
    body["meta"] = json!({"created": "1999-01-01T00:00:00Z"});
    let r = s.post("/Users", body).await;
    assert_eq!(r.status, 201);
    let id = r.id();
    assert!(!id.is_empty() && id != "client-chosen" && id != "bulkId");
    assert_eq!(r.header("location"), r.body["meta"]["location"].as_str());
    assert_eq!(r.body["meta"]["location"], format!("{}/Users/{id}", s.base));
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert_eq!(
        r.body["meta"]["created"], r.body["meta"]["lastModified"],
        "P-SCHEMA-04"
    );
    assert_ne!(r.body["meta"]["created"], "1999-01-01T00:00:00Z");
    assert_eq!(r.body["schemas"], json!([USER]));
}

#[tokio::test]
async fn p_create_04_p_user_02_i_okta_02_03_user_name_is_unique_case_insensitively() {
    let s = Server::start().await;
    s.user("Bob").await;
    s.post("/Users", user_body("bob"))
        .await
        .assert_error(409, Some("uniqueness"));
    s.post("/Users", user_body("BOB"))
        .await
        .assert_error(409, Some("uniqueness"));
    assert_eq!(s.users_matching(r#"userName eq "bOB""#).await, vec!["Bob"]);
}

#[tokio::test]
async fn p_create_07_08_p_user_01_bad_creates_leave_nothing_behind() {
    let s = Server::start().await;
    s.post("/Users", json!({"schemas": [USER]}))
        .await
        .assert_error(400, Some("invalidValue"));
    let mut body = user_body("typed");
    body["active"] = json!("yes");
    s.post("/Users", body)
        .await
        .assert_error(400, Some("invalidValue"));
    assert_eq!(s.get("/Users").await.body["totalResults"], 0);
}

#[tokio::test]
async fn p_schema_12_i_okta_06_password_is_accepted_and_never_returned() {
    let s = Server::start().await;
    let mut body = user_body("pw");
    body["password"] = json!("t0p-secret");
    let r = s.post("/Users", body).await;
    assert_eq!(r.status, 201);
    assert!(r.body.get("password").is_none());
    let id = r.id();
    for path in [
        format!("/Users/{id}"),
        format!("/Users/{id}?attributes=password"),
        "/Users?filter=userName%20eq%20%22pw%22".to_string(),
    ] {
        let text = s.get(&path).await.body.to_string();
        assert!(
            !text.contains("t0p-secret") && !text.contains("\"password\""),
            "{path}: {text}"
        );
    }
}

#[tokio::test]
async fn p_read_01_02_get_by_id_and_unknown_id() {
    let s = Server::start().await;
    let id = s.user("carol").await["id"].as_str().unwrap().to_owned();
    let r = s.get(&format!("/Users/{id}")).await;
    assert_eq!((r.status, r.id()), (200, id));
    s.get("/Users/00000000-0000-0000-0000-000000000000")
        .await
        .assert_error(404, None);
}

#[tokio::test]
async fn p_put_01_02_04_08_replace_swaps_values_and_keeps_read_only_ones() {
    let s = Server::start().await;
    let created = s.user("dave").await;
    let id = created["id"].as_str().unwrap();
    let mut body = user_body("dave");
    body["title"] = json!("CTO");
    body["id"] = json!("other");
    body["meta"] = json!({"created": "1999-01-01T00:00:00Z"});
    body.as_object_mut().unwrap().remove("emails");
    let r = s.put(&format!("/Users/{id}"), body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["title"], "CTO");
    assert!(
        r.body.get("emails").is_none(),
        "PUT replaces: omitted attributes are cleared"
    );
    assert_eq!(r.body["id"], *id);
    assert_eq!(r.body["meta"]["created"], created["meta"]["created"]);
    assert!(
        r.body["meta"]["lastModified"].as_str() > created["meta"]["lastModified"].as_str(),
        "P-SCHEMA-04, P-PUT-08"
    );
    assert_ne!(r.body["meta"]["version"], created["meta"]["version"]);
    assert_eq!(s.get(&format!("/Users/{id}")).await.body["title"], "CTO");
}

#[tokio::test]
async fn p_put_05_06_07_replace_refusals() {
    let s = Server::start().await;
    let id = s.user("erin").await["id"].as_str().unwrap().to_owned();
    s.user("frank").await;
    s.put(
        &format!("/Users/{id}"),
        json!({"schemas": [USER], "title": "x"}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    s.put("/Users/does-not-exist", user_body("ghost"))
        .await
        .assert_error(404, None);
    s.put(&format!("/Users/{id}"), user_body("FRANK"))
        .await
        .assert_error(409, Some("uniqueness"));
    assert_eq!(
        s.get("/Users").await.body["totalResults"],
        2,
        "PUT never creates"
    );
}

#[tokio::test]
async fn an_unchanged_put_keeps_last_modified_and_version() {
    let s = Server::start().await;
    let created = s.user("steady").await;
    let r = s
        .put(
            &format!("/Users/{}", created["id"].as_str().unwrap()),
            user_body("steady"),
        )
        .await;
    assert_eq!(
        r.body["meta"]["lastModified"],
        created["meta"]["lastModified"]
    );
    assert_eq!(r.body["meta"]["version"], created["meta"]["version"]);
}

#[tokio::test]
async fn p_delete_01_to_05_deleted_means_gone_everywhere() {
    let s = Server::start().await;
    let id = s.user("gina").await["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    let r = s.delete(&path).await;
    assert_eq!((r.status, &r.body), (204, &Value::Null));
    s.get(&path).await.assert_error(404, None);
    s.put(&path, user_body("gina"))
        .await
        .assert_error(404, None);
    s.patch(&path, json!([{"op": "add", "path": "title", "value": "x"}]))
        .await
        .assert_error(404, None);
    s.delete(&path).await.assert_error(404, None);
    assert!(s.users_matching(r#"userName eq "gina""#).await.is_empty());
    let search = s.post("/Users/.search", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq \"gina\""})).await;
    assert_eq!(search.body["totalResults"], 0);
    assert_eq!(
        s.post("/Users", user_body("gina")).await.status,
        201,
        "P-DELETE-04: the name is free again"
    );
}

#[tokio::test]
async fn p_schema_07_08_names_are_case_insensitive_and_null_unassigns() {
    let s = Server::start().await;
    let r = s.post("/Users", json!({"SCHEMAS": [USER], "USERNAME": "hal", "NickName": "h", "title": null, "emails": []})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        (r.body["userName"].as_str(), r.body["nickName"].as_str()),
        (Some("hal"), Some("h"))
    );
    assert!(r.body.get("title").is_none() && r.body.get("emails").is_none());
}

#[tokio::test]
async fn p_ent_01_02_03_enterprise_extension_round_trips() {
    let s = Server::start().await;
    let boss = s.user("boss").await;
    let boss_id = boss["id"].as_str().unwrap();
    let mut body = user_body("ivy");
    body["schemas"] = json!([USER, ENT]);
    body[ENT] = json!({"employeeNumber": "701", "department": "R&D", "manager": {"value": boss_id, "displayName": "ignored"}});
    let r = s.post("/Users", body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["schemas"], json!([USER, ENT]));
    assert_eq!(
        r.body[ENT]["manager"]["displayName"], "boss",
        "readOnly, filled by the server"
    );
    assert_eq!(
        r.body[ENT]["manager"]["$ref"],
        format!("{}/Users/{boss_id}", s.base)
    );
    let filter = format!("{ENT}:employeeNumber eq \"701\"");
    assert_eq!(s.users_matching(&filter).await, vec!["ivy"]);
    let projected = s
        .get(&format!("/Users/{}?attributes={ENT}:department", r.id()))
        .await;
    assert_eq!(projected.body[ENT], json!({"department": "R&D"}));
}

#[tokio::test]
async fn p_schema_09_two_primary_values_are_refused() {
    let s = Server::start().await;
    let mut body = user_body("jo");
    body["emails"] = json!([{"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]);
    s.post("/Users", body)
        .await
        .assert_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn i_entra_07_inactive_users_are_still_returned() {
    let s = Server::start().await;
    let mut body = user_body("kim");
    body["active"] = json!(false);
    let id = s.post("/Users", body).await.id();
    assert_eq!(s.get(&format!("/Users/{id}")).await.body["active"], false);
    assert_eq!(s.users_matching("active eq false").await, vec!["kim"]);
}

#[tokio::test]
async fn data_survives_a_restart() {
    let s = Server::start().await;
    let alice = s.user("persistent").await;
    let group = s.group("keepers", &[alice["id"].as_str().unwrap()]).await;
    let dir = s.shutdown().await;
    let s = Server::start_in(dir, ProviderConfig::default()).await;
    let again = s
        .get(&format!("/Users/{}", alice["id"].as_str().unwrap()))
        .await;
    assert_eq!(again.body["userName"], "persistent");
    assert_eq!(again.body["groups"][0]["value"], group["id"]);
    assert_eq!(
        s.users_matching(r#"userName eq "PERSISTENT""#).await,
        vec!["persistent"],
        "indexes survive too"
    );
    s.post("/Users", user_body("persistent"))
        .await
        .assert_error(409, Some("uniqueness"));
}
