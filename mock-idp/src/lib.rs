//! `mock-idp`: an Okta-like identity provider. Its management API (`/api/v1/...`) holds users,
//! groups and apps; its provisioning engine pushes every change to the apps' SCIM endpoints in
//! the Okta or Entra ID dialect, from a durable outbox written in the same sled batch as the
//! change. See `docs/idp.md` for what follows the real products and what is assumed.
//!
//! Use it in-process with [`launch`], or as the `mock-idp` binary.

pub mod api;
pub mod dialect;
pub mod engine;
pub mod error;
pub mod mapping;
pub mod model;
pub mod oauth;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::Router;
use mockkit::sim::{AuditLog, Controls, Quirks, Simulated};
use scim::provider::BoxFuture;
use scim::serve::Servers;
use scim::tls::Tls;

use crate::engine::Engine;
pub use crate::engine::EngineConfig;
pub use crate::error::OktaError;
pub use crate::model::Dialect;
use crate::model::Store;

/// The IdP: its records, API tokens, control plane and provisioning engine.
#[derive(Debug)]
pub struct Idp {
    pub store: Store,
    pub tokens: Vec<String>,
    /// The IdP's own URL, for `_links`.
    pub base_url: String,
    pub engine: Engine,
    controls: Controls,
    /// The token endpoint's clients and signing key; `None`: no `/oauth2/v1/token`.
    pub oauth: Option<Arc<oauth::OAuthServer>>,
}

impl Simulated for Idp {
    fn name(&self) -> &'static str {
        "mock_idp"
    }

    fn api_prefix(&self) -> &'static str {
        "/api/v1"
    }

    /// Okta's 429: `E0000047`, `Retry-After`, and the `X-Rate-Limit-*` headers (reset in epoch
    /// seconds) that Okta's SDKs compute their wait from; they give up on a 429 without them.
    fn rate_limited(&self) -> axum::response::Response {
        use axum::response::IntoResponse;
        let reset = (chrono::Utc::now().timestamp() + 1).to_string();
        let mut resp = error::OktaError::new(
            429,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        )
        .into_response();
        let h = resp.headers_mut();
        for (name, value) in [
            ("retry-after", "1"),
            ("x-rate-limit-limit", "600"),
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", reset.as_str()),
        ] {
            if let Ok(v) = axum::http::HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        }
        resp
    }

    fn audit(&self) -> &AuditLog {
        self.store.audit()
    }

    fn controls(&self) -> &Controls {
        &self.controls
    }

    fn gauges(&self) -> Vec<(&'static str, &'static str, f64)> {
        let org = self.store.read();
        let parked = org.outbox.values().filter(|e| e.parked).count();
        let s = &self.engine.stats;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        vec![
            ("users", "Users in every status.", org.users.len() as f64),
            ("groups", "Groups.", org.groups.len() as f64),
            ("apps", "Apps.", org.apps.len() as f64),
            (
                "outbox_pending",
                "Outbox entries waiting for delivery or a retry.",
                (org.outbox.len() - parked) as f64,
            ),
            (
                "outbox_parked",
                "Outbox entries parked after failing.",
                parked as f64,
            ),
            (
                "provisioned_total",
                "Outbox entries the targets acknowledged since start.",
                load(&s.delivered),
            ),
            (
                "provisioning_failed_attempts_total",
                "Delivery attempts that failed since start.",
                load(&s.failed_attempts),
            ),
            (
                "provisioning_parked_total",
                "Entries parked since start.",
                load(&s.parked),
            ),
            (
                "provisioning_requests_total",
                "SCIM requests sent since start.",
                load(&s.requests),
            ),
            (
                "provisioning_latency_seconds_sum",
                "Accepted-to-acknowledged time of delivered entries, summed.",
                load(&s.latency_micros_sum) / 1e6,
            ),
            (
                "provisioning_latency_seconds_max",
                "Longest accepted-to-acknowledged time since start.",
                load(&s.latency_micros_max) / 1e6,
            ),
        ]
    }

    fn reset(&self) -> BoxFuture<'_, scim::error::Result<()>> {
        Box::pin(async move {
            self.store
                .reset()
                .await
                .map_err(|e| scim::ScimError::internal(e.summary))
        })
    }
}

/// The management API and the control plane, with faults and metrics around the API.
pub fn app(idp: Arc<Idp>) -> Router {
    mockkit::sim::native_app(api::router(idp.clone()), idp)
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] scim::ScimError),
    #[error("cannot build the SCIM client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Tls(#[from] scim::tls::TlsError),
    #[error("cannot migrate the data folder: {0}")]
    Migrate(#[from] error::OktaError),
}

/// How to start the IdP.
#[derive(Debug, Clone)]
pub struct Options {
    pub port: u16,
    /// `None`: in memory only.
    pub data: Option<PathBuf>,
    /// API token (`Authorization: SSWS <token>`).
    pub token: String,
    /// Acknowledge API writes only once flushed to disk.
    pub durable: bool,
    pub engine: EngineConfig,
    /// A token that opens `/_sim` besides `token`.
    pub sim_token: Option<String>,
    /// HTTPS for the API, and how the engine checks its apps' certificates.
    pub tls: Tls,
    /// An authorization server at `/oauth2/v1/token` for these clients.
    pub oauth: Option<Arc<oauth::OAuthServer>>,
}

/// The IdP, running.
#[derive(Debug)]
pub struct Launched {
    pub url: String,
    pub idp: Arc<Idp>,
    servers: Servers,
}

impl Launched {
    /// Stops the API, then the engine; undelivered entries stay in the outbox.
    pub async fn stop(self) {
        self.idp.controls().close();
        self.servers.stop().await;
        self.idp.engine.stop().await;
    }
}

/// Starts the IdP on loopback and resumes its outbox.
pub async fn launch(opts: Options) -> Result<Launched, LaunchError> {
    let store = match &opts.data {
        Some(dir) => Store::open(dir, opts.durable)?,
        None => Store::temporary()?,
    };
    model::migrate(&store).await?;
    let mut servers = Servers::new(opts.tls.server.clone());
    let (listener, url) = servers
        .bind(opts.port)
        .await
        .map_err(|source| LaunchError::Bind {
            port: opts.port,
            source,
        })?;
    let control = std::iter::once(opts.token.clone())
        .chain(opts.sim_token)
        .collect();
    let idp = Arc::new(Idp {
        store,
        tokens: vec![opts.token],
        base_url: url.clone(),
        engine: Engine::new(opts.engine, &opts.tls.client)?,
        controls: Controls::new(Quirks::new([]), control),
        oauth: opts.oauth,
    });
    engine::start(&idp);
    servers.serve(listener, app(idp.clone()));
    Ok(Launched { url, idp, servers })
}
