//! Errors (RFC 7644 §3.12): every failure has the Error schema, a string status, a detail.
use super::*;

#[tokio::test]
async fn p_err_01_02_05_unknown_paths_and_methods_get_scim_errors() {
    let s = Server::start().await;
    s.get("/Nope").await.assert_error(404, None);
    s.get("/Users/a/b/c").await.assert_error(404, None);
    s.send(Method::PATCH, "/Users", Some(json!({})), &[])
        .await
        .assert_error(405, None);
    s.post("/Users/some-id", json!({}))
        .await
        .assert_error(405, None);
}

#[tokio::test]
async fn p_media_05_malformed_json_is_invalid_syntax() {
    let s = Server::start().await;
    let client = scim::tls::ClientTls::default().client().unwrap();
    for body in ["{", "[1,", "not json", ""] {
        let resp = client
            .post(format!("{}/Users", s.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body:?}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["scimType"], "invalidSyntax");
    }
}

#[tokio::test]
async fn oversized_bodies_get_413_naming_the_limit() {
    let s = Server::start_with(ProviderConfig {
        max_body_bytes: 2048,
        ..Default::default()
    })
    .await;
    let mut body = user_body("big");
    body["title"] = json!("x".repeat(4096));
    let r = s.post("/Users", body).await;
    r.assert_error(413, None);
    assert!(r.body["detail"].as_str().unwrap().contains("larger"));
}

#[tokio::test]
async fn p_err_03_hostile_inputs_never_get_a_500() {
    let s = Server::start().await;
    let deep = format!("{}userName pr{}", "(".repeat(3000), ")".repeat(3000));
    let cases = [
        format!("/Users?filter={}", urlencode(&deep)),
        format!("/Users?filter={}", urlencode(&"not (".repeat(500))),
        "/Users?filter=%ZZ".into(),
        "/Users?startIndex=x".into(),
        "/Users?sortBy=nope".into(),
        "/Users?sortBy=(".into(),
    ];
    for path in cases {
        let r = s.get(&path).await;
        assert!(r.status == 400, "{path}: {} {:?}", r.status, r.body);
        assert_eq!(r.body["status"], "400");
    }
    for body in [
        json!(null),
        json!(42),
        json!({"schemas": "x"}),
        json!({"schemas": [USER], "userName": {"a": 1}}),
        json!({"schemas": [USER], "userName": "z", "emails": [1, 2]}),
    ] {
        let r = s.post("/Users", body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        let t = r.body["scimType"].as_str().unwrap();
        assert!(["invalidSyntax", "invalidValue"].contains(&t), "{t}");
    }
}

/// `rate_limit`: each credential gets its burst, then 429 with a SCIM error and `Retry-After`;
/// another credential (a bad one here) has a bucket of its own.
#[tokio::test]
async fn a_rate_limited_credential_gets_429_with_retry_after() {
    let s = Server::start_with(ProviderConfig {
        rate_limit: Some(scim::rate::RateLimit {
            per_second: 1,
            burst: 3,
        }),
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(s.get("/Users?count=1").await.status, 200);
    }
    let limited = s.get("/Users?count=1").await;
    limited.assert_error(429, None);
    assert_eq!(limited.header("retry-after"), Some("1"));
    let stranger = scim::tls::ClientTls::default()
        .client()
        .unwrap()
        .get(format!("{}/Users", s.base))
        .bearer_auth("someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(
        stranger.status(),
        401,
        "another credential is not limited by this one's use"
    );
}
