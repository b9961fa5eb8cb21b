//! What the mocks' end-to-end tests and the benches share: HTTP calls that keep the status and
//! the JSON, the SCIM calls every connector test makes (`ScimCalls`), the tests every connector
//! must pass alike (`connector`), and an endpoint that answers an IdP's joiners at once
//! (`answering_endpoint`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

pub mod connector;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A client for loopback servers.
#[derive(Debug)]
pub struct Http {
    client: Client,
}

impl Default for Http {
    fn default() -> Http {
        Http {
            client: scim::tls::ClientTls::default().client().unwrap(),
        }
    }
}

impl Http {
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A call to mock-idp's Okta API (`SSWS` token) that must succeed; its JSON answer.
    pub async fn okta(&self, method: Method, url: &str, token: &str, body: Value) -> Value {
        let resp = self
            .client
            .request(method, url)
            .header("authorization", format!("SSWS {token}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{url}: {status} {answer}");
        answer
    }

    /// Sets mock-idp (its Okta API at `idp`, API token `token`) to push in `dialect` to
    /// `scim_url` (bearer `token` too): an app that creates users, assigned the group "All".
    /// Returns the app's id and the group's: a user created in the group is pushed.
    pub async fn idp_pushing_to(
        &self,
        idp: &str,
        token: &str,
        scim_url: &str,
        dialect: &str,
    ) -> (String, String) {
        let api = |path: &str| format!("{idp}/api/v1{path}");
        let app = json!({"label": "load", "settings": {"app": {"scimDialect": dialect}}});
        let app = self.okta(Method::POST, &api("/apps"), token, app).await;
        let app = app["id"].as_str().unwrap().to_owned();
        let group = json!({"profile": {"name": "All"}});
        let group = self.okta(Method::POST, &api("/groups"), token, group).await;
        let group = group["id"].as_str().unwrap().to_owned();
        let steps = [
            (
                Method::PUT,
                format!("/apps/{app}/groups/{group}"),
                json!({}),
            ),
            (
                Method::POST,
                format!("/apps/{app}/connections/default?activate=true"),
                json!({"profile": {"authScheme": "TOKEN", "token": token}, "baseUrl": scim_url}),
            ),
            (
                Method::PUT,
                format!("/apps/{app}/features/USER_PROVISIONING"),
                json!({"capabilities": {"create": {"lifecycleCreate": {"status": "ENABLED"}}}}),
            ),
        ];
        for (method, path, body) in steps {
            self.okta(method, &api(&path), token, body).await;
        }
        (app, group)
    }

    /// Sends `body` as SCIM JSON with a bearer token, asking for JSON; the answer's body is its
    /// JSON, `Null` when empty, or else its text as a string.
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, url)
            .bearer_auth(token)
            .header("Accept", "application/json");
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/scim+json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let body = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(_) if text.is_empty() => Value::Null,
            Err(_) => Value::String(text),
        };
        (status, body)
    }
}

/// The SCIM calls of a connector test, on top of the one request a test world sends.
#[allow(async_fn_in_trait)] // test worlds only, never sent across threads
pub trait ScimCalls {
    async fn scim(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value);

    /// Creates a user with a work email; its id.
    async fn user(&self, name: &str) -> String {
        let (status, body) = self
            .scim(
                Method::POST,
                "/Users",
                Some(json!({"schemas": [USER], "userName": name, "externalId": format!("x-{name}"),
                    "name": {"givenName": "Given", "familyName": name},
                    "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Creates a group with these member ids; its id.
    async fn group(&self, name: &str, external_id: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let (status, body) = self
            .scim(
                Method::POST,
                "/Groups",
                Some(
                    json!({"schemas": [GROUP], "displayName": name, "externalId": external_id,
                    "members": members}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    async fn patch(&self, path: &str, ops: Value) -> (StatusCode, Value) {
        self.scim(
            Method::PATCH,
            path,
            Some(json!({"schemas": [PATCH], "Operations": ops})),
        )
        .await
    }

    /// Takes a member out of a group, by a value filter (as Okta and Entra both can).
    async fn remove_member(&self, group: &str, member: &str) -> (StatusCode, Value) {
        let path = format!("members[value eq \"{member}\"]");
        self.patch(
            &format!("/Groups/{group}"),
            json!([{"op": "remove", "path": path}]),
        )
        .await
    }

    async fn add_member(&self, group: &str, member: &str) -> (StatusCode, Value) {
        self.patch(
            &format!("/Groups/{group}"),
            json!([{"op": "add", "path": "members", "value": [{"value": member}]}]),
        )
        .await
    }

    /// Deactivates (a leaver) or reactivates (a rehire) a user.
    async fn set_active(&self, user: &str, active: bool) -> (StatusCode, Value) {
        self.patch(
            &format!("/Users/{user}"),
            json!([{"op": "replace", "path": "active", "value": active}]),
        )
        .await
    }
}

/// A SCIM endpoint that costs next to nothing, to measure what an IdP pushes: a search finds
/// nobody, a create gets a fresh id.
pub fn answering_endpoint() -> axum::Router {
    use axum::routing::get;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    let search = || async {
        axum::Json(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []}),
        )
    };
    let create = |axum::Json(mut body): axum::Json<Value>| async move {
        body["id"] = json!(format!("u{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)));
        (StatusCode::CREATED, axum::Json(body))
    };
    axum::Router::new().route("/Users", get(search).post(create))
}

/// `router`, counting the requests it gets in `requests` and waking `arrived` at each.
pub fn counted(
    router: axum::Router,
    requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
    arrived: std::sync::Arc<tokio::sync::Notify>,
) -> axum::Router {
    router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            arrived.notify_waiters();
            next.run(req)
        },
    ))
}
