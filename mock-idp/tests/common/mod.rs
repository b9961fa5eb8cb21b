//! A recording SCIM server (the `scim` engine behind a middleware that logs every request and
//! can answer scripted failures first) and a client for the IdP's API.

#![allow(dead_code)] // each test binary uses its own share of the helpers

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mock_idp::{launch, EngineConfig, Launched, Options};
use scim::{app, AppState, Provider, ProviderConfig};
use serde_json::{json, Value};

pub const SCIM_TOKEN: &str = "scim-token";
pub const IDP_TOKEN: &str = "idp-token";

#[derive(Debug, Default)]
pub struct Tape {
    pub requests: Mutex<Vec<Value>>,
    /// Answers given instead of the engine's, in order: (status, Retry-After).
    pub failures: Mutex<VecDeque<(u16, Option<&'static str>)>>,
    pub delay: Mutex<Duration>,
}

impl Tape {
    pub fn take(&self) -> Vec<Value> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }

    pub fn fail_next(&self, answers: &[(u16, Option<&'static str>)]) {
        self.failures
            .lock()
            .unwrap()
            .extend(answers.iter().copied());
    }
}

async fn record(State(tape): State<Arc<Tape>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    tape.requests.lock().unwrap().push(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or_default(),
        "authorization": header("authorization"),
        "contentType": header("content-type"),
        "userAgent": header("user-agent"),
        "body": serde_json::from_slice::<Value>(&bytes).ok(),
    }));
    let delay = *tape.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let failure = tape.failures.lock().unwrap().pop_front();
    if let Some((status, retry_after)) = failure {
        let mut resp = (
            axum::http::StatusCode::from_u16(status).unwrap(),
            "injected failure",
        )
            .into_response();
        if let Some(r) = retry_after {
            resp.headers_mut().insert("retry-after", r.parse().unwrap());
        }
        return resp;
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// A SCIM engine on 127.0.0.1:0 that records what it is sent.
pub struct Recorder {
    pub url: String,
    pub tape: Arc<Tape>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    pub async fn start() -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let provider = Provider::temporary(ProviderConfig {
            base_url: url.clone(),
            // Entra sends "True"/"False".
            leniency: scim::resource::Leniency {
                boolean_strings: true,
            },
            ..Default::default()
        })
        .unwrap();
        let tape = Arc::new(Tape::default());
        let router = app(AppState {
            provider,
            tokens: vec![SCIM_TOKEN.into()],
            oauth: None,
        })
        .layer(axum::middleware::from_fn_with_state(tape.clone(), record));
        let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Recorder { url, tape, task }
    }

    pub async fn get(&self, path: &str) -> Value {
        scim::tls::ClientTls::default()
            .client()
            .unwrap()
            .get(format!("{}{path}", self.url))
            .bearer_auth(SCIM_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn users(&self) -> Vec<Value> {
        self.get("/Users?count=1000")
            .await
            .get("Resources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }
}

pub fn fast_engine() -> EngineConfig {
    EngineConfig {
        max_attempts: 4,
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(200),
        ..EngineConfig::default()
    }
}

pub async fn start_idp(engine: EngineConfig) -> Launched {
    launch(Options {
        sim_token: None,
        tls: Default::default(),
        oauth: None,
        port: 0,
        data: None,
        token: IDP_TOKEN.into(),
        durable: false,
        engine,
    })
    .await
    .unwrap()
}

/// The IdP's management API.
#[derive(Debug, Clone)]
pub struct Api {
    pub url: String,
    client: reqwest::Client,
}

impl Api {
    pub fn new(url: &str) -> Api {
        Api {
            url: url.to_owned(),
            client: scim::tls::ClientTls::default().client().unwrap(),
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .header("authorization", format!("SSWS {IDP_TOKEN}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Calls and insists on a 2xx answer.
    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    pub async fn hire(&self, login: &str, first: &str, last: &str) -> String {
        let v = self
            .ok(
                "POST",
                "/api/v1/users?activate=true",
                Some(json!({"profile": {"login": login, "email": login,
                    "firstName": first, "lastName": last}})),
            )
            .await;
        v["id"].as_str().unwrap().to_owned()
    }

    /// An app pushing to `scim_url` in `dialect`, with every provisioning feature on.
    /// A partial profile update (`POST /api/v1/users/{id}`).
    pub async fn update_profile(&self, user: &str, profile: Value) -> Value {
        let path = format!("/api/v1/users/{user}");
        self.ok("POST", &path, Some(json!({"profile": profile})))
            .await
    }

    /// Assigns `user` to `app` directly.
    pub async fn assign(&self, app: &str, user: &str) -> Value {
        let body = json!({"id": user, "scope": "USER"});
        self.ok("POST", &format!("/api/v1/apps/{app}/users"), Some(body))
            .await
    }

    /// The target's id for `user` in `app` (the app user's `externalId`).
    pub async fn target_id(&self, app: &str, user: &str) -> String {
        let path = format!("/api/v1/apps/{app}/users/{user}");
        let app_user = self.ok("GET", &path, None).await;
        app_user["externalId"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn scim_app(&self, label: &str, dialect: &str, scim_url: &str) -> String {
        let app = self
            .ok(
                "POST",
                "/api/v1/apps",
                Some(json!({"label": label, "settings": {"app": {"scimDialect": dialect}}})),
            )
            .await;
        let id = app["id"].as_str().unwrap().to_owned();
        self.ok(
            "POST",
            &format!("/api/v1/apps/{id}/connections/default?activate=true"),
            Some(json!({"profile": {"authScheme": "TOKEN", "token": SCIM_TOKEN}, "baseUrl": scim_url})),
        )
        .await;
        self.ok(
            "PUT",
            &format!("/api/v1/apps/{id}/features/USER_PROVISIONING"),
            Some(json!({"capabilities": {"create": {"lifecycleCreate": {"status": "ENABLED"}},
                "update": {"profile": {"status": "ENABLED"}, "lifecycleDeactivate": {"status": "ENABLED"}}}})),
        )
        .await;
        id
    }

    pub async fn outbox(&self, app: &str) -> Vec<Value> {
        self.ok("GET", &format!("/api/v1/apps/{app}/outbox"), None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until the app's outbox is empty (fails after `secs`).
    pub async fn drained(&self, app: &str, secs: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let left = self.outbox(app).await;
            if left.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "outbox of {app} not drained: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn logs(&self, filter: &str) -> Vec<Value> {
        let q: String =
            percent_encoding::utf8_percent_encode(filter, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        self.ok("GET", &format!("/api/v1/logs?limit=1000&filter={q}"), None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}
