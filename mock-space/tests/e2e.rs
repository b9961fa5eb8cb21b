//! The simulator and its SCIM connector over real HTTP on loopback: joiner, mover, leaver,
//! rehire, renames, overlapping grants, restart, audit chain, faults and quirks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use mock_space::{launch, Launched, Options, Policy};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use test_support::connector::{Connector, ProductCalls};
use test_support::{Http, ScimCalls, GROUP, USER};

const TOKEN: &str = "org-token";

fn default_policy() -> Policy {
    Policy::default_policy()
}

async fn start(data: Option<&Path>, policy: Policy) -> Launched {
    launch(Options {
        port: 0,
        token: TOKEN.into(),
        policy,
        serving: mock_space::Serving {
            data: data.map(Path::to_path_buf),
            scim_token: TOKEN.into(),
            durable: data.is_some(),
            lenient: true,
            ..Default::default()
        },
    })
    .await
    .unwrap()
}

struct World {
    s: Launched,
    http: Http,
}

impl ScimCalls for World {
    async fn scim(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.s.scim_url);
        self.http.call(method, &url, TOKEN, body).await
    }
}

impl ProductCalls for World {
    async fn product(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.space_as(TOKEN, method, path, body).await
    }
}

impl World {
    async fn new(policy: Policy) -> World {
        World {
            s: start(None, policy).await,
            http: Http::default(),
        }
    }

    async fn space(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.space_as(TOKEN, method, path, body).await
    }

