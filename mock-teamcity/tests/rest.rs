//! The TeamCity-like REST API over real HTTP on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::Path;

use mock_teamcity::{launch, Launched, Options, Policy, Target};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

const TOKEN: &str = "admin-token";

async fn start(data: Option<&Path>) -> Launched {
    launch(Options {
        target: Target::Simulator { port: 0 },
        token: TOKEN.into(),
        policy: Policy::default(),
        serving: mock_teamcity::Serving {
            data: data.map(Path::to_path_buf),
            scim_token: TOKEN.into(),
            durable: data.is_some(),
            lenient: false,
            ..Default::default()
        },
    })
    .await
    .unwrap()
}

struct Tc {
    s: Launched,
    http: Client,
}

impl Tc {
    async fn new(data: Option<&Path>) -> Tc {
        Tc {
            s: start(data).await,
            http: scim::tls::ClientTls::default().client().unwrap(),
        }
    }

    async fn raw(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, String) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.s.teamcity_url))
            .bearer_auth(token)
            .header("Accept", "application/json");
        if let Some(b) = body {
            let ct = if b.starts_with('{') || b.starts_with('[') {
                "application/json"
            } else {
                "text/plain"
            };
            req = req.header("Content-Type", ct).body(b.to_owned());
        }
        let resp = req.send().await.unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    async fn call_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let text = body.map(|b| b.to_string());
        let (status, out) = self.raw(token, method, path, text.as_deref()).await;
        (
            status,
            serde_json::from_str(&out).unwrap_or(Value::String(out)),
        )
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_as(TOKEN, method, path, body).await
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, out) = self.call(method, path, body).await;
        assert!(status.is_success(), "{path}: {status} {out}");
        out
    }

    /// project id -> permissions, from the oracle's endpoint.
    async fn perms(&self, user: &str) -> Value {
        self.ok(
            Method::GET,
            &format!("/_sim/permissions/username:{user}"),
            None,
        )
        .await["projects"]
            .clone()
    }
}

fn has(perms: &Value, project: &str, permission: &str) -> bool {
    perms[project]
        .as_array()
        .is_some_and(|p| p.iter().any(|x| x == permission))
}

