//! What connectors share, without any HTTP client of their own: a native call, the API that
//! sends it (each connector brings its own client), and a `Plan` that runs calls in order and
//! undoes the ones made, newest first, when a later one fails.

use axum::http::Method;
use serde_json::Value;

use scim::error::{Result, ScimError};
use scim::provider::BoxFuture;

/// One request to the native API: method, path below the API root, body.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: Option<Payload>,
}

#[derive(Debug, Clone)]
pub enum Payload {
    Json(Value),
    /// A `text/plain` body (a single field, for APIs that take one so).
    Text(String),
}

impl Call {
    /// A call with a JSON body, or none.
    pub fn new(method: Method, path: impl Into<String>, body: Option<Value>) -> Call {
        Call {
            method,
            path: path.into(),
            body: body.map(Payload::Json),
        }
    }

    pub fn text(method: Method, path: impl Into<String>, body: impl Into<String>) -> Call {
        Call {
            method,
            path: path.into(),
            body: Some(Payload::Text(body.into())),
        }
    }
}

/// A native call that failed: what to answer the SCIM client, and the native status when the
/// native side answered at all.
#[derive(Debug)]
pub struct NativeError {
    pub status: Option<u16>,
    pub error: ScimError,
}

impl From<ScimError> for NativeError {
    fn from(error: ScimError) -> Self {
        NativeError {
            status: None,
            error,
        }
    }
}

/// A native API client.
pub trait NativeApi: Send + Sync {
    fn send<'a>(&'a self, call: &'a Call)
        -> BoxFuture<'a, std::result::Result<Value, NativeError>>;
}

/// Reads one native record; `None` when the product answers 404.
pub async fn lookup(api: &dyn NativeApi, path: String) -> Result<Option<Value>> {
    match api.send(&Call::new(Method::GET, path, None)).await {
        Ok(found) => Ok(Some(found)),
        Err(NativeError {
            status: Some(404), ..
        }) => Ok(None),
        Err(e) => Err(e.error),
    }
}

/// Native calls run in order, each with how to undo it.
pub struct Plan<'a> {
    api: &'a dyn NativeApi,
    undo: Vec<Call>,
}

impl std::fmt::Debug for Plan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan").field("undo", &self.undo).finish()
    }
}

impl<'a> Plan<'a> {
    pub fn new(api: &'a dyn NativeApi) -> Plan<'a> {
        Plan {
            api,
            undo: Vec::new(),
        }
    }

    /// Sends `call`; once it succeeded, `undo` is what reverses it.
    pub async fn run(&mut self, call: Call, undo: Option<Call>) -> Result<Value> {
        let out = Self::send(self.api, &call).await.map_err(|e| e.error)?;
        self.undo.extend(undo);
        Ok(out)
    }

    /// Every native call goes through here, so `debug` logging shows each with its outcome.
    async fn send(api: &dyn NativeApi, call: &Call) -> std::result::Result<Value, NativeError> {
        let out = api.send(call).await;
        tracing::debug!(
            "{} {} -> {}",
            call.method,
            call.path,
            match &out {
                Ok(_) => "ok".to_owned(),
                Err(e) => format!("{:?} {}", e.status, e.error.detail),
            }
        );
        out
    }

    /// Sends a removal; a native 404 means it is already gone, which is what was wanted.
    pub async fn remove(&mut self, call: Call, undo: Option<Call>) -> Result<()> {
        match Self::send(self.api, &call).await {
            Ok(_) => {
                self.undo.extend(undo);
                Ok(())
            }
            Err(NativeError {
                status: Some(404), ..
            }) => Ok(()),
            Err(e) => Err(e.error),
        }
    }

    /// Records how to reverse a call whose answer was needed to know it (a created id).
    pub fn undo_with(&mut self, call: Call) {
        self.undo.push(call);
    }

    /// Passes `result` on, undoing what ran first when it is an error.
    pub async fn settle<T>(self, result: Result<T>) -> Result<T> {
        if result.is_err() {
            self.roll_back().await;
        }
        result
    }

    /// Undoes what ran, newest first. An undo that fails is logged: the client gets the
    /// original error, and its retry converges because every call is idempotent in effect.
    pub async fn roll_back(self) {
        for call in self.undo.into_iter().rev() {
            if let Err(e) = Self::send(self.api, &call).await {
                tracing::warn!(
                    "undo of {} {} failed: {}",
                    call.method,
                    call.path,
                    e.error.detail
                );
            }
        }
    }
}

/// A JSON-over-HTTP native API with bearer authentication (feature `client`).
#[derive(Debug, Clone)]
pub struct HttpApi {
    /// The product's name, for error messages.
    name: &'static str,
    /// The API root, e.g. `https://host/app/rest`.
    root: String,
    token: String,
    http: reqwest::Client,
    /// How the product's own refusals (4xx other than 404 and 429) read as SCIM errors; `None`
    /// answers 502.
    map_error: fn(u16, String) -> Option<ScimError>,
}

impl HttpApi {
    pub fn new(
        name: &'static str,
        root: &str,
        token: &str,
        tls: &scim::tls::ClientTls,
        map_error: fn(u16, String) -> Option<ScimError>,
    ) -> Result<HttpApi> {
        let http = tls
            .builder()
            .map_err(|e| ScimError::internal(format!("cannot set up TLS: {e}")))?
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| ScimError::internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpApi {
            name,
            root: root.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http,
            map_error,
        })
    }
}

