//! ETags (RFC 7644 §3.14).
use super::*;

#[tokio::test]
async fn p_etag_01_02_etag_header_matches_meta_version() {
    let s = Server::start().await;
    let created = s.post("/Users", user_body("e")).await;
    assert_eq!(
        created.header("etag"),
        created.body["meta"]["version"].as_str()
    );
    let path = format!("/Users/{}", created.id());
    for r in [
        s.get(&path).await,
        s.put(&path, user_body("e")).await,
        s.patch(&path, json!([{"op": "add", "path": "title", "value": "t"}]))
            .await,
    ] {
        assert!(r.header("etag").is_some_and(|t| t.starts_with("W/\"")));
        assert_eq!(r.header("etag"), r.body["meta"]["version"].as_str());
    }
}

#[tokio::test]
async fn p_etag_03_if_none_match_gives_304() {
    let s = Server::start().await;
    let created = s.post("/Users", user_body("e")).await;
    let tag = created.header("etag").unwrap().to_owned();
    let path = format!("/Users/{}", created.id());
    let r = s
        .send(Method::GET, &path, None, &[("if-none-match", &tag)])
        .await;
    assert_eq!((r.status, &r.body), (304, &Value::Null));
    assert_eq!(
        s.send(
            Method::GET,
            &path,
            None,
            &[("if-none-match", "W/\"other\"")]
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn p_etag_04_05_06_if_match_guards_writes() {
    let s = Server::start().await;
    let created = s.post("/Users", user_body("e")).await;
    let old = created.header("etag").unwrap().to_owned();
    let path = format!("/Users/{}", created.id());
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "title", "value": "v2"}]});
    let ok = s
        .send(
            Method::PATCH,
            &path,
            Some(patch.clone()),
            &[("if-match", &old)],
        )
        .await;
    assert_eq!(ok.status, 200);
    let new = ok.header("etag").unwrap().to_owned();
    assert_ne!(new, old, "P-ETAG-05/06: a change changes the tag");
    s.send(Method::PATCH, &path, Some(patch), &[("if-match", &old)])
        .await
        .assert_error(412, None);
    s.send(
        Method::PUT,
        &path,
        Some(user_body("e")),
        &[("if-match", &old)],
    )
    .await
    .assert_error(412, None);
    s.send(Method::DELETE, &path, None, &[("if-match", &old)])
        .await
        .assert_error(412, None);
    assert_eq!(
        s.get(&path).await.body["title"],
        "v2",
        "unchanged after the 412s"
    );
    assert_eq!(
        s.get(&path).await.header("etag"),
        Some(new.as_str()),
        "P-ETAG-06: no change, same tag"
    );
    assert_eq!(
        s.send(Method::DELETE, &path, None, &[("if-match", "*")])
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn a_user_etag_changes_when_its_groups_change() {
    let s = Server::start().await;
    let created = s.post("/Users", user_body("member")).await;
    let before = created.header("etag").unwrap().to_owned();
    s.group("team", &[&created.id()]).await;
    let after = s.get(&format!("/Users/{}", created.id())).await;
    assert_ne!(after.header("etag"), Some(before.as_str()));
}
