//! PATCH over HTTP (RFC 7644 §3.5.2) in RFC, Okta and Entra forms.
use super::*;

async fn alice(s: &Server) -> String {
    s.user("alice").await["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn p_patch_02_message_errors() {
    let s = Server::start().await;
    let path = format!("/Users/{}", alice(&s).await);
    s.send(
        Method::PATCH,
        &path,
        Some(json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]})),
        &[],
    )
    .await
    .assert_error(400, Some("invalidSyntax"));
    s.patch(&path, json!([]))
        .await
        .assert_error(400, Some("invalidSyntax"));
    s.patch(&path, json!([{"op": "jump", "path": "title"}]))
        .await
        .assert_error(400, Some("invalidSyntax"));
}

#[tokio::test]
async fn p_patch_04_05_in_order_and_atomic() {
    let s = Server::start().await;
    let path = format!("/Users/{}", alice(&s).await);
    let r = s.patch(&path, json!([{"op": "add", "path": "title", "value": "a"}, {"op": "replace", "path": "title", "value": "b"}])).await;
    assert_eq!((r.status, r.body["title"].as_str()), (200, Some("b")));
    let before = s.get(&path).await.body;
    s.patch(&path, json!([{"op": "replace", "path": "title", "value": "c"}, {"op": "remove", "path": "userName"}])).await.assert_error(400, Some("mutability"));
    assert_eq!(s.get(&path).await.body, before, "nothing applied");
}

#[tokio::test]
async fn p_patch_06_to_15_add_and_replace() {
    let s = Server::start().await;
    let path = format!("/Users/{}", alice(&s).await);
    let r = s
        .patch(
            &path,
            json!([{"op": "add", "value": {"nickName": "Al", "name": {"middleName": "M"}}}]),
        )
        .await;
    assert_eq!(
        (
            r.body["nickName"].as_str(),
            r.body["name"]["givenName"].as_str(),
            r.body["name"]["middleName"].as_str()
        ),
        (Some("Al"), Some("alice"), Some("M"))
    );
    let r = s.patch(&path, json!([{"op": "add", "path": "emails", "value": [{"value": "home@x", "type": "home"}]}])).await;
    assert_eq!(
        r.body["emails"].as_array().unwrap().len(),
        2,
        "P-PATCH-07 appends"
    );
    let r = s
        .patch(
            &path,
            json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "h2@x"}]),
        )
        .await;
    assert_eq!(r.body["emails"][1]["value"], "h2@x", "P-PATCH-12");
    s.patch(
        &path,
        json!([{"op": "replace", "path": "emails[type eq \"fax\"]", "value": {"value": "f"}}]),
    )
    .await
    .assert_error(400, Some("noTarget"));
    let r = s
        .patch(
            &path,
            json!([{"op": "replace", "path": "emails", "value": [{"value": "only@x"}]}]),
        )
        .await;
    assert_eq!(r.body["emails"], json!([{"value": "only@x"}]), "P-PATCH-11");
    let r = s
        .patch(
            &path,
            json!([{"op": "replace", "path": "title", "value": "new"}]),
        )
        .await;
    assert_eq!(
        r.body["title"], "new",
        "P-PATCH-14 replace on unassigned acts as add"
    );
    let r = s
        .patch(
            &path,
            json!([{"op": "replace", "path": "name", "value": {"familyName": "Smith"}}]),
        )
        .await;
    assert_eq!(
        r.body["name"],
        json!({"givenName": "alice", "familyName": "Smith", "middleName": "M"}),
        "P-PATCH-15"
    );
}

#[tokio::test]
async fn p_patch_09_adding_what_is_there_changes_nothing() {
    let s = Server::start().await;
    let path = format!("/Users/{}", alice(&s).await);
    let before = s.get(&path).await.body;
    let r = s
        .patch(
            &path,
            json!([{"op": "add", "path": "emails", "value": [before["emails"][0].clone()]}]),
        )
        .await;
    assert_eq!(
        r.body["meta"]["lastModified"],
        before["meta"]["lastModified"]
    );
    assert_eq!(r.body["meta"]["version"], before["meta"]["version"]);
}