impl NativeApi for HttpApi {
    fn send<'a>(
        &'a self,
        call: &'a Call,
    ) -> BoxFuture<'a, std::result::Result<Value, NativeError>> {
        Box::pin(async move {
            let (name, method, path) = (self.name, &call.method, &call.path);
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.root))
                .bearer_auth(&self.token)
                .header("Accept", "application/json");
            match &call.body {
                Some(Payload::Json(b)) => req = req.json(b),
                Some(Payload::Text(t)) => {
                    req = req.header("Content-Type", "text/plain").body(t.clone())
                }
                None => {}
            }
            let resp = req
                .send()
                .await
                .map_err(|e| unavailable(format!("{name} did not answer {method} {path}: {e}")))?;
            let status = resp.status().as_u16();
            let text = resp.text().await.map_err(|e| {
                unavailable(format!("{name}'s answer to {method} {path} broke off: {e}"))
            })?;
            if (200..300).contains(&status) {
                return Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)));
            }
            let said = format!(
                "{name} answered {status} to {method} {path}: {}",
                text.trim()
            );
            let error = match status {
                404 => ScimError::new(
                    409,
                    None,
                    format!("{said} (changed in {name} behind the connector)"),
                ),
                429 | 500..=599 => unavailable(said),
                _ => (self.map_error)(status, said.clone())
                    .unwrap_or_else(|| ScimError::new(502, None, said)),
            };
            Err(NativeError {
                status: Some(status),
                error,
            })
        })
    }
}

/// A string field of a resource's link.
pub fn link_str<'a>(link: Option<&'a Value>, key: &str) -> Option<&'a str> {
    link?.get(key)?.as_str()
}

/// A User's `active`, true when absent.
pub fn is_active(doc: &serde_json::Map<String, Value>) -> bool {
    doc.get("active").and_then(Value::as_bool).unwrap_or(true)
}

/// 503 for a native side that is down or refusing for now: nothing was changed.
pub fn unavailable(detail: impl std::fmt::Display) -> ScimError {
    ScimError::new(
        503,
        None,
        format!("{detail}; nothing was changed, retry later"),
    )
}