#[tokio::test]
async fn group_roles_reach_members_of_subgroups_and_subprojects() {
    let tc = Tc::new(None).await;
    tc.ok(
        Method::POST,
        "/app/rest/users",
        Some(json!({"username": "ann", "name": "Ann A", "email": "ann@example.com"})),
    )
    .await;
    tc.ok(
        Method::POST,
        "/app/rest/userGroups",
        Some(json!({"key": "ENG", "name": "Engineering"})),
    )
    .await;
    tc.ok(
        Method::POST,
        "/app/rest/userGroups",
        Some(json!({"key": "API", "name": "API team",
        "parent-groups": {"group": [{"key": "ENG"}]}})),
    )
    .await;
    tc.ok(
        Method::POST,
        "/app/rest/users/username:ann/groups",
        Some(json!({"key": "API"})),
    )
    .await;
    let role = tc
        .ok(
            Method::PUT,
            "/app/rest/userGroups/key:ENG/roles/PROJECT_DEVELOPER/p:Backend",
            None,
        )
        .await;
    assert_eq!(
        role["href"],
        "/app/rest/userGroups/key:ENG/roles/PROJECT_DEVELOPER/p:Backend"
    );

    let perms = tc.perms("ann").await;
    assert!(has(&perms, "Backend", "run_build"));
    assert!(
        has(&perms, "Backend_Api", "run_build"),
        "a project role reaches subprojects"
    );
    assert!(!has(&perms, "Backend", "edit_project"));
    assert!(perms.get("Web").is_none());
    let listed = tc
        .ok(
            Method::GET,
            "/app/rest/users/username:ann/permissions",
            None,
        )
        .await;
    assert!(listed["permission"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == "view_project" && p["project"]["id"] == "Backend_Api"));

    // Leaving the subgroup takes the rights away.
    let (status, _) = tc
        .call(
            Method::DELETE,
            "/app/rest/users/username:ann/groups/key:API",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(tc.perms("ann").await, json!({}));
    tc.s.stop().await;
}

#[tokio::test]
async fn tokens_act_as_their_user_and_die_with_deletion() {
    let tc = Tc::new(None).await;
    tc.ok(Method::POST, "/app/rest/users", Some(json!({"username": "bob", "roles": {"role": [{"roleId": "PROJECT_VIEWER", "scope": "p:Web"}]}}))).await;
    let (status, body) = tc
        .call(
            Method::POST,
            "/app/rest/users/username:bob/tokens",
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["value"].as_str().unwrap().to_owned();
    let (_, listed) = tc
        .call(Method::GET, "/app/rest/users/username:bob/tokens", None)
        .await;
    assert!(
        listed["token"][0].get("value").is_none(),
        "the value is shown once"
    );

    let (status, me) = tc
        .call_as(&token, Method::GET, "/app/rest/users/current", None)
        .await;
    assert_eq!(
        (status, me["username"].as_str()),
        (StatusCode::OK, Some("bob"))
    );
    let (_, projects) = tc
        .call_as(&token, Method::GET, "/app/rest/projects", None)
        .await;
    let ids: Vec<&str> = projects["project"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["Web"]);
    let (status, _) = tc
        .call_as(&token, Method::GET, "/app/rest/projects/id:Backend", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = tc
        .call_as(&token, Method::GET, "/app/rest/users", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no rights to list users");
    let (status, _) = tc
        .call_as(
            &token,
            Method::PUT,
            "/app/rest/users/username:bob/roles/SYSTEM_ADMIN/g",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no granting oneself roles");

    let (status, _) = tc
        .call(
            Method::DELETE,
            "/app/rest/users/username:bob/tokens/ci",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = tc
        .raw(&token, Method::GET, "/app/rest/users/current", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let (status, body) = tc
        .call(
            Method::POST,
            "/app/rest/users/username:bob/tokens",
            Some(json!({"name": "again"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["value"].as_str().unwrap().to_owned();
    tc.call(Method::DELETE, "/app/rest/users/username:bob", None)
        .await;
    let (status, _) = tc
        .raw(&token, Method::GET, "/app/rest/users/current", None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a deleted user's tokens die with them"
    );
    tc.s.stop().await;
}

#[tokio::test]
async fn bad_requests_get_teamcity_errors() {
    let tc = Tc::new(None).await;
    tc.ok(
        Method::POST,
        "/app/rest/users",
        Some(json!({"username": "cy"})),
    )
    .await;
    let (status, text) = tc
        .raw(
            TOKEN,
            Method::POST,
            "/app/rest/users",
            Some(r#"{"username": "CY"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.starts_with("Responding with error, status code: 400 (Bad Request)."),
        "{text}"
    );
    assert!(
        text.contains("Cannot create user as user with the same username already exists"),
        "{text}"
    );
    let (status, text) = tc
        .raw(
            TOKEN,
            Method::PUT,
            "/app/rest/users/username:cy/roles/PROJECT_VIEWER/x:1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        text.contains("Cannot find scope by 'x:1' Valid formats are: 'g' or 'p:<projectId>'."),
        "{text}"
    );
    let (status, _) = tc
        .raw(
            TOKEN,
            Method::PUT,
            "/app/rest/users/username:cy/roles/PROJECT_VIEWER/p:Nope",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = tc
        .raw(
            TOKEN,
            Method::PUT,
            "/app/rest/users/username:cy/roles/OWNER/g",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = tc
        .raw(
            TOKEN,
            Method::PUT,
            "/app/rest/users/username:cy/roles/SYSTEM_ADMIN/p:Web",
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "system admin is global only"
    );
    let (status, _) = tc
        .raw(TOKEN, Method::GET, "/app/rest/users/id:999", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = tc
        .raw(TOKEN, Method::GET, "/app/rest/users/email:x", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = tc
        .raw(TOKEN, Method::POST, "/app/rest/users", Some("{nope"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = tc
        .raw(
            TOKEN,
            Method::POST,
            "/app/rest/users/username:cy/tokens",
            Some("{}"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a token needs a name");
    let (status, text) = tc.raw("wrong", Method::GET, "/app/rest/users", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    // Groups: duplicate key or name, and cycles.
    tc.ok(
        Method::POST,
        "/app/rest/userGroups",
        Some(json!({"key": "A", "name": "A"})),
    )
    .await;
    tc.ok(
        Method::POST,
        "/app/rest/userGroups",
        Some(json!({"key": "B", "name": "B", "parent-groups": {"group": [{"key": "A"}]}})),
    )
    .await;
    let (status, _) = tc
        .raw(
            TOKEN,
            Method::POST,
            "/app/rest/userGroups",
            Some(r#"{"key": "C", "name": "A"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, text) = tc
        .raw(
            TOKEN,
            Method::PUT,
            "/app/rest/userGroups/key:A/parent-groups",
            Some(r#"{"group": [{"key": "B"}]}"#),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    // Single fields are text/plain.
    let (status, text) = tc
        .raw(
            TOKEN,
            Method::PUT,
            "/app/rest/users/username:cy/email",
            Some("cy@example.com"),
        )
        .await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "cy@example.com"));
    let (_, text) = tc
        .raw(
            TOKEN,
            Method::GET,
            "/app/rest/users/username:cy/email",
            None,
        )
        .await;
    assert_eq!(text, "cy@example.com");
    let (status, _) = tc
        .raw(
            TOKEN,
            Method::PUT,
            "/app/rest/users/username:cy/properties/scim.id",
            Some("abc"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let user = tc
        .ok(Method::GET, "/app/rest/users/username:cy", None)
        .await;
    assert_eq!(
        user["properties"]["property"][0],
        json!({"name": "scim.id", "value": "abc"})
    );
    assert_eq!(user["email"], "cy@example.com");
    tc.s.stop().await;
}

#[tokio::test]
async fn restart_keeps_everything_and_the_audit_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    {
        let tc = Tc::new(Some(dir.path())).await;
        tc.ok(
            Method::POST,
            "/app/rest/users",
            Some(json!({"username": "dee"})),
        )
        .await;
        tc.ok(
            Method::POST,
            "/app/rest/projects",
            Some(json!({"id": "Mobile", "name": "Mobile"})),
        )
        .await;
        tc.ok(
            Method::PUT,
            "/app/rest/users/username:dee/roles/PROJECT_ADMIN/p:Mobile",
            None,
        )
        .await;
        tc.s.stop().await;
    }
    let tc = Tc::new(Some(dir.path())).await;
    let perms = tc.perms("dee").await;
    assert!(has(&perms, "Mobile", "edit_project"), "{perms}");
    let chain = tc.ok(Method::GET, "/_sim/events/verify", None).await;
    assert_eq!(chain["valid"], true, "{chain}");
    let events = tc.ok(Method::GET, "/_sim/events", None).await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in ["user.created", "project.created", "roles.changed"] {
        assert!(kinds.contains(&k), "{k}: {kinds:?}");
    }
    // Deleting a project drops the roles scoped to it.
    let (status, _) = tc
        .call(Method::DELETE, "/app/rest/projects/id:Mobile", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(tc.perms("dee").await, json!({}));
    let (status, _) = tc
        .call(Method::DELETE, "/app/rest/projects/id:_Root", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    tc.s.stop().await;
}

#[tokio::test]
async fn faults_apply_to_the_rest_api() {
    let tc = Tc::new(None).await;
    tc.ok(Method::PUT, "/_sim/faults", Some(json!({"rate5xx": 100.0})))
        .await;
    let (status, _) = tc.raw(TOKEN, Method::GET, "/app/rest/users", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    tc.ok(Method::PUT, "/_sim/faults", Some(json!({}))).await;
    let (status, _) = tc.raw(TOKEN, Method::GET, "/app/rest/users", None).await;
    assert_eq!(status, StatusCode::OK);
    tc.s.stop().await;
}

#[tokio::test]
async fn xml_answers_for_clients_that_ask() {
    let tc = Tc::new(None).await;
    tc.ok(
        Method::POST,
        "/app/rest/users",
        Some(json!({"username": "xi", "email": "x@example.com"})),
    )
    .await;
    let resp = tc
        .http
        .get(format!("{}/app/rest/users/username:xi", tc.s.teamcity_url))
        .bearer_auth(TOKEN)
        .header("Accept", "application/xml")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/xml");
    let body = resp.text().await.unwrap();
    assert!(body.starts_with("<?xml"), "{body}");
    assert!(
        body.contains(r#"<user id="1" username="xi" email="x@example.com""#),
        "{body}"
    );
    let (_, json) = tc
        .raw(TOKEN, Method::GET, "/app/rest/users/username:xi", None)
        .await;
    assert!(json.starts_with('{'), "JSON stays the default: {json}");
    tc.s.stop().await;
}

/// What TeamCity clients generated from its API description (dohq-teamcity) do: the server
/// description first, HTTP Basic with a token for a password, plain-text fields sent as JSON
/// strings.
#[tokio::test]
async fn what_generated_clients_send_is_understood() {
    let tc = Tc::new(None).await;
    let (status, server) = tc.call(Method::GET, "/app/rest/server", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server["versionMajor"], 2025);
    assert_eq!(server["users"]["href"], "/app/rest/users");
    let (status, version) = tc
        .raw(TOKEN, Method::GET, "/app/rest/server/version", None)
        .await;
    assert_eq!(
        (status, version.starts_with("2025.07")),
        (StatusCode::OK, true)
    );
    let xml = tc
        .http
        .get(format!("{}/app/rest/server", tc.s.teamcity_url))
        .bearer_auth(TOKEN)
        .header("Accept", "application/xml")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        xml.starts_with("<?xml") && xml.contains("<server "),
        "{xml}"
    );

    tc.ok(
        Method::POST,
        "/app/rest/users",
        Some(json!({"username": "ann"})),
    )
    .await;
    let token = tc
        .ok(
            Method::POST,
            "/app/rest/users/username:ann/tokens",
            Some(json!({"name": "t"})),
        )
        .await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let basic = |user: &str, password: &str| {
        tc.http
            .get(format!("{}/app/rest/users/username:ann", tc.s.teamcity_url))
            .basic_auth(user, Some(password))
            .header("Accept", "application/json")
            .send()
    };
    // The server token is the super user's password, whatever the name; a user's token works
    // only under that user's name.
    for (user, password, status) in [
        ("", TOKEN, 200),
        ("admin", TOKEN, 200),
        ("ann", token.as_str(), 200),
        ("bob", token.as_str(), 401),
        ("ann", "wrong", 401),
    ] {
        let got = basic(user, password).await.unwrap().status();
        assert_eq!(got.as_u16(), status, "{user}:{password}");
    }
    let (status, _) = tc
        .http
        .put(format!(
            "{}/app/rest/users/username:ann/name",
            tc.s.teamcity_url
        ))
        .bearer_auth(TOKEN)
        .header("Content-Type", "application/json")
        .body("\"Ann Lee\"")
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let ann = tc
        .ok(Method::GET, "/app/rest/users/username:ann", None)
        .await;
    assert_eq!(ann["name"], "Ann Lee", "the JSON string is the value");

    // Older clients (pyteamcity, teamcity-client) use TeamCity's `/httpAuth/app/rest/` URLs
    // with HTTP Basic, and list collections with a trailing slash.
    for path in [
        "/httpAuth/app/rest/users/username:ann",
        "/httpAuth/app/rest/projects/?locator=",
        "/app/rest/users/",
    ] {
        let got = tc
            .http
            .get(format!("{}{path}", tc.s.teamcity_url))
            .basic_auth("admin", Some(TOKEN))
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(got, StatusCode::OK, "{path}");
    }
    let (status, _) = tc
        .raw("wrong", Method::GET, "/httpAuth/app/rest/users", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the prefix opens nothing");
}
