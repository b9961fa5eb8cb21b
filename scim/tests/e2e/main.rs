//! End-to-end tests: a real provider on 127.0.0.1:0, spoken to over HTTP. Modules follow the
//! sections of `shared/reference/rfc7644-checklist.md`; test names carry the checklist ids.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod bulk;
mod crud;
mod discovery;
mod errors;
mod etag;
mod filter;
mod groups;
mod hostile;
mod list;
mod patch;
mod snapshots;

use reqwest::header::HeaderMap;
use reqwest::Method;
use scim::{app, AppState, Provider, ProviderConfig};
use serde_json::{json, Value};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const TOKEN: &str = "test-token";

#[allow(missing_debug_implementations)]
pub struct Server {
    pub base: String,
    client: reqwest::Client,
    dir: Option<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts an RFC 7644 §3.12 error body with this status and scimType.
    #[track_caller]
    pub fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(self.body["schemas"], json!([ERROR]), "{:?}", self.body);
        assert_eq!(self.body["status"], json!(status.to_string()));
        assert_eq!(
            self.body.get("scimType").and_then(Value::as_str),
            scim_type,
            "{:?}",
            self.body
        );
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        assert!(self
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/scim+json")));
    }
    pub fn id(&self) -> String {
        self.body["id"].as_str().unwrap_or_default().to_owned()
    }
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(ProviderConfig::default()).await
    }

    pub async fn start_with(config: ProviderConfig) -> Server {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, config).await
    }

    pub async fn start_in(dir: tempfile::TempDir, config: ProviderConfig) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = ProviderConfig {
            base_url: base.clone(),
            ..config
        };
        let provider = Provider::open(dir.path(), config).unwrap();
        let router = app(AppState {
            provider,
            tokens: vec![TOKEN.into()],
            oauth: None,
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Server {
            base,
            client: scim::tls::ClientTls::default().client().unwrap(),
            dir: Some(dir),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and hands back its data folder, so a test can reopen it.
    pub async fn shutdown(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
        self.dir.take().unwrap()
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                req = req.header("content-type", "application/scim+json");
            }
            req = req.body(b.to_string());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None, &[]).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(body), &[]).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(body), &[]).await
    }
    pub async fn patch(&self, path: &str, ops: Value) -> Resp {
        self.send(
            Method::PATCH,
            path,
            Some(json!({"schemas": [PATCH_OP], "Operations": ops})),
            &[],
        )
        .await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None, &[]).await
    }

    /// Creates a user and returns the 201 response body.
    pub async fn user(&self, user_name: &str) -> Value {
        let r = self.post("/Users", user_body(user_name)).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body
    }

    pub async fn group(&self, name: &str, members: &[&str]) -> Value {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let r = self
            .post(
                "/Groups",
                json!({"schemas": [GROUP], "displayName": name, "members": members}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body
    }

    /// Runs a filter on /Users and returns the matching userNames, sorted.
    pub async fn users_matching(&self, filter: &str) -> Vec<String> {
        let r = self
            .get(&format!("/Users?filter={}", urlencode(filter)))
            .await;
        assert_eq!(r.status, 200, "{filter}: {:?}", r.body);
        let mut names: Vec<String> = r.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }
}

pub fn user_body(user_name: &str) -> Value {
    json!({"schemas": [USER], "userName": user_name, "active": true,
           "name": {"givenName": user_name, "familyName": "Tester"},
           "emails": [{"value": format!("{user_name}@corp.example"), "type": "work", "primary": true}]})
}

pub fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
