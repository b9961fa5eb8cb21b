//! `mock-teamcity`: a TeamCity-like REST API on sled (`/app/rest/...`): users, user groups with
//! parents, projects under `_Root`, role assignments at global or project scope, access tokens,
//! effective permissions; with the shared control plane (`/_sim/...`); and the SCIM bridge, a
//! SCIM 2.0 provider that applies every change through that REST API, to the mock or to a real
//! TeamCity server. See `docs/teamcity.md`.

pub mod bridge;
pub mod error;
pub mod model;
pub mod rest;
pub mod xml;

use std::sync::Arc;

use axum::Router;
use mockkit::connector::bind;
pub use mockkit::connector::Serving;
use mockkit::sim::{AuditLog, Controls, Quirks, Simulated};
use scim::provider::BoxFuture;
use scim::serve::Servers;
use serde_json::json;

pub use crate::bridge::Policy;
use crate::bridge::{teamcity_client, TeamCityBackend};
pub use crate::error::RestError;
use crate::model::{Project, Record, Roles, Store, ROOT_PROJECT};

/// Misbehaviours the REST API can be switched to, so a harness can prove it notices them.
pub const QUIRKS: &[(&str, &str)] = &[(
    "token-delete-ignored",
    "deleting an access token answers 204 but leaves the token working",
)];

/// The simulator's state.
#[derive(Debug)]
pub struct TeamCity {
    pub store: Store,
    pub roles: Roles,
    /// Tokens that act as a system administrator.
    pub admin_tokens: Vec<String>,
    controls: Controls,
}

impl TeamCity {
    /// `admin_tokens` act as a system administrator; they and `sim_token` open `/_sim`.
    pub fn new(store: Store, admin_tokens: Vec<String>, sim_token: Option<String>) -> TeamCity {
        let control = admin_tokens.iter().cloned().chain(sim_token).collect();
        TeamCity {
            store,
            roles: Roles::builtin(),
            admin_tokens,
            controls: Controls::new(
                Quirks::new(QUIRKS.iter().copied().chain(mockkit::quirks::named())),
                control,
            ),
        }
    }
}

impl TeamCity {
    pub fn quirk(&self, name: &str) -> bool {
        self.controls.quirks.is_on(name)
    }
}

impl Simulated for TeamCity {
    fn name(&self) -> &'static str {
        "mock_teamcity"
    }

    fn api_prefix(&self) -> &'static str {
        "/app/rest"
    }

    fn audit(&self) -> &AuditLog {
        self.store.audit()
    }

    fn controls(&self) -> &Controls {
        &self.controls
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
    mockkit::sim::native_app(rest::router(tc.clone()), tc)
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
    #[error(transparent)]
    Serve(#[from] mockkit::connector::LaunchError),
    #[error(transparent)]
    Rest(#[from] RestError),
    #[error(transparent)]
    Scim(#[from] scim::ScimError),
}

/// Which TeamCity the bridge talks to.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start the simulator on this port (0 = a free one).
    Simulator { port: u16 },
    /// A TeamCity server elsewhere, with a token that may manage users, groups and roles.
    Remote { url: String, token: String },
}

#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    /// The simulator's system-administrator token (unused for a remote target).
    pub token: String,
    pub policy: Policy,
    /// The bridge's port, data folder (the simulator's too), clients and transport.
    pub serving: Serving,
}

/// The bridge, and the simulator when it was started.
#[derive(Debug)]
pub struct Launched {
    /// The TeamCity the bridge talks to.
    pub teamcity_url: String,
    pub scim_url: String,
    /// `None` for a remote target.
    pub teamcity: Option<Arc<TeamCity>>,
    servers: Servers,
}

impl Launched {
    /// Stops the servers after their open requests finish.
    pub async fn stop(self) {
        if let Some(tc) = &self.teamcity {
            tc.controls().close();
        }
        self.servers.stop().await;
    }
}

/// Starts the simulator (unless the target is remote) and the SCIM bridge on loopback.
pub async fn launch(opts: Options) -> Result<Launched, LaunchError> {
    let serving = &opts.serving;
    let mut servers = Servers::new(serving.tls.server.clone());
    let (teamcity_url, token, teamcity) = match &opts.target {
        Target::Simulator { port } => {
            let store = match serving.folder("teamcity") {
                Some(dir) => Store::open(&dir, serving.durable)?,
                None => Store::temporary()?,
            };
            seed_sample(&store).await?;
            let tc = Arc::new(TeamCity::new(
                store,
                vec![opts.token.clone()],
                serving.sim_token.clone(),
            ));
            let (listener, url) = bind(&servers, *port).await?;
            servers.serve(listener, native_app(tc.clone()));
            (url, opts.token.clone(), Some(tc))
        }
        Target::Remote { url, token } => (url.clone(), token.clone(), None),
    };

    let client = teamcity_client(&teamcity_url, &token, &serving.tls.client)?;
    let backend = TeamCityBackend::new(client, opts.policy);
    // The simulator's SCIM quirks reach its bridge; a real server's bridge has none.
    let sim = teamcity.clone().map(|tc| -> Arc<dyn Simulated> { tc });
    let scim_url = serving
        .serve_connector(&mut servers, "teamcity-scim", Arc::new(backend), sim)
        .await?;
    Ok(Launched {
        teamcity_url,
        scim_url,
        teamcity,
        servers,
    })
}
