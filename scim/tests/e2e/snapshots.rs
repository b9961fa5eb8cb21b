//! Wire formats pinned with insta: discovery documents, errors and list responses.
use super::*;

/// Replaces what changes between runs (port, ids, times, ETags) with fixed placeholders.
fn stable(v: &Value, base: &str) -> Value {
    match v {
        Value::String(s) => {
            let s = s.replace(base, "http://scim.test");
            let is_uuid = |t: &str| t.len() == 36 && t.chars().filter(|c| *c == '-').count() == 4;
            let s = match s.rsplit_once('/') {
                Some((head, tail)) if is_uuid(tail) => format!("{head}/[id]"),
                _ if is_uuid(&s) => "[id]".into(),
                _ if s.starts_with("W/\"") => "[etag]".into(),
                _ if s.len() == 24 && s.ends_with('Z') && s.as_bytes()[10] == b'T' => {
                    "[time]".into()
                }
                _ => s,
            };
            Value::String(s)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| stable(x, base)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), stable(x, base)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[tokio::test]
async fn discovery_documents() {
    let s = Server::start().await;
    insta::assert_json_snapshot!(
        "service_provider_config",
        stable(&s.get("/ServiceProviderConfig").await.body, &s.base)
    );
    insta::assert_json_snapshot!(
        "resource_types",
        stable(&s.get("/ResourceTypes").await.body, &s.base)
    );
    insta::assert_json_snapshot!("schemas", stable(&s.get("/Schemas").await.body, &s.base));
}

#[tokio::test]
async fn error_bodies() {
    let s = Server::start().await;
    s.user("taken").await;
    let cases = [
        (
            "error_uniqueness",
            s.post("/Users", user_body("taken")).await,
        ),
        (
            "error_invalid_filter",
            s.get("/Users?filter=userName%20eq").await,
        ),
        ("error_not_found", s.get("/Users/unknown").await),
        (
            "error_invalid_syntax",
            s.post("/Users", json!({"userName": "x"})).await,
        ),
        ("error_unauthorized", {
            let r = scim::tls::ClientTls::default()
                .client()
                .unwrap()
                .get(format!("{}/Users", s.base))
                .send()
                .await
                .unwrap();
            Resp {
                status: r.status().as_u16(),
                headers: r.headers().clone(),
                body: r.json().await.unwrap(),
            }
        }),
    ];
    for (name, r) in cases {
        insta::assert_json_snapshot!(
            name,
            json!({"status": r.status, "body": stable(&r.body, &s.base)})
        );
    }
}

#[tokio::test]
async fn list_and_resource_responses() {
    let s = Server::start().await;
    let mut body = user_body("snap");
    body["schemas"] = json!([USER, ENT]);
    body[ENT] = json!({"employeeNumber": "1"});
    let u = s.post("/Users", body).await;
    s.group("snap-team", &[&u.id()]).await;
    insta::assert_json_snapshot!(
        "user_with_groups",
        stable(&s.get(&format!("/Users/{}", u.id())).await.body, &s.base)
    );
    insta::assert_json_snapshot!(
        "group_list",
        stable(&s.get("/Groups?count=5").await.body, &s.base)
    );
}