#[tokio::test]
async fn p_patch_16_to_21_remove_and_refusals() {
    let s = Server::start().await;
    let path = format!("/Users/{}", alice(&s).await);
    s.patch(&path, json!([{"op": "remove"}]))
        .await
        .assert_error(400, Some("noTarget"));
    let r = s.patch(&path, json!([{"op": "remove", "path": "name.familyName"}, {"op": "remove", "path": "emails"}])).await;
    assert!(r.body.get("emails").is_none() && r.body["name"].get("familyName").is_none());
    s.patch(&path, json!([{"op": "remove", "path": "userName"}]))
        .await
        .assert_error(400, Some("mutability"));
    s.patch(
        &path,
        json!([{"op": "replace", "path": "id", "value": "x"}]),
    )
    .await
    .assert_error(400, Some("mutability"));
    s.patch(
        &path,
        json!([{"op": "replace", "path": "meta.created", "value": "2000-01-01T00:00:00Z"}]),
    )
    .await
    .assert_error(400, Some("mutability"));
    s.patch(
        &path,
        json!([{"op": "add", "path": "favouriteColour", "value": "x"}]),
    )
    .await
    .assert_error(400, Some("invalidPath"));
    s.patch(
        &path,
        json!([{"op": "add", "path": "emails[value eq", "value": "x"}]),
    )
    .await
    .assert_error(400, Some("invalidPath"));
    s.patch(&path, json!([{"op": "add", "path": "active", "value": 3}]))
        .await
        .assert_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn p_patch_23_24_extension_paths_and_primary() {
    let s = Server::start().await;
    let path = format!("/Users/{}", alice(&s).await);
    let num = format!("{ENT}:employeeNumber");
    let r = s
        .patch(&path, json!([{"op": "add", "path": num, "value": "9"}]))
        .await;
    assert_eq!(
        (
            r.body[ENT]["employeeNumber"].as_str(),
            r.body["schemas"].as_array().map(Vec::len)
        ),
        (Some("9"), Some(2))
    );
    let r = s
        .patch(
            &path,
            json!([{"op": "replace", "path": num, "value": "10"}]),
        )
        .await;
    assert_eq!(r.body[ENT]["employeeNumber"], "10");
    let r = s.patch(&path, json!([{"op": "remove", "path": num}])).await;
    assert!(r.body.get(ENT).is_none());
    assert_eq!(r.body["schemas"], json!([USER]));
    let r = s
        .patch(
            &path,
            json!([{"op": "add", "path": "emails", "value": [{"value": "p@x", "primary": true}]}]),
        )
        .await;
    let primaries: Vec<&Value> = r.body["emails"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["primary"] == true)
        .collect();
    assert_eq!(primaries.len(), 1);
    assert_eq!(primaries[0]["value"], "p@x");
}

#[tokio::test]
async fn p_patch_25_unknown_id() {
    let s = Server::start().await;
    s.patch(
        "/Users/nope",
        json!([{"op": "add", "path": "title", "value": "x"}]),
    )
    .await
    .assert_error(404, None);
}

#[tokio::test]
async fn i_okta_05_pathless_deactivate_and_reactivate() {
    let s = Server::start().await;
    let path = format!("/Users/{}", alice(&s).await);
    let r = s
        .patch(
            &path,
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .await;
    assert_eq!(r.body["active"], false);
    let r = s
        .patch(&path, json!([{"op": "replace", "value": {"active": true}}]))
        .await;
    assert_eq!(r.body["active"], true);
}

#[tokio::test]
async fn i_entra_01_02_03_entra_dialect() {
    let s = Server::start().await;
    let path = format!("/Users/{}", alice(&s).await);
    let r = s
        .patch(
            &path,
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    assert_eq!(r.body["active"], false, "I-ENTRA-03");
    let r = s.patch(&path, json!([{"op": "replace", "value": {"displayName": "Alice L", "name.givenName": "Ally", (format!("{ENT}:department")): "Ops"}}])).await;
    assert_eq!(
        (
            r.body["displayName"].as_str(),
            r.body["name"]["givenName"].as_str(),
            r.body[ENT]["department"].as_str()
        ),
        (Some("Alice L"), Some("Ally"), Some("Ops"))
    );
    let r = s
        .patch(
            &path,
            json!([{"op": "Add", "path": "emails[type eq \"home\"].value", "value": "home@x"}]),
        )
        .await;
    assert!(r.body["emails"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == &json!({"type": "home", "value": "home@x"})));
}
