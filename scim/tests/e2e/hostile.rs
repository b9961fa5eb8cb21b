//! Hostile requests: each is refused with the RFC 7644 §3.12 body, never a panic, a plain-text
//! answer or a silently chosen meaning.
use super::*;

#[tokio::test]
async fn a_long_uri_gets_414_with_the_error_body() {
    let s = Server::start().await;
    let filter = format!("userName eq \"{}\"", "a".repeat(40 * 1024));
    s.get(&format!("/Users?filter={}", urlencode(&filter)))
        .await
        .assert_error(414, None);
}

#[tokio::test]
async fn a_path_that_is_not_utf8_gets_the_error_body() {
    let s = Server::start().await;
    let r = s.get("/Users/%FF%FE").await;
    assert!(r.status == 400 || r.status == 404, "{r:?}");
    r.assert_error(r.status, None);
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_gets_413() {
    let s = Server::start_with(ProviderConfig {
        max_body_bytes: 64 * 1024,
        ..Default::default()
    })
    .await;
    // No Content-Length: the limit is found while reading the chunks.
    let addr = s.base.trim_start_matches("http://").to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(&addr).unwrap();
        let head = format!(
            "POST /Users HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        conn.write_all(head.as_bytes()).unwrap();
        let chunk = format!("4000\r\n{}\r\n", " ".repeat(0x4000));
        for _ in 0..64 {
            // The server may answer and close before every chunk is sent.
            if conn.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
        let _ = conn.write_all(b"0\r\n\r\n");
        let mut answer = Vec::new();
        let _ = conn.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(ERROR), "{answer}");
}

#[tokio::test]
async fn a_key_given_twice_is_invalid_syntax() {
    let s = Server::start().await;
    let client = scim::tls::ClientTls::default().client().unwrap();
    for body in [
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","userName":"b"}"#,
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","USERNAME":"b"}"#,
    ] {
        let resp = client
            .post(format!("{}/Users", s.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["scimType"], "invalidSyntax", "{v}");
        assert!(v["detail"].as_str().unwrap().contains("twice"), "{v}");
    }
    assert_eq!(s.users_matching("userName pr").await, Vec::<String>::new());
}

#[tokio::test]
async fn control_characters_in_names_are_invalid_values() {
    let s = Server::start().await;
    for name in ["nul\u{0}name", "line\nbreak", "esc\u{1b}[31m"] {
        s.post("/Users", user_body(name))
            .await
            .assert_error(400, Some("invalidValue"));
    }
    let id = s.user("plain").await["id"].as_str().unwrap().to_owned();
    s.patch(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "displayName", "value": "x\u{7}"}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    // A postal address may span lines.
    let r = s
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "add", "path": "addresses", "value": [{"formatted": "1 Main St\nSpringfield", "type": "work"}]}]),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn a_patch_over_max_operations_gets_413_and_changes_nothing() {
    let s = Server::start_with(ProviderConfig {
        patch_max_operations: 10,
        ..Default::default()
    })
    .await;
    let spc = s.get("/ServiceProviderConfig").await;
    // Not in /ServiceProviderConfig: RFC 7643 §5 has no field for it, and strict clients
    // (scim2-tester) refuse any key it does not define, even in an extension.
    assert!(spc.body["patch"].get("maxOperations").is_none());
    let id = s.user("many").await["id"].as_str().unwrap().to_owned();
    let ops: Vec<Value> = (0..11)
        .map(|i| json!({"op": "replace", "path": "displayName", "value": format!("v{i}")}))
        .collect();
    let refused = s.patch(&format!("/Users/{id}"), json!(ops)).await;
    refused.assert_error(413, None);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("at most 10 are accepted"),
        "{:?}",
        refused.body
    );
    assert!(s.get(&format!("/Users/{id}")).await.body["displayName"].is_null());
    let r = s.patch(&format!("/Users/{id}"), json!(ops[..10])).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}