    async fn space_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.s.space_url);
        self.http.call(method, &url, token, body).await
    }

    /// project key -> sorted roles, from the simulator's permission endpoint.
    async fn roles(&self, username: &str) -> Value {
        let body = self.sim_permissions(username).await;
        let mut out = serde_json::Map::new();
        for (project, access) in body["projects"].as_object().unwrap() {
            let roles: Vec<&String> = access["roles"].as_object().unwrap().keys().collect();
            out.insert(project.clone(), json!(roles));
        }
        Value::Object(out)
    }

    async fn may(&self, username: &str, project: &str, repo: &str) -> Vec<String> {
        let (_, body) = self
            .space(
                Method::GET,
                &format!(
                    "/_sim/permissions/username:{username}?project={project}&repository={repo}"
                ),
                None,
            )
            .await;
        serde_json::from_value(body["permissions"].clone()).unwrap()
    }

    async fn personal_token(&self, username: &str) -> String {
        let (status, body) = self
            .space(
                Method::POST,
                &format!("/api/http/team-directory/profiles/username:{username}/permanent-tokens"),
                Some(json!({"name": "laptop", "scope": "**"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["second"].as_str().unwrap().to_owned()
    }
}

test_support::connector_contract!(crate::World);

impl Connector for World {
    const OVERLAPPING_POLICY: &'static str = r#"
        [[rule]]
        group = { externalId = "a" }
        grants = [{ project = "BACKEND", role = "member" }]
        [[rule]]
        group = { externalId = "b" }
        grants = [{ project = "BACKEND", role = "member" }, { project = "WEB", role = "member" }]
        "#;

    async fn start(policy: Option<&str>, data: Option<&Path>) -> World {
        let policy = policy.map_or_else(default_policy, |p| Policy::parse(p).unwrap());
        World {
            s: start(data, policy).await,
            http: Http::default(),
        }
    }

    async fn stop(self) {
        self.s.stop().await;
    }

    /// `PROJECT:role by ROUTE`: a role two teams grant is there twice.
    async fn grants(&self, username: &str) -> BTreeSet<String> {
        let body = self.sim_permissions(username).await;
        let mut out = BTreeSet::new();
        for (project, access) in body["projects"].as_object().unwrap() {
            for (role, routes) in access["roles"].as_object().unwrap() {
                for route in routes.as_array().unwrap() {
                    out.insert(format!("{project}:{role} by {route}"));
                }
            }
        }
        out
    }

    async fn leave_behind(&self, username: &str, external_id: &str) {
        let (status, body) = self
            .space(
                Method::POST,
                "/api/http/team-directory/profiles",
                Some(json!({"username": username, "externalId": external_id,
                    "firstName": "Left", "lastName": "Behind"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn accounts(&self, username: &str) -> Vec<String> {
        let (status, profile) = self
            .space(
                Method::GET,
                &format!("/api/http/team-directory/profiles/username:{username}"),
                None,
            )
            .await;
        if status == StatusCode::NOT_FOUND {
            return Vec::new();
        }
        let name = &profile["name"];
        vec![format!(
            "{} {}",
            name["firstName"].as_str().unwrap(),
            name["lastName"].as_str().unwrap()
        )]
    }
}

#[tokio::test]
async fn joiner_mover_leaver_rehire() {
    let w = World::new(default_policy()).await;
    let ann = w.user("ann").await;
    let eng = w.group("Engineering", "engineering", &[&ann]).await;
    let platform = w.group("Platform", "platform", &[]).await;

    // Joiner: engineering grants BACKEND and WEB membership, nothing on INFRA.
    assert_eq!(
        w.roles("ann").await,
        json!({"BACKEND": ["member"], "WEB": ["member"]})
    );
    assert!(w
        .may("ann", "key:BACKEND", "api")
        .await
        .contains(&"repo.push".to_owned()));
    let token = w.personal_token("ann").await;
    let repo = |p: &str, r: &str| format!("/api/http/projects/key:{p}/repositories/{r}");
    let (status, _) = w
        .space_as(&token, Method::GET, &repo("BACKEND", "api"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w
        .space_as(&token, Method::GET, &repo("INFRA", "terraform"), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Mover: from engineering to platform, in Okta's and Entra's member-removal forms.
    let (status, body) = w.remove_member(&eng, &ann).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = w
        .patch(
            &format!("/Groups/{platform}"),
            json!([{"op": "Add", "path": "members", "value": [{"value": ann}]}]),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        w.roles("ann").await,
        json!({"BACKEND": ["collaborator"], "INFRA": ["admin"]})
    );
    let (status, _) = w
        .space_as(&token, Method::GET, &repo("INFRA", "terraform"), None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "repository rights moved with the team"
    );

    // Leaver, as Entra sends it: the token fails at once, the profile stays readable, no rights.
    let (status, body) = w
        .patch(
            &format!("/Users/{ann}"),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = w
        .space_as(&token, Method::GET, &repo("INFRA", "terraform"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, profile) = w
        .space(
            Method::GET,
            "/api/http/team-directory/profiles/username:ann",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(profile["archived"], true);
    assert!(profile["leftAt"].is_string());
    assert_eq!(w.roles("ann").await, json!({}));

    // Rehire: active again with the group's roles; the old token stays dead.
    let (status, _) = w
        .patch(
            &format!("/Users/{ann}"),
            json!([{"op": "replace", "value": {"active": true}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        w.roles("ann").await,
        json!({"BACKEND": ["collaborator"], "INFRA": ["admin"]})
    );
    let (status, _) = w
        .space_as(&token, Method::GET, &repo("INFRA", "terraform"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Deleting the user removes the profile and every right.
    let (status, _) = w.scim(Method::DELETE, &format!("/Users/{ann}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w
        .space(
            Method::GET,
            "/api/http/team-directory/profiles/username:ann",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    w.s.stop().await;
}

#[tokio::test]
async fn renames_follow_the_policy_key() {
    let w = World::new(default_policy()).await;
    let bob = w.user("bob").await;
    let eng = w.group("Engineering", "engineering", &[&bob]).await;
    let admins = w.group("Backend Admins", "ba", &[&bob]).await;
    assert_eq!(
        w.roles("bob").await,
        json!({"BACKEND": ["admin", "member"], "WEB": ["member"]})
    );
    // Matched by externalId: a rename changes the team's name, not the rights.
    let (status, _) = w
        .patch(
            &format!("/Groups/{eng}"),
            json!([{"op": "replace", "path": "displayName", "value": "Eng"}]),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, teams) = w
        .space(Method::GET, "/api/http/team-directory/teams", None)
        .await;
    let names: Vec<&str> = teams["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Eng"), "{names:?}");
    // Matched by displayName: the rename takes the admin role away.
    let (status, _) = w
        .patch(
            &format!("/Groups/{admins}"),
            json!([{"op": "replace", "path": "displayName", "value": "Former Admins"}]),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        w.roles("bob").await,
        json!({"BACKEND": ["member"], "WEB": ["member"]})
    );
    w.s.stop().await;
}

#[tokio::test]
async fn a_failed_native_call_leaves_nothing_half_applied() {
    let policy = Policy::parse(
        "[[rule]]\ngroup = { externalId = \"ghost\" }\ngrants = [{ project = \"BACKEND\", role = \"member\" }, { project = \"NOPE\", role = \"member\" }]",
    )
    .unwrap();
    let w = World::new(policy).await;
    let dee = w.user("dee").await;
    let (status, body) = w
        .scim(
            Method::POST,
            "/Groups",
            Some(
                json!({"schemas": [GROUP], "displayName": "Ghost", "externalId": "ghost",
                "members": [{"value": dee}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("NOPE"), "{body}");
    let (_, groups) = w.scim(Method::GET, "/Groups", None).await;
    assert_eq!(groups["totalResults"], 0);
    let (_, teams) = w
        .space(Method::GET, "/api/http/team-directory/teams", None)
        .await;
    assert_eq!(teams["totalCount"], 0, "the team was rolled back: {teams}");
    assert_eq!(
        w.roles("dee").await,
        json!({}),
        "the BACKEND grant was rolled back"
    );

    // Space failing: 503 with nothing stored, and the retry succeeds.
    let (status, _) = w
        .space(Method::PUT, "/_sim/faults", Some(json!({"rate5xx": 100.0})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = w
        .scim(
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": "eve"})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (_, users) = w
        .scim(Method::GET, "/Users?filter=userName%20eq%20%22eve%22", None)
        .await;
    assert_eq!(users["totalResults"], 0);
    w.space(Method::PUT, "/_sim/faults", Some(json!({}))).await;
    w.user("eve").await;
    w.s.stop().await;
}

#[tokio::test]
async fn a_changed_policy_applies_to_existing_groups_at_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let w = World {
            s: start(Some(dir.path()), default_policy()).await,
            http: Http::default(),
        };
        let ann = w.user("ann").await;
        w.group("Engineering", "engineering", &[&ann]).await;
        assert_eq!(
            w.roles("ann").await,
            json!({"BACKEND": ["member"], "WEB": ["member"]})
        );
        w.s.stop().await;
    }
    let policy = Policy::parse(
        "[[rule]]\ngroup = { externalId = \"engineering\" }\ngrants = [{ project = \"INFRA\", role = \"admin\" }]",
    )
    .unwrap();
    let w = World {
        s: start(Some(dir.path()), policy).await,
        http: Http::default(),
    };
    assert_eq!(w.roles("ann").await, json!({"INFRA": ["admin"]}));
    w.s.stop().await;
}

#[tokio::test]
async fn audit_events_chain_and_stream() {
    let w = World::new(default_policy()).await;
    let ann = w.user("ann").await;
    w.group("Engineering", "engineering", &[&ann]).await;
    let (_, page) = w.space(Method::GET, "/_sim/events?after=0", None).await;
    let kinds: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in [
        "profile.created",
        "team.created",
        "membership.created",
        "access.granted",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let (_, chain) = w.space(Method::GET, "/_sim/events/verify", None).await;
    assert_eq!(chain["valid"], true);
    assert_eq!(chain["events"].as_u64().unwrap() as usize, kinds.len());

    // The stream replays stored events first.
    let resp = w
        .http
        .client()
        .get(format!("{}/_sim/events?follow=true", w.s.space_url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut resp = resp;
    let mut seen = String::new();
    while !seen.contains("event: access.granted") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), resp.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: profile.created"));
    drop(resp);
    w.s.stop().await;
}

#[tokio::test]
async fn faults_and_quirks_switch_on_and_off() {
    let w = World::new(default_policy()).await;
    let profiles = "/api/http/team-directory/profiles";
    for (faults, expected) in [
        (json!({"rate429": 100.0}), StatusCode::TOO_MANY_REQUESTS),
        (json!({"rate5xx": 100.0}), StatusCode::SERVICE_UNAVAILABLE),
    ] {
        w.space(Method::PUT, "/_sim/faults", Some(faults)).await;
        let (status, _) = w.space(Method::GET, profiles, None).await;
        assert_eq!(status, expected);
    }
    w.space(Method::PUT, "/_sim/faults", Some(json!({"drop": 100.0})))
        .await;
    let cut = match w
        .http
        .client()
        .get(format!("{}{profiles}", w.s.space_url))
        .bearer_auth(TOKEN)
        .send()
        .await
    {
        Ok(resp) => resp.text().await.map(drop),
        Err(e) => Err(e),
    };
    assert!(cut.is_err(), "the connection should break off");
    w.space(Method::PUT, "/_sim/faults", Some(json!({"latencyMs": 150})))
        .await;
    let started = std::time::Instant::now();
    let (status, _) = w.space(Method::GET, profiles, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    let (status, _) = w
        .space(Method::PUT, "/_sim/faults", Some(json!({"rate5xx": 150.0})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    w.space(Method::PUT, "/_sim/faults", Some(json!({}))).await;

    // The quirk keeps a leaver's token alive.
    let (status, _) = w
        .space(
            Method::PUT,
            "/_sim/quirks",
            Some(json!(["deactivate-keeps-tokens"])),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let ann = w.user("ann").await;
    let token = w.personal_token("ann").await;
    w.set_active(&ann, false).await;
    let me = "/api/http/team-directory/profiles/me";
    let (status, _) = w.space_as(&token, Method::GET, me, None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the quirk leaves the leaver's token working"
    );
    w.space(Method::PUT, "/_sim/quirks", Some(json!([]))).await;
    let (status, _) = w.space_as(&token, Method::GET, me, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "once the quirk is off, the token the leaver kept is refused"
    );
    let (_, events) = w.space(Method::GET, "/_sim/events?after=0", None).await;
    let deactivated = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "profile.deactivated")
        .unwrap();
    assert_eq!(deactivated["data"]["revokedTokens"], json!([]));
    let (status, body) = w
        .space(Method::PUT, "/_sim/quirks", Some(json!(["no-such-quirk"])))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (_, metrics) = (
        (),
        w.http
            .client()
            .get(format!("{}/_sim/metrics", w.s.space_url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    // Read by a Prometheus text parser nobody here wrote: every line a sample, typed as declared.
    let lines = metrics.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let sample_lines = metrics
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(scrape.samples.len(), sample_lines, "{metrics}");
    let throttled = scrape.samples.iter().find(|s| {
        s.metric == "mock_space_http_requests_total"
            && s.labels.get("method") == Some("GET")
            && s.labels.get("route") == Some("/team-directory")
            && s.labels.get("status") == Some("429")
    });
    assert_eq!(
        throttled.map(|s| &s.value),
        Some(&prometheus_parse::Value::Counter(1.0)),
        "{metrics}"
    );
    assert!(
        scrape
            .samples
            .iter()
            .all(|s| scrape.docs.contains_key(&s.metric)),
        "every sample has its HELP: {metrics}"
    );
    w.s.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let w = World::new(default_policy()).await;
    let profiles = "/api/http/team-directory/profiles";
    let (status, body) = w.space_as("wrong", Method::GET, profiles, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "authentication-required");
    let (status, body) = w
        .space(Method::POST, profiles, Some(json!({"firstName": "x"})))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("validation-error"))
    );
    let (status, _) = w.space(Method::POST, profiles, Some(json!("[[["))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = w
        .space(Method::GET, &format!("{profiles}/phone:123"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = w
        .space(Method::GET, &format!("{profiles}?$top=many"), None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("validation-error")),
        "{body}"
    );
    let (status, body) = w.space(Method::PUT, profiles, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method-not-allowed"))
    );
    let (status, body) = w.space(Method::GET, "/api/http/nowhere", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not-found"))
    );
    let (status, _) = w
        .space(
            Method::POST,
            profiles,
            Some(json!({"username": "a", "emails": ["nope"]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    w.space(Method::POST, profiles, Some(json!({"username": "a"})))
        .await;
    let (status, _) = w
        .space(Method::POST, profiles, Some(json!({"username": "A"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = w
        .space(
            Method::POST,
            "/api/http/projects/key:BACKEND/access/owners/profiles",
            Some(json!({"profile": "username:a"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w
        .space(
            Method::POST,
            "/api/http/projects/key:BACKEND/access/members/robots",
            Some(json!({"profile": "username:a"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = w
        .space(
            Method::POST,
            "/api/http/projects/key:BACKEND/access/members/teams",
            Some(json!({"profile": "username:a"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = w
        .space(
            Method::DELETE,
            "/api/http/projects/key:BACKEND/access/members/profiles/username:a",
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "nothing granted, nothing to revoke"
    );
    let (status, body) = w
        .space(
            Method::GET,
            "/_sim/permissions/username:a?repository=api",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // A team cannot be placed under its own subteam.
    let (_, parent) = w
        .space(
            Method::POST,
            "/api/http/team-directory/teams",
            Some(json!({"name": "P"})),
        )
        .await;
    let pid = parent["id"].as_str().unwrap();
    let (_, child) = w
        .space(
            Method::POST,
            "/api/http/team-directory/teams",
            Some(json!({"name": "C", "parentId": pid})),
        )
        .await;
    let (status, _) = w
        .space(
            Method::PATCH,
            &format!("/api/http/team-directory/teams/{pid}"),
            Some(json!({"parentId": child["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A personal token may read but not change the organisation.
    let token = w.personal_token("a").await;
    let (status, _) = w
        .space_as(
            &token,
            Method::POST,
            profiles,
            Some(json!({"username": "b"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, me) = w
        .space_as(&token, Method::GET, &format!("{profiles}/me"), None)
        .await;
    assert_eq!(
        (status, me["username"].as_str()),
        (StatusCode::OK, Some("a"))
    );
    w.s.stop().await;
}

#[tokio::test]
async fn a_parent_team_grant_reaches_subteam_members() {
    let w = World::new(Policy::default()).await;
    let teams = "/api/http/team-directory/teams";
    let (_, parent) = w
        .space(Method::POST, teams, Some(json!({"name": "Eng"})))
        .await;
    let (_, child) = w
        .space(
            Method::POST,
            teams,
            Some(json!({"name": "Eng-Web", "parentId": parent["id"]})),
        )
        .await;
    w.space(
        Method::POST,
        "/api/http/team-directory/profiles",
        Some(json!({"username": "kid"})),
    )
    .await;
    w.space(
        Method::POST,
        "/api/http/team-directory/memberships",
        Some(json!({"member": "username:kid", "teamId": child["id"]})),
    )
    .await;
    let (status, _) = w
        .space(
            Method::POST,
            "/api/http/projects/key:INFRA/access/admins/teams",
            Some(json!({"teamId": parent["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(w.roles("kid").await, json!({"INFRA": ["admin"]}));
    let (_, perms) = w
        .space(Method::GET, "/_sim/permissions/username:kid", None)
        .await;
    assert_eq!(
        perms["projects"]["INFRA"]["roles"]["admin"],
        json!([format!("team:{}", parent["id"].as_str().unwrap())])
    );
    w.s.stop().await;
}

#[tokio::test]
async fn a_parent_given_as_id_colon_is_stored_bare_and_cycles_are_refused() {
    let w = World::new(Policy::default()).await;
    let teams = "/api/http/team-directory/teams";
    let (_, parent) = w
        .space(Method::POST, teams, Some(json!({"name": "Ops"})))
        .await;
    let parent_id = parent["id"].as_str().unwrap().to_owned();
    let (status, child) = w
        .space(
            Method::POST,
            teams,
            Some(json!({"name": "Ops-Db", "parentId": format!("id:{parent_id}")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{child}");
    assert_eq!(child["parentId"], json!(parent_id), "stored without 'id:'");
    let child_id = child["id"].as_str().unwrap();
    // Ops under its own child, named either way: both refused.
    for reference in [child_id.to_owned(), format!("id:{child_id}")] {
        let (status, body) = w
            .space(
                Method::PATCH,
                &format!("{teams}/{parent_id}"),
                Some(json!({"parentId": reference})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reference}: {body}");
    }
    // And inheritance works through the stored id.
    w.space(
        Method::POST,
        "/api/http/team-directory/profiles",
        Some(json!({"username": "dba"})),
    )
    .await;
    w.space(
        Method::POST,
        "/api/http/team-directory/memberships",
        Some(json!({"member": "username:dba", "teamId": child_id})),
    )
    .await;
    w.space(
        Method::POST,
        "/api/http/projects/key:INFRA/access/admins/teams",
        Some(json!({"teamId": parent_id})),
    )
    .await;
    assert_eq!(w.roles("dba").await, json!({"INFRA": ["admin"]}));
    w.s.stop().await;
}
