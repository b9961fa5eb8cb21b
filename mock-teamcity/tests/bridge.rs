//! The SCIM bridge in front of the simulator, over real HTTP: joiner, mover, leaver (no
//! orphaned tokens or stale roles), rehire, renames, overlapping grants, roll-back, restart.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::BTreeSet;
use std::path::Path;

use mock_teamcity::{launch, Launched, Options, Policy, Target};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use test_support::connector::{Connector, ProductCalls};
use test_support::{Http, ScimCalls, GROUP, USER};

const TOKEN: &str = "admin-token";

struct World {
    s: Launched,
    http: Http,
}

impl ScimCalls for World {
    async fn scim(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.send(TOKEN, method, format!("{}{path}", self.s.scim_url), body)
            .await
    }
}

impl ProductCalls for World {
    async fn product(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.tc(method, path, body).await
    }
}

impl World {
    async fn new(data: Option<&Path>, policy: Policy) -> World {
        let s = launch(Options {
            target: Target::Simulator { port: 0 },
            token: TOKEN.into(),
            policy,
            serving: mock_teamcity::Serving {
                data: data.map(Path::to_path_buf),
                scim_token: TOKEN.into(),
                durable: data.is_some(),
                lenient: true,
                ..Default::default()
            },
        })
        .await
        .unwrap();
        World {
            s,
            http: Http::default(),
        }
    }

    async fn send(
        &self,
        token: &str,
        method: Method,
        url: String,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.http.call(method, &url, token, body).await
    }

    async fn tc(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.send(
            TOKEN,
            method,
            format!("{}{path}", self.s.teamcity_url),
            body,
        )
        .await
    }

    /// project -> sorted permissions that come from roles, plus "global" for global ones.
    async fn perms(&self, username: &str) -> Value {
        let body = self.sim_permissions(username).await;
        json!({"global": body["global"], "projects": body["projects"]})
    }

    async fn may(&self, username: &str, project: &str, permission: &str) -> bool {
        let p = self.perms(username).await;
        p["projects"][project]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == permission))
    }
}

test_support::connector_contract!(crate::World);

impl Connector for World {
    const OVERLAPPING_POLICY: &'static str = "[[rule]]\ngroup = { externalId = \"a\" }\ngrants = [{ role = \"PROJECT_DEVELOPER\", scope = \"p:Web\" }]\n[[rule]]\ngroup = { externalId = \"b\" }\ngrants = [{ role = \"PROJECT_DEVELOPER\", scope = \"p:Web\" }, { role = \"PROJECT_VIEWER\", scope = \"p:Backend\" }]";

    async fn start(policy: Option<&str>, data: Option<&Path>) -> World {
        let policy = policy.map_or_else(Policy::default_policy, |p| Policy::parse(p).unwrap());
        World::new(data, policy).await
    }

    async fn stop(self) {
        self.s.stop().await;
    }

    /// `PROJECT:permission`, and `global:permission`.
    async fn grants(&self, username: &str) -> BTreeSet<String> {
        let perms = self.perms(username).await;
        let mut out: BTreeSet<String> = perms["global"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| format!("global:{}", p.as_str().unwrap()))
            .collect();
        for (project, granted) in perms["projects"].as_object().unwrap() {
            for p in granted.as_array().unwrap() {
                out.insert(format!("{project}:{}", p.as_str().unwrap()));
            }
        }
        out
    }