/// What a connector's policy grants a group: a project role, a role at a scope, ...
pub trait PolicyGrant: serde::de::DeserializeOwned + Clone + Ord {
    /// The connector's built-in default policy (TOML).
    const DEFAULT_POLICY: &'static str;
    /// Why this grant is invalid, if it is.
    fn problem(&self) -> Option<String>;
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read the policy {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the policy is not valid TOML: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("rule {rule}: {problem}")]
    Invalid { rule: usize, problem: String },
}

/// A role-mapping policy (TOML): rules that pick SCIM groups and say what each grants.
///
/// ```toml
/// [[rule]]
/// group = { externalId = "eng" }          # or { displayName = "..." } or { id = "..." }
/// grants = [ ... ]                        # the connector's own grant shape
/// ```
/// Match by `externalId` or `id` to survive renames; by `displayName`, a rename changes what
/// the group grants.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy<G> {
    #[serde(default = "Vec::new", rename = "rule")]
    pub rules: Vec<Rule<G>>,
}

impl<G> Default for Policy<G> {
    fn default() -> Self {
        Policy { rules: Vec::new() }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule<G> {
    pub group: GroupMatch,
    pub grants: Vec<G>,
}

/// Exactly one key picks the group.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupMatch {
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub id: Option<String>,
}

impl<G: PolicyGrant> Policy<G> {
    pub fn load(path: &std::path::Path) -> std::result::Result<Policy<G>, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> std::result::Result<Policy<G>, PolicyError> {
        let policy: Policy<G> = toml::from_str(text)?;
        for (i, rule) in policy.rules.iter().enumerate() {
            let g = &rule.group;
            let keys = [&g.external_id, &g.display_name, &g.id]
                .iter()
                .filter(|k| k.is_some())
                .count();
            let problem = if keys != 1 {
                Some("group needs exactly one of externalId, displayName, id".to_owned())
            } else {
                rule.grants.iter().find_map(PolicyGrant::problem)
            };
            if let Some(problem) = problem {
                return Err(PolicyError::Invalid {
                    rule: i + 1,
                    problem,
                });
            }
        }
        Ok(policy)
    }

    /// The built-in default; a test of each connector parses it, so it never fails here.
    pub fn default_policy() -> Policy<G> {
        Self::parse(G::DEFAULT_POLICY).unwrap_or_default()
    }

    /// Every grant the policy gives a group, given the group's SCIM id and attributes.
    pub fn grants_for(&self, id: &str, group: &serde_json::Map<String, Value>) -> Vec<G> {
        let attr = |name: &str| group.get(name).and_then(Value::as_str);
        let mut out: Vec<G> = self
            .rules
            .iter()
            .filter(|r| {
                let g = &r.group;
                g.id.as_deref() == Some(id)
                    || (g.external_id.is_some() && g.external_id.as_deref() == attr("externalId"))
                    || (g.display_name.is_some()
                        && g.display_name.as_deref() == attr("displayName"))
            })
            .flat_map(|r| r.grants.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Fails the call whose path is `fail`, records the rest.
    struct Recorder {
        fail: &'static str,
        sent: Mutex<Vec<String>>,
    }

    impl NativeApi for Recorder {
        fn send<'a>(
            &'a self,
            call: &'a Call,
        ) -> BoxFuture<'a, std::result::Result<Value, NativeError>> {
            Box::pin(async move {
                self.sent
                    .lock()
                    .unwrap()
                    .push(format!("{} {}", call.method, call.path));
                if call.path == self.fail {
                    Err(unavailable("down").into())
                } else {
                    Ok(Value::Null)
                }
            })
        }
    }

