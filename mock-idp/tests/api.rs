//! The management API's contract (Okta's error bodies, auth, lifecycle rules, paging, the
//! System Log) and the binary's durability: kill -9 in the middle of a drain, restart, every
//! entry delivered once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{fast_engine, start_idp, Api, Recorder, IDP_TOKEN};
use serde_json::json;

#[tokio::test]
async fn bad_requests_get_okta_errors() {
    let idp = start_idp(fast_engine()).await;
    let api = Api::new(&idp.url);
    let anon = scim::tls::ClientTls::default()
        .client()
        .unwrap()
        .get(format!("{}/api/v1/users", idp.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let body: serde_json::Value = anon.json().await.unwrap();
    assert_eq!(body["errorCode"], "E0000011");
    assert!(body["errorId"].is_string() && body["errorCauses"].is_array());

    let (s, e) = api
        .call(
            "POST",
            "/api/v1/users",
            Some(json!({"profile": {"login": "x@y.test"}})),
        )
        .await;
    assert_eq!((s, e["errorCode"].as_str().unwrap()), (400, "E0000001"));
    assert!(e["errorCauses"][0]["errorSummary"]
        .as_str()
        .unwrap()
        .contains("email"));
    let (s, e) = api.call("POST", "/api/v1/users", None).await;
    assert_eq!((s, e["errorCode"].as_str().unwrap()), (400, "E0000003"));
    let (s, e) = api.call("GET", "/api/v1/users/nobody", None).await;
    assert_eq!((s, e["errorCode"].as_str().unwrap()), (404, "E0000007"));
    let (s, e) = api.call("PATCH", "/api/v1/users", None).await;
    assert_eq!((s, e["errorCode"].as_str().unwrap()), (405, "E0000022"));
    let (s, _) = api.call("GET", "/api/v1/users?limit=zero", None).await;
    assert_eq!(s, 400);
    let (s, e) = api
        .call("GET", "/api/v1/users?filter=status%20eq", None)
        .await;
    assert_eq!((s, e["errorCode"].as_str().unwrap()), (400, "E0000001"));

    let ann = api.hire("ann@x.test", "Ann", "Lee").await;
    let (s, e) = api
        .call(
            "POST",
            "/api/v1/users",
            Some(json!({"profile": {"login": "ANN@x.test",
            "email": "a@x.test", "firstName": "A", "lastName": "B"}})),
        )
        .await;
    assert_eq!(s, 400, "logins are unique regardless of case: {e}");
    let (s, e) = api
        .call(
            "POST",
            &format!("/api/v1/users/{ann}/lifecycle/activate"),
            None,
        )
        .await;
    assert_eq!((s, e["errorCode"].as_str().unwrap()), (403, "E0000016"));
    let (s, _) = api
        .call("POST", &format!("/api/v1/users/{ann}/lifecycle/fly"), None)
        .await;
    assert_eq!(s, 404);
    let (s, e) = api
        .call(
            "POST",
            "/api/v1/apps",
            Some(json!({"label": "x", "settings": {"app": {"scimDialect": "ldap"}}})),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    let (s, e) = api
        .call("POST", "/api/v1/apps", Some(json!({"label": "x", "settings": {"app": {"scimMappings": [{"to": "active", "from": "{x}"}]}}})))
        .await;
    assert_eq!(s, 400, "{e}");
    let app = api.scim_app("T", "okta", "http://127.0.0.1:9").await;
    let (s, e) = api
        .call("DELETE", &format!("/api/v1/apps/{app}"), None)
        .await;
    assert_eq!((s, e["errorCode"].as_str().unwrap()), (403, "E0000056"));
    // An inactive app goes with its assignments and its undeliverable outbox.
    api.ok(
        "POST",
        &format!("/api/v1/apps/{app}/users"),
        Some(json!({"id": ann})),
    )
    .await;
    assert_eq!(api.outbox(&app).await.len(), 1);
    api.ok(
        "POST",
        &format!("/api/v1/apps/{app}/lifecycle/deactivate"),
        None,
    )
    .await;
    api.ok("DELETE", &format!("/api/v1/apps/{app}"), None).await;
    let (s, _) = api
        .call("GET", &format!("/api/v1/apps/{app}/outbox"), None)
        .await;
    assert_eq!(s, 404);
    let (s, _) = api
        .call("GET", &format!("/api/v1/apps/{app}/users/{ann}"), None)
        .await;
    assert_eq!(s, 404);
    idp.stop().await;
}

#[tokio::test]
async fn users_page_with_link_headers_and_the_system_log_filters() {
    let idp = start_idp(fast_engine()).await;
    let api = Api::new(&idp.url);
    for i in 0..5 {
        api.hire(&format!("p{i}@x.test"), "P", &format!("Q{i}"))
            .await;
    }
    for i in 0..2 {
        api.hire(&format!("z{i}@y.test"), "Z", &format!("W{i}"))
            .await;
    }
    let client = scim::tls::ClientTls::default().client().unwrap();
    // Next links are followed as given, as SDKs do: they keep the query (`q` here).
    for (query, expected) in [("limit=2", 7), ("q=p&limit=2", 5)] {
        let mut url = format!("{}/api/v1/users?{query}", idp.url);
        let mut seen = 0;
        for _ in 0..10 {
            let resp = client
                .get(&url)
                .header("authorization", format!("SSWS {IDP_TOKEN}"))
                .send()
                .await
                .unwrap();
            let next = resp
                .headers()
                .get_all("link")
                .iter()
                .filter_map(|l| l.to_str().ok())
                .find(|l| l.ends_with("rel=\"next\""))
                .map(|l| l[1..l.find('>').unwrap()].to_owned());
            seen += resp.json::<Vec<serde_json::Value>>().await.unwrap().len();
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
        assert_eq!(seen, expected, "{query}");
    }
    let found = api
        .ok(
            "GET",
            "/api/v1/users?search=profile.login%20eq%20%22p3@x.test%22",
            None,
        )
        .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    let q = api.ok("GET", "/api/v1/users?q=p1", None).await;
    assert_eq!(q.as_array().unwrap().len(), 1);

    let created = api.logs("eventType eq \"user.lifecycle.create\"").await;
    assert_eq!(created.len(), 7);
    assert_eq!(created[0]["target"][0]["type"], "User");
    assert!(created[0]["published"].is_string() && created[0]["uuid"].is_string());
    let verify = api.ok("GET", "/_sim/events/verify", None).await;
    assert_eq!(verify["valid"], true);
    idp.stop().await;
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary and returns it with its URL.
fn spawn(data: &std::path::Path) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-idp"))
        .args([
            "--port",
            "0",
            "--token",
            IDP_TOKEN,
            "--concurrency",
            "4",
            "--data",
        ])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first.split_whitespace().nth(1).unwrap().to_owned();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    (Server(child), url)
}

#[tokio::test]
async fn kill_9_mid_drain_then_restart_delivers_every_entry_once() {
    let rec = Recorder::start().await;
    *rec.tape.delay.lock().unwrap() = Duration::from_millis(40);
    let data = tempfile::tempdir().unwrap();
    let (server, url) = spawn(data.path());
    let api = Api::new(&url);
    let app = api.scim_app("Target", "okta", &rec.url).await;
    let group = api
        .ok(
            "POST",
            "/api/v1/groups",
            Some(json!({"profile": {"name": "Everyone"}})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    const USERS: usize = 60;
    for i in 0..USERS {
        let u = api
            .hire(&format!("k{i}@x.test"), "K", &format!("L{i}"))
            .await;
        api.ok("PUT", &format!("/api/v1/groups/{group}/users/{u}"), None)
            .await;
    }
    // Assigned once everyone is in: the whole drain starts now, not while people are hired
    // (how fast hiring goes must not decide whether the kill lands mid-drain).
    api.ok(
        "PUT",
        &format!("/api/v1/apps/{app}/groups/{group}"),
        Some(json!({})),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while rec.users().await.len() < 5 {
        assert!(
            Instant::now() < deadline,
            "nothing delivered before the kill"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(server); // SIGKILL
    let before = rec.users().await.len();
    assert!(
        before < USERS,
        "the drain finished before the kill ({before} delivered); slow the target down"
    );

    let (_server, url) = spawn(data.path());
    let api = Api::new(&url);
    api.drained(&app, 60).await;
    let users = rec.users().await;
    assert_eq!(users.len(), USERS, "every joiner is in the target, once");
    let posts = rec
        .tape
        .take()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/Users")
        .count();
    assert!(
        posts <= USERS + 4,
        "{posts} creates: at most the in-flight ones are replayed"
    );
    let listed = api
        .ok("GET", &format!("/api/v1/apps/{app}/users"), None)
        .await;
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["externalId"].is_string()));
    let pushed = api
        .logs("eventType eq \"application.provision.user.push\"")
        .await;
    assert!(
        pushed.len() >= USERS - before,
        "outcomes logged after the restart"
    );
}

#[tokio::test]
async fn hostile_bodies_are_refused_with_okta_errors() {
    let idp = start_idp(fast_engine()).await;
    let api = Api::new(&idp.url);
    let client = scim::tls::ClientTls::default().client().unwrap();
    let raw = |body: String| {
        client
            .post(format!("{}/api/v1/users", idp.url))
            .header("authorization", format!("ssws {IDP_TOKEN}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // A key given twice: refused, not resolved to the last.
    let twice = r#"{"profile": {"login": "a@x.test", "login": "b@x.test", "email": "a@x.test", "firstName": "A", "lastName": "B"}}"#;
    let resp = raw(twice.into()).await.unwrap();
    assert_eq!(resp.status(), 400);
    let e: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(e["errorCode"], "E0000003", "{e}");
    // A NUL in a login.
    let (s, e) = api
        .call(
            "POST",
            "/api/v1/users",
            Some(json!({"profile": {"login": "nul\u{0}@x.test",
            "email": "n@x.test", "firstName": "N", "lastName": "U"}})),
        )
        .await;
    assert_eq!(
        (s, e["errorCode"].as_str().unwrap()),
        (400, "E0000001"),
        "{e}"
    );
    // Over the body limit: 413.
    let resp = raw(" ".repeat(3 << 20)).await.unwrap();
    assert_eq!(resp.status(), 413);
    assert!(api.call("GET", "/api/v1/users", None).await.1 == json!([]));
    idp.stop().await;
}
