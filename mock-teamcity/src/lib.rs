//! `mock-teamcity`: a TeamCity-like REST API on sled (`/app/rest/...`): users, user groups with
//! parents, projects under `_Root`, role assignments at global or project scope, access tokens,
//! effective permissions; with the shared control plane (`/_sim/...`). See `docs/teamcity.md`.
//! The SCIM bridge is not built yet (issue 4).

pub mod error;
pub mod model;
pub mod rest;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::Router;
use scim::provider::BoxFuture;
use scim::sim::{control_router, faults_and_metrics, AuditLog, Faults, Metrics, Quirks, Simulated};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use crate::error::RestError;
use crate::model::{Project, Record, Roles, Store, ROOT_PROJECT};

/// No quirks yet: the bridge they are meant to break does not exist (issue 4).
pub const QUIRKS: &[(&str, &str)] = &[];

/// The simulator's state.
#[derive(Debug)]
pub struct TeamCity {
    pub store: Store,
    pub roles: Roles,
    /// Tokens that act as a system administrator.
    pub admin_tokens: Vec<String>,
    faults: RwLock<Faults>,
    quirks: Quirks,
    metrics: Metrics,
}

impl TeamCity {
    pub fn new(store: Store, admin_tokens: Vec<String>) -> TeamCity {
        TeamCity {
            store,
            roles: Roles::builtin(),
            admin_tokens,
            faults: RwLock::new(Faults::default()),
            quirks: Quirks::new(QUIRKS),
            metrics: Metrics::default(),
        }
    }
}

impl Simulated for TeamCity {
    fn name(&self) -> &'static str {
        "mock_teamcity"
    }

    fn audit(&self) -> &AuditLog {
        self.store.audit()
    }

    fn faults(&self) -> &RwLock<Faults> {
        &self.faults
    }

    fn quirks(&self) -> &Quirks {
        &self.quirks
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn gauges(&self) -> Vec<(&'static str, &'static str, f64)> {
        let s = self.store.read();
        vec![
            ("users", "Users.", s.users.len() as f64),
            ("groups", "User groups.", s.groups.len() as f64),
            (
                "role_assignments",
                "Role assignments.",
                s.assignments.len() as f64,
            ),
        ]
    }

    fn reset(&self) -> BoxFuture<'_, scim::error::Result<()>> {
        Box::pin(async move {
            self.store
                .reset()
                .await
                .map_err(|e| scim::ScimError::internal(e.message))?;
            seed_sample(&self.store)
                .await
                .map_err(|e| scim::ScimError::internal(e.message))
        })
    }
}

/// The REST API and the control plane, with faults and metrics around the API.
pub fn native_app(tc: Arc<TeamCity>) -> Router {
    let sim: Arc<dyn Simulated> = tc.clone();
    rest::router(tc)
        .merge(control_router(sim.clone()))
        .layer(axum::middleware::from_fn_with_state(
            sim,
            faults_and_metrics,
        ))
}

/// `_Root` and a small project tree, created when missing.
pub async fn seed_sample(store: &Store) -> Result<(), RestError> {
    let sample = [
        (ROOT_PROJECT, "<Root project>", None),
        ("Backend", "Backend", Some(ROOT_PROJECT)),
        ("Backend_Api", "API", Some("Backend")),
        ("Web", "Web", Some(ROOT_PROJECT)),
    ];
    store
        .change(|server, c| {
            for (id, name, parent) in sample {
                if server.projects.contains_key(id) {
                    continue;
                }
                c.event("project.created", id, json!({"name": name, "sample": true}));
                c.put(Record::Project(Project {
                    id: id.into(),
                    name: name.into(),
                    parent: parent.map(Into::into),
                }));
            }
            Ok(())
        })
        .await
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error(transparent)]
    Rest(#[from] RestError),
    #[error(transparent)]
    Scim(#[from] scim::ScimError),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub port: u16,
    /// `None`: in memory only.
    pub data: Option<PathBuf>,
    /// Acts as a system administrator.
    pub token: String,
    pub durable: bool,
}

#[derive(Debug)]
pub struct Launched {
    pub url: String,
    pub teamcity: Arc<TeamCity>,
    stop: tokio::sync::watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Launched {
    /// Stops the server after its open requests finish, waiting at most five seconds.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(std::time::Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// Starts the simulator on loopback.
pub async fn launch(opts: Options) -> Result<Launched, LaunchError> {
    let store = match &opts.data {
        Some(dir) => Store::open(&dir.join("teamcity"), opts.durable)?,
        None => Store::temporary()?,
    };
    seed_sample(&store).await?;
    let tc = Arc::new(TeamCity::new(store, vec![opts.token.clone()]));
    let listener = TcpListener::bind(("127.0.0.1", opts.port))
        .await
        .map_err(|source| LaunchError::Bind {
            port: opts.port,
            source,
        })?;
    let addr: SocketAddr = listener.local_addr().map_err(|source| LaunchError::Bind {
        port: opts.port,
        source,
    })?;
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let app = native_app(tc.clone());
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("server stopped: {e}");
        }
    });
    Ok(Launched {
        url: format!("http://{addr}"),
        teamcity: tc,
        stop,
        task,
    })
}