    #[tokio::test]
    async fn a_failure_undoes_what_ran_newest_first() {
        let api = Recorder {
            fail: "/c",
            sent: Mutex::new(Vec::new()),
        };
        let mut plan = Plan::new(&api);
        let step = |p: &str| Call::new(Method::POST, p, None);
        let undo = |p: &str| Some(Call::new(Method::DELETE, p, None));
        plan.run(step("/a"), undo("/a")).await.unwrap();
        plan.run(step("/b"), undo("/b")).await.unwrap();
        assert_eq!(
            plan.run(step("/c"), undo("/c")).await.unwrap_err().status,
            503
        );
        plan.roll_back().await;
        assert_eq!(
            *api.sent.lock().unwrap(),
            ["POST /a", "POST /b", "POST /c", "DELETE /b", "DELETE /a"]
        );
    }
}

/// How a connector is served, whatever its product: its SCIM port and data folder, who may
/// call it, durability, leniency and transport. Both mocks' launch options carry one.
#[derive(Debug, Clone, Default)]
pub struct Serving {
    pub scim_port: u16,
    /// `None`: in memory only.
    pub data: Option<std::path::PathBuf>,
    /// Bearer token the connector's SCIM clients (the IdP) present.
    pub scim_token: String,
    /// OAuth access tokens the SCIM server accepts instead of `scim_token` (which it then
    /// refuses).
    pub scim_oauth: Option<std::sync::Arc<scim::oauth::Verifier>>,
    /// A token that opens the simulator's `/_sim` besides the product's own.
    pub sim_token: Option<String>,
    /// Acknowledge writes only once flushed to disk.
    pub durable: bool,
    /// Accept Entra's "True"/"False" strings for booleans.
    pub lenient: bool,
    /// HTTPS for the servers started here, and how the connector checks the product's
    /// certificate.
    pub tls: scim::tls::Tls,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error(transparent)]
    Scim(#[from] ScimError),
}

/// Binds 127.0.0.1:`port` (0: any) for `servers`; the listener and its URL.
pub async fn bind(
    servers: &scim::serve::Servers,
    port: u16,
) -> std::result::Result<(tokio::net::TcpListener, String), LaunchError> {
    servers
        .bind(port)
        .await
        .map_err(|source| LaunchError::Bind { port, source })
}

impl Serving {
    /// `name` in the data folder; `None` in memory.
    pub fn folder(&self, name: &str) -> Option<std::path::PathBuf> {
        self.data.as_ref().map(|d| d.join(name))
    }

    /// Serves the connector on `servers`: a provider keeping its state in the data folder's
    /// `folder` and calling `backend`, every group first brought up to the backend's current
    /// rules (its policy may have changed since the last run), wearing `sim`'s SCIM quirks
    /// when there is a simulator. Returns its URL.
    pub async fn serve_connector(
        &self,
        servers: &mut scim::serve::Servers,
        folder: &str,
        backend: std::sync::Arc<dyn scim::provider::Backend>,
        sim: Option<std::sync::Arc<dyn crate::sim::Simulated>>,
    ) -> std::result::Result<String, LaunchError> {
        let (listener, base_url) = bind(servers, self.scim_port).await?;
        let config = scim::ProviderConfig {
            base_url: base_url.clone(),
            durability: if self.durable {
                scim::Durability::Flush
            } else {
                scim::Durability::Background
            },
            leniency: scim::resource::Leniency {
                boolean_strings: self.lenient,
            },
            ..Default::default()
        };
        let provider = match self.folder(folder) {
            Some(dir) => scim::Provider::open(&dir, config)?,
            None => scim::Provider::temporary(config)?,
        }
        .with_backend(backend);
        let regranted = provider.reapply_groups().await?;
        if regranted > 0 {
            tracing::info!("{regranted} groups re-granted under the current policy");
        }
        let app = scim::app(scim::AppState {
            provider,
            tokens: match &self.scim_oauth {
                Some(_) => Vec::new(),
                None => vec![self.scim_token.clone()],
            },
            oauth: self.scim_oauth.clone(),
        });
        let app = match sim {
            Some(sim) => app.layer(axum::middleware::from_fn_with_state(
                sim,
                crate::quirks::middleware,
            )),
            None => app,
        };
        servers.serve(listener, app);
        Ok(base_url)
    }
}
