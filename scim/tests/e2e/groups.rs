//! Groups and membership consistency (RFC 7643 §4.2, §4.1.2) and IdP group forms.
use super::*;

#[tokio::test]
async fn p_group_01_02_p_user_03_membership_shows_on_both_sides() {
    let s = Server::start().await;
    s.post("/Groups", json!({"schemas": [GROUP]}))
        .await
        .assert_error(400, Some("invalidValue"));
    let u = s.user("ann").await["id"].as_str().unwrap().to_owned();
    let g = s.group("eng", &[&u]).await;
    assert_eq!(g["members"][0]["value"], *u);
    assert_eq!(g["members"][0]["type"], "User");
    assert_eq!(g["members"][0]["$ref"], format!("{}/Users/{u}", s.base));
    let user = s.get(&format!("/Users/{u}")).await.body;
    assert_eq!(
        user["groups"],
        json!([{"value": g["id"], "$ref": format!("{}/Groups/{}", s.base, g["id"].as_str().unwrap()), "display": "eng", "type": "direct"}])
    );
    let gid = g["id"].as_str().unwrap();
    s.patch(
        &format!("/Groups/{gid}"),
        json!([{"op": "replace", "path": "displayName", "value": "engineering"}]),
    )
    .await;
    assert_eq!(
        s.get(&format!("/Users/{u}")).await.body["groups"][0]["display"],
        "engineering"
    );
    assert_eq!(
        s.users_matching(&format!("groups.value eq \"{gid}\""))
            .await,
        vec!["ann"]
    );
}

#[tokio::test]
async fn deleting_a_user_removes_it_from_every_group() {
    let s = Server::start().await;
    let a = s.user("a").await["id"].as_str().unwrap().to_owned();
    let b = s.user("b").await["id"].as_str().unwrap().to_owned();
    let g1 = s.group("g1", &[&a, &b]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let g2 = s.group("g2", &[&a]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.delete(&format!("/Users/{a}")).await.status, 204);
    assert_eq!(
        s.get(&format!("/Groups/{g1}")).await.body["members"],
        json!([{"value": b, "type": "User", "$ref": format!("{}/Users/{b}", s.base)}])
    );
    assert!(
        s.get(&format!("/Groups/{g2}"))
            .await
            .body
            .get("members")
            .is_none(),
        "X-INFO-05: members omitted once empty"
    );
}

#[tokio::test]
async fn nested_groups_show_as_indirect_and_deleting_a_group_cleans_up() {
    let s = Server::start().await;
    let u = s.user("nested").await["id"].as_str().unwrap().to_owned();
    let inner = s.group("inner", &[&u]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let outer = s.group("outer", &[&inner]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let groups = s.get(&format!("/Users/{u}")).await.body["groups"].clone();
    assert_eq!(groups.as_array().unwrap().len(), 2);
    assert_eq!(groups[1]["value"], *outer);
    assert_eq!(groups[1]["type"], "indirect");
    assert_eq!(s.delete(&format!("/Groups/{inner}")).await.status, 204);
    assert!(s
        .get(&format!("/Users/{u}"))
        .await
        .body
        .get("groups")
        .is_none());
    assert!(s
        .get(&format!("/Groups/{outer}"))
        .await
        .body
        .get("members")
        .is_none());
}

#[tokio::test]
async fn x_info_03_members_must_exist_and_match_their_type() {
    let s = Server::start().await;
    let r = s
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "x", "members": [{"value": "ghost"}]}),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    let u = s.user("typed").await["id"].as_str().unwrap().to_owned();
    s.post(
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "y", "members": [{"value": u, "type": "Group"}]}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    let g = s.group("self", &[]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.patch(
        &format!("/Groups/{g}"),
        json!([{"op": "add", "path": "members", "value": [{"value": g}]}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn i_okta_07_okta_group_push() {
    let s = Server::start().await;
    let a = s.user("oa").await["id"].as_str().unwrap().to_owned();
    let b = s.user("ob").await["id"].as_str().unwrap().to_owned();
    let g = s
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "okta-pushed", "members": []}),
        )
        .await;
    assert_eq!(g.status, 201);
    let path = format!("/Groups/{}", g.id());
    let r = s.patch(&path, json!([
        {"op": "replace", "value": {"id": g.id(), "displayName": "okta-pushed"}},
        {"op": "add", "path": "members", "value": [{"value": a, "display": "oa"}, {"value": b, "display": "ob"}]}
    ])).await;
    assert_eq!(
        r.status, 204,
        "a group PATCH does not send the members back"
    );
    let got = s.get(&path).await;
    assert_eq!(
        r.headers.get("etag").and_then(|v| v.to_str().ok()),
        got.body["meta"]["version"].as_str(),
        "the 204 carries the new version"
    );
    assert_eq!(
        got.body["members"].as_array().unwrap().len(),
        2,
        "{:?}",
        got.body
    );
    // Asking for attributes brings the resource back (RFC 7644 §3.5.2).
    let with_members = format!("{path}?attributes=members");
    let r = s
        .patch(
            &with_members,
            json!([{"op": "remove", "path": format!("members[value eq \"{a}\"]")}]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1);
    let r = s
        .patch(
            &with_members,
            json!([{"op": "replace", "path": "members", "value": [{"value": a}]}]),
        )
        .await;
    assert_eq!(r.body["members"][0]["value"], *a);
    let r = s
        .patch(
            &path,
            json!([{"op": "remove", "path": format!("members[value eq \"{b}\"]")}]),
        )
        .await;
    assert_eq!(
        r.status, 204,
        "removing an absent member is a harmless retry"
    );
}

#[tokio::test]
async fn i_entra_04_06_08_entra_group_forms() {
    let s = Server::start().await;
    let a = s.user("ea").await["id"].as_str().unwrap().to_owned();
    let g = s
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "entra-group"}),
        )
        .await;
    let path = format!("/Groups/{}", g.id());
    s.patch(
        &path,
        json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": a}]}]),
    )
    .await;
    let r = s.get(&format!("{path}?excludedAttributes=members")).await;
    assert!(r.body.get("members").is_none() && r.body["displayName"] == "entra-group");
    let r = s
        .get("/Groups?excludedAttributes=members&filter=displayName%20eq%20%22entra-group%22")
        .await;
    assert_eq!(r.body["totalResults"], 1);
    assert!(r.body["Resources"][0].get("members").is_none());
    let r = s
        .patch(
            &path,
            json!([{"op": "Remove", "path": "members", "value": [{"value": a}]}]),
        )
        .await;
    assert!(r.body.get("members").is_none());
    s.post(
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "ENTRA-group"}),
    )
    .await
    .assert_error(409, Some("uniqueness"));
}