    async fn leave_behind(&self, username: &str, external_id: &str) {
        let (status, body) = self
            .tc(
                Method::POST,
                "/app/rest/users",
                Some(json!({"username": username, "name": "Left Behind",
                    "properties": {"property": [{"name": "scim.externalId", "value": external_id}]}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn accounts(&self, username: &str) -> Vec<String> {
        let (_, users) = self.tc(Method::GET, "/app/rest/users", None).await;
        users["user"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["username"] == username)
            .map(|u| u["name"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

#[tokio::test]
async fn joiner_mover_leaver_rehire() {
    let w = World::new(None, Policy::default_policy()).await;
    let ann = w.user("ann").await;
    let eng = w.group("Engineering", "engineering", &[&ann]).await;
    let platform = w.group("Platform", "platform", &[]).await;

    // Joiner: the user exists in TeamCity with the mapped fields, and develops on Backend.
    let (status, user) = w
        .tc(Method::GET, "/app/rest/users/username:ann", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (user["name"].as_str(), user["email"].as_str()),
        (Some("Given ann"), Some("ann@example.com"))
    );
    assert_eq!(
        user["properties"]["property"][0],
        json!({"name": "scim.externalId", "value": "x-ann"})
    );
    assert!(
        w.may("ann", "Backend_Api", "run_build").await,
        "a project role reaches subprojects"
    );
    assert!(w.may("ann", "Web", "view_project").await);
    assert!(!w.may("ann", "Backend", "edit_project").await);

    // Mover.
    w.remove_member(&eng, &ann).await;
    let (status, body) = w.add_member(&platform, &ann).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(w.may("ann", "Backend", "edit_project").await);
    assert!(!w.may("ann", "Web", "view_project").await);
    assert_eq!(w.perms("ann").await["global"], json!(["administer_agent"]));

    // A token, a role and a group of the user's own, which the leaver must lose too.
    w.tc(
        Method::POST,
        "/app/rest/userGroups",
        Some(json!({"key": "NATIVE", "name": "Native"})),
    )
    .await;
    w.tc(
        Method::POST,
        "/app/rest/users/username:ann/groups",
        Some(json!({"key": "NATIVE"})),
    )
    .await;
    let (_, token) = w
        .tc(
            Method::POST,
            "/app/rest/users/username:ann/tokens",
            Some(json!({"name": "laptop"})),
        )
        .await;
    let token = token["value"].as_str().unwrap().to_owned();
    w.tc(
        Method::PUT,
        "/app/rest/users/username:ann/roles/PROJECT_VIEWER/p:Web",
        None,
    )
    .await;
    let (status, _) = w
        .send(
            &token,
            Method::GET,
            format!("{}/app/rest/users/current", w.s.teamcity_url),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Leaver, as Entra sends it.
    let (status, body) = w
        .patch(
            &format!("/Users/{ann}"),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = w
        .send(
            &token,
            Method::GET,
            format!("{}/app/rest/users/current", w.s.teamcity_url),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no orphaned token");
    assert_eq!(
        w.perms("ann").await,
        json!({"global": [], "projects": {}}),
        "no stale role"
    );
    let (status, user) = w
        .tc(Method::GET, "/app/rest/users/username:ann", None)
        .await;
    assert_eq!(status, StatusCode::OK, "the user stays readable");
    assert_eq!(user["groups"]["count"], 0);
    // A leaver added to a group stays out of it in TeamCity until rehired.
    w.add_member(&eng, &ann).await;
    assert_eq!(w.perms("ann").await["projects"], json!({}));

    // Rehire: exactly what the leaver lost, except the token: back in both groups SCIM lists
    // now and the native group, with the own role.
    let (status, _) = w
        .patch(
            &format!("/Users/{ann}"),
            json!([{"op": "replace", "value": {"active": true}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(w.may("ann", "Backend", "edit_project").await);
    let (_, user) = w
        .tc(Method::GET, "/app/rest/users/username:ann", None)
        .await;
    let mut keys: Vec<&str> = user["groups"]["group"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert_eq!(keys[0], "NATIVE");
    assert_eq!(
        user["roles"]["role"][0]["roleId"], "PROJECT_VIEWER",
        "the own role is back: {user}"
    );
    let (status, _) = w
        .send(
            &token,
            Method::GET,
            format!("{}/app/rest/users/current", w.s.teamcity_url),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the token stays revoked");

    // Delete.
    let (status, _) = w.scim(Method::DELETE, &format!("/Users/{ann}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w
        .tc(Method::GET, "/app/rest/users/username:ann", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    w.s.stop().await;
}

#[tokio::test]
async fn renames_overlaps_and_group_deletion() {
    let w = World::new(None, Policy::default_policy()).await;
    let bob = w.user("bob").await;
    let eng = w.group("Engineering", "engineering", &[&bob]).await;
    let admins = w.group("TeamCity Admins", "tca", &[&bob]).await;
    assert!(w.perms("bob").await["global"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "create_user"));
    // By externalId: the rename reaches TeamCity's group name, the key and roles stay.
    w.patch(
        &format!("/Groups/{eng}"),
        json!([{"op": "replace", "path": "displayName", "value": "Eng"}]),
    )
    .await;
    let key = format!("SCIM_{}", eng.replace('-', "").to_uppercase());
    let (_, group) = w
        .tc(
            Method::GET,
            &format!("/app/rest/userGroups/key:{key}"),
            None,
        )
        .await;
    assert_eq!(group["name"], "Eng");
    assert!(w.may("bob", "Backend", "run_build").await);
    // By displayName: the rename removes the system-admin role.
    w.patch(
        &format!("/Groups/{admins}"),
        json!([{"op": "replace", "path": "displayName", "value": "Former Admins"}]),
    )
    .await;
    assert!(!w.perms("bob").await["global"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "create_user"));
    let (status, _) = w
        .scim(Method::DELETE, &format!("/Groups/{eng}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!w.may("bob", "Backend", "run_build").await);
    let (status, _) = w
        .tc(
            Method::GET,
            &format!("/app/rest/userGroups/key:{key}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    w.s.stop().await;
}

#[tokio::test]
async fn failures_roll_back() {
    let policy = Policy::parse(
        "[[rule]]\ngroup = { externalId = \"ghost\" }\ngrants = [{ role = \"PROJECT_VIEWER\", scope = \"p:Web\" }, { role = \"PROJECT_VIEWER\", scope = \"p:Nope\" }]",
    )
    .unwrap();
    let w = World::new(None, policy).await;
    let dee = w.user("dee").await;
    let (status, body) = w
        .scim(Method::POST, "/Groups", Some(json!({"schemas": [GROUP], "displayName": "Ghost", "externalId": "ghost", "members": [{"value": dee}]})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, groups) = w.tc(Method::GET, "/app/rest/userGroups", None).await;
    assert_eq!(
        groups["count"], 0,
        "the TeamCity group was rolled back: {groups}"
    );
    assert_eq!(w.perms("dee").await["projects"], json!({}));
    // TeamCity down: 503, nothing stored.
    w.tc(Method::PUT, "/_sim/faults", Some(json!({"rate5xx": 100.0})))
        .await;
    let (status, _) = w
        .scim(
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": "eve"})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    w.tc(Method::PUT, "/_sim/faults", Some(json!({}))).await;
    let (_, users) = w
        .scim(Method::GET, "/Users?filter=userName%20eq%20%22eve%22", None)
        .await;
    assert_eq!(users["totalResults"], 0);
    // Duplicate username in TeamCity -> 409.
    w.tc(
        Method::POST,
        "/app/rest/users",
        Some(json!({"username": "native-only"})),
    )
    .await;
    let (status, _) = w
        .scim(
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": "native-only"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    w.s.stop().await;
}

#[tokio::test]
async fn the_token_quirk_leaves_a_leavers_token_working() {
    let w = World::new(None, Policy::default_policy()).await;
    let (status, _) = w
        .tc(
            Method::PUT,
            "/_sim/quirks",
            Some(json!(["token-delete-ignored"])),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let eve = w.user("eve").await;
    let (_, token) = w
        .tc(
            Method::POST,
            "/app/rest/users/username:eve/tokens",
            Some(json!({"name": "t"})),
        )
        .await;
    let token = token["value"].as_str().unwrap().to_owned();
    let (status, _) = w.set_active(&eve, false).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w
        .send(
            &token,
            Method::GET,
            format!("{}/app/rest/users/current", w.s.teamcity_url),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the quirk keeps the token alive");
    w.s.stop().await;
}

#[tokio::test]
async fn direct_roles_by_policy_follow_membership_as_a_union() {
    let policy = Policy::parse(
        "[[rule]]\ngroup = { externalId = \"a\" }\ngrants = [{ role = \"PROJECT_DEVELOPER\", scope = \"p:Web\", on = \"members\" }]\n[[rule]]\ngroup = { externalId = \"b\" }\ngrants = [{ role = \"PROJECT_DEVELOPER\", scope = \"p:Web\", on = \"members\" }]",
    )
    .unwrap();
    let w = World::new(None, policy).await;
    let fay = w.user("fay").await;
    let a = w.group("A", "a", &[&fay]).await;
    let b = w.group("B", "b", &[&fay]).await;
    let own_roles = || async {
        let (_, roles) = w
            .tc(Method::GET, "/app/rest/users/username:fay/roles", None)
            .await;
        roles["role"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{}@{}",
                    r["roleId"].as_str().unwrap(),
                    r["scope"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        own_roles().await,
        ["PROJECT_DEVELOPER@p:Web"],
        "assigned to the user, not the group"
    );
    let key = format!("SCIM_{}", a.replace('-', "").to_uppercase());
    let (_, group_roles) = w
        .tc(
            Method::GET,
            &format!("/app/rest/userGroups/key:{key}/roles"),
            None,
        )
        .await;
    assert_eq!(group_roles["role"], json!([]));
    w.patch(
        &format!("/Groups/{a}"),
        json!([{"op": "remove", "path": "members"}]),
    )
    .await;
    assert_eq!(
        own_roles().await,
        ["PROJECT_DEVELOPER@p:Web"],
        "group B still grants it"
    );
    let (status, _) = w.scim(Method::DELETE, &format!("/Groups/{b}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(own_roles().await.is_empty(), "no group grants it any more");
    assert!(!w.may("fay", "Web", "run_build").await);
    w.s.stop().await;
}

/// The bridge in front of a TeamCity in another server (as in production), each restarted on
/// its own: both keep their state and the bridge's links still reach the right objects.
#[tokio::test]
async fn bridge_and_teamcity_restart_independently() {
    let (dir_tc, dir_bridge) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let start_tc = |port: u16| {
        let data = dir_tc.path().to_path_buf();
        async move {
            World {
                s: launch(Options {
                    target: Target::Simulator { port },
                    token: TOKEN.into(),
                    policy: Policy::default(),
                    serving: mock_teamcity::Serving {
                        data: Some(data),
                        scim_token: TOKEN.into(),
                        durable: true,
                        lenient: false,
                        ..Default::default()
                    },
                })
                .await
                .unwrap(),
                http: Http::default(),
            }
        }
    };
    let start_bridge = |url: String| {
        let data = dir_bridge.path().to_path_buf();
        async move {
            World {
                s: launch(Options {
                    target: Target::Remote {
                        url,
                        token: TOKEN.into(),
                    },
                    token: TOKEN.into(),
                    policy: Policy::default_policy(),
                    serving: mock_teamcity::Serving {
                        data: Some(data),
                        scim_token: TOKEN.into(),
                        durable: true,
                        lenient: false,
                        ..Default::default()
                    },
                })
                .await
                .unwrap(),
                http: Http::default(),
            }
        }
    };
    let tc = start_tc(0).await;
    let tc_url = tc.s.teamcity_url.clone();
    let port: u16 = tc_url.rsplit(':').next().unwrap().parse().unwrap();
    let bridge = start_bridge(tc_url.clone()).await;
    assert!(bridge.s.teamcity.is_none());
    let gus = bridge.user("gus").await;
    let eng = bridge.group("Engineering", "engineering", &[&gus]).await;
    assert!(tc.may("gus", "Backend", "run_build").await);

    bridge.s.stop().await;
    let bridge = start_bridge(tc_url.clone()).await;
    let (status, _) = bridge
        .patch(
            &format!("/Groups/{eng}"),
            json!([{"op": "remove", "path": "members"}]),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        !tc.may("gus", "Backend", "run_build").await,
        "the restarted bridge reached the group"
    );

    tc.s.stop().await;
    let tc = start_tc(port).await;
    assert_eq!(tc.s.teamcity_url, tc_url);
    let (status, _) = tc
        .tc(Method::GET, "/app/rest/users/username:gus", None)
        .await;
    assert_eq!(status, StatusCode::OK, "TeamCity kept its users");
    let (status, body) = bridge.add_member(&eng, &gus).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(tc.may("gus", "Backend", "run_build").await);
    bridge.s.stop().await;
    tc.s.stop().await;
}

/// After a TeamCity reset the ids start again at 1, so the bridge's stored link may name
/// another person's account: the bridge must then change nobody.
#[tokio::test]
async fn a_stale_link_never_reaches_another_persons_account() {
    let w = World::new(None, Policy::default_policy()).await;
    let ann = w.user("ann").await;
    let gid = w.group("Devs", "devs", &[&ann]).await;
    let (status, _) = w.tc(Method::POST, "/_sim/reset", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, bob) = w
        .tc(
            Method::POST,
            "/app/rest/users",
            Some(json!({"username": "bob", "name": "Bob Native"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{bob}");
    let bob_id = bob["id"].as_u64().unwrap();
    let (_, ann_link) = w.scim(Method::GET, &format!("/Users/{ann}"), None).await;
    assert!(ann_link["id"].is_string());

    // A rename of ann: refused, and bob keeps his name.
    let (status, body) = w
        .patch(
            &format!("/Users/{ann}"),
            json!([{"op": "replace", "path": "displayName", "value": "Ann Renamed"}]),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("behind the connector"),
        "{body}"
    );
    let (_, seen) = w
        .tc(Method::GET, &format!("/app/rest/users/id:{bob_id}"), None)
        .await;
    assert_eq!(seen["username"], "bob");
    assert_eq!(seen["name"], "Bob Native");

    // A leaver: refused; bob keeps his account.
    let (status, _) = w.set_active(&ann, false).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // A member removal from a group: nobody's groups change; the delete of ann: bob stays.
    let (status, _) = w.remove_member(&gid, &ann).await;
    assert!(
        status.is_success() || status == StatusCode::CONFLICT,
        "{status}"
    );
    let (status, _) = w.scim(Method::DELETE, &format!("/Users/{ann}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, seen) = w
        .tc(Method::GET, &format!("/app/rest/users/id:{bob_id}"), None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "bob must survive ann's delete: {seen}"
    );
    assert_eq!(seen["username"], "bob");
    w.s.stop().await;
}

/// scim2-tester's `object_replacement` found this: a PUT that renames *and* deactivates reached
/// the leaver's calls under the old username, which TeamCity no longer answers to (404).
#[tokio::test]
async fn a_replacement_that_renames_and_deactivates_strips_the_renamed_account() {
    let w = World::new(None, Policy::default_policy()).await;
    let cid = w.user("cid").await;
    w.group("Engineering", "engineering", &[&cid]).await;
    assert!(w.may("cid", "Backend", "run_build").await);
    let replace = |user_name: &str, active: bool| json!({"schemas": [USER], "userName": user_name, "externalId": "x-cid", "active": active});
    let (status, body) = w
        .scim(
            Method::PUT,
            &format!("/Users/{cid}"),
            Some(replace("cid-left", false)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, groups) = w
        .tc(
            Method::GET,
            "/app/rest/users/username:cid-left/groups",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{groups}");
    assert_eq!(groups["group"], json!([]), "the renamed leaver is stripped");
    let (status, _) = w
        .tc(Method::GET, "/app/rest/users/username:cid", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The rehire under a third name gets the group back.
    let (status, body) = w
        .scim(
            Method::PUT,
            &format!("/Users/{cid}"),
            Some(replace("cid-back", true)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(w.may("cid-back", "Backend", "run_build").await);
    w.s.stop().await;
}
