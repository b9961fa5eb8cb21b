//! Discovery (RFC 7644 §4, RFC 7643 §5-§7), transport, media types, auth, versions.
use super::*;

#[tokio::test]
async fn p_disc_01_02_service_provider_config_is_complete_and_typed() {
    let s = Server::start().await;
    let r = s.get("/ServiceProviderConfig").await;
    assert_eq!(r.status, 200);
    let c = &r.body;
    assert_eq!(
        c["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    for flag in ["patch", "changePassword", "sort", "etag", "filter", "bulk"] {
        assert!(c[flag]["supported"].is_boolean(), "{flag}");
    }
    assert!(c["bulk"]["maxOperations"].is_u64() && c["bulk"]["maxPayloadSize"].is_u64());
    assert!(c["filter"]["maxResults"].is_u64());
    assert_eq!(c["authenticationSchemes"][0]["type"], "oauthbearertoken");
}

#[tokio::test]
async fn p_disc_04_05_06_10_resource_types_list_and_single() {
    let s = Server::start().await;
    let r = s.get("/ResourceTypes").await;
    assert_eq!(r.body["totalResults"], 2);
    let schemas = s.get("/Schemas").await;
    let schema_ids: Vec<&str> = schemas.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    for rt in r.body["Resources"].as_array().unwrap() {
        assert!(rt["name"].is_string() && rt["endpoint"].is_string());
        assert!(schema_ids.contains(&rt["schema"].as_str().unwrap()));
        for ext in rt["schemaExtensions"].as_array().into_iter().flatten() {
            assert!(ext["required"].is_boolean());
            assert!(schema_ids.contains(&ext["schema"].as_str().unwrap()));
        }
    }
    let user = s.get("/ResourceTypes/User").await;
    assert_eq!(user.body["endpoint"], "/Users");
    assert!(
        user.body.get("Resources").is_none(),
        "a single object, not a ListResponse"
    );
    s.get("/ResourceTypes/Nope").await.assert_error(404, None);
}

#[tokio::test]
async fn p_disc_07_08_09_i_entra_10_schemas_are_complete_with_legal_characteristics() {
    let s = Server::start().await;
    let r = s.get("/Schemas").await;
    assert_eq!(r.body["totalResults"], 3);
    let text = r.body.to_string();
    assert!(
        !text.contains("null"),
        "no null values in /Schemas (I-ENTRA-10)"
    );
    fn check(a: &Value) {
        for k in [
            "name",
            "type",
            "multiValued",
            "required",
            "caseExact",
            "mutability",
            "returned",
            "uniqueness",
        ] {
            assert!(a.get(k).is_some(), "{k} missing in {a}");
        }
        assert!([
            "string",
            "boolean",
            "decimal",
            "integer",
            "dateTime",
            "binary",
            "reference",
            "complex"
        ]
        .contains(&a["type"].as_str().unwrap()));
        assert!(["readOnly", "readWrite", "immutable", "writeOnly"]
            .contains(&a["mutability"].as_str().unwrap()));
        assert!(
            ["always", "never", "default", "request"].contains(&a["returned"].as_str().unwrap())
        );
        assert!(["none", "server", "global"].contains(&a["uniqueness"].as_str().unwrap()));
        for sub in a["subAttributes"].as_array().into_iter().flatten() {
            check(sub);
        }
    }
    for schema in r.body["Resources"].as_array().unwrap() {
        assert!(schema["id"].as_str().unwrap().starts_with("urn:"));
        schema["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .for_each(check);
    }
    let one = s.get(&format!("/Schemas/{USER}")).await;
    assert_eq!(one.body["id"], USER);
    assert_eq!(one.body["attributes"].as_array().unwrap().len(), 21);
}

#[tokio::test]
async fn p_disc_11_12_13_discovery_ignores_paging_refuses_filters_and_writes() {
    let s = Server::start().await;
    let r = s.get("/Schemas?count=1&startIndex=2&sortBy=name").await;
    assert_eq!(r.body["Resources"].as_array().unwrap().len(), 3);
    s.get("/ResourceTypes?filter=name%20eq%20%22User%22")
        .await
        .assert_error(403, None);
    for path in ["/ServiceProviderConfig", "/Schemas", "/ResourceTypes"] {
        s.post(path, json!({})).await.assert_error(405, None);
        s.delete(path).await.assert_error(405, None);
    }
}

#[tokio::test]
async fn p_media_01_to_04_json_in_and_scim_json_out() {
    let s = Server::start().await;
    for accept in ["application/scim+json", "application/json", "*/*"] {
        let r = s
            .send(Method::GET, "/Users", None, &[("accept", accept)])
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/scim+json"));
    }
    let r = s
        .send(
            Method::POST,
            "/Users",
            Some(user_body("json-typed")),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(r.status, 201);
    s.send(Method::GET, "/Users", None, &[("accept", "text/html")])
        .await
        .assert_error(406, None);
    s.send(
        Method::POST,
        "/Users",
        Some(user_body("x")),
        &[("content-type", "text/plain")],
    )
    .await
    .assert_error(415, None);
}

#[tokio::test]
async fn p_media_06_unknown_query_parameters_are_ignored() {
    let s = Server::start().await;
    assert_eq!(s.get("/Users?frobnicate=1").await.status, 200);
}

#[tokio::test]
async fn p_auth_01_02_03_missing_or_wrong_token_gets_401_with_challenge() {
    let s = Server::start().await;
    let client = scim::tls::ClientTls::default().client().unwrap();
    for auth in [None, Some("Bearer wrong"), Some("Basic dTpw")] {
        let mut req = client.get(format!("{}/Users", s.base));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert!(resp
            .headers()
            .get("www-authenticate")
            .is_some_and(|v| v.to_str().unwrap().starts_with("Bearer")));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "401");
        assert_eq!(body["schemas"], json!([ERROR]));
    }
    let open = client
        .get(format!("{}/ServiceProviderConfig", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        open.status(),
        200,
        "discovery stays readable without a token"
    );
}

#[tokio::test]
async fn p_vers_01_v2_prefix_works_and_other_versions_are_refused() {
    let s = Server::start().await;
    let created = s.post("/v2/Users", user_body("versioned")).await;
    assert_eq!(created.status, 201);
    assert_eq!(
        s.get(&format!("/v2/Users/{}", created.id())).await.status,
        200
    );
    s.get("/v9/Users")
        .await
        .assert_error(400, Some("invalidVers"));
    s.get("/v1/Users/abc")
        .await
        .assert_error(400, Some("invalidVers"));
}

#[tokio::test]
async fn p_me_02_me_is_not_implemented() {
    let s = Server::start().await;
    s.get("/Me").await.assert_error(501, None);
}
