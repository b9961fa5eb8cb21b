//! `mock-space`: a JetBrains Space-like team directory and project access API on sled
//! (`/api/http/...`), its control plane (`/_sim/...`), and a SCIM 2.0 connector that applies
//! every change through that API. Space itself was discontinued on 1 June 2025 and never had
//! SCIM; see `docs/space.md` for what is modelled on the real product and what is assumed.
//!
//! Use it in-process with [`launch`], or as the `mock-space` binary.

pub mod api;
pub mod connector;
pub mod directory;
pub mod error;
pub mod policy;

use std::sync::Arc;

use axum::Router;
use mockkit::connector::bind;
pub use mockkit::connector::Serving;
use mockkit::sim::{AuditLog, Controls, Quirks, Simulated};
use scim::provider::BoxFuture;
use scim::serve::Servers;
use serde_json::json;

use crate::connector::{space_client, SpaceBackend};
use crate::directory::{new_id, Directory, Project, Record, Repository, Rules};
pub use crate::error::ApiError;
pub use crate::policy::Policy;

/// Misbehaviours the native API can be switched to, so a harness can prove it notices them.
pub const QUIRKS: &[(&str, &str)] = &[
    (
        "deactivate-keeps-tokens",
        "deactivating a profile leaves its personal tokens working",
    ),
    (
        "membership-delete-ignored",
        "deleting a team membership answers 200 and records it, but the member stays",
    ),
    (
        "deactivate-unaudited",
        "deactivating a profile writes no audit event",
    ),
];

/// The native simulator's state.
#[derive(Debug)]
pub struct Space {
    pub directory: Directory,
    /// Which project role grants which permission.
    pub rules: Rules,
    /// Organisation-administrator tokens.
    pub admin_tokens: Vec<String>,
    controls: Controls,
}

impl Space {
    /// `admin_tokens` act as an organisation administrator; they and `sim_token` open `/_sim`.
    pub fn new(
        directory: Directory,
        admin_tokens: Vec<String>,
        sim_token: Option<String>,
    ) -> Space {
        let control = admin_tokens.iter().cloned().chain(sim_token).collect();
        Space {
            directory,
            rules: Rules::builtin(),
            admin_tokens,
            controls: Controls::new(
                Quirks::new(QUIRKS.iter().copied().chain(mockkit::quirks::named())),
                control,
            ),
        }
    }

    pub fn quirk(&self, name: &str) -> bool {
        self.controls.quirks.is_on(name)
    }
}

impl Simulated for Space {
    fn name(&self) -> &'static str {
        "mock_space"
    }

    fn api_prefix(&self) -> &'static str {
        "/api/http"
    }

    fn audit(&self) -> &AuditLog {
        self.directory.audit()
    }

    fn controls(&self) -> &Controls {
        &self.controls
    }

    fn gauges(&self) -> Vec<(&'static str, &'static str, f64)> {
        let org = self.directory.read();
        vec![
            (
                "profiles",
                "Profiles, active and deactivated.",
                org.profiles.len() as f64,
            ),
            ("teams", "Teams.", org.teams.len() as f64),
            ("grants", "Project access grants.", org.grants.len() as f64),
        ]
    }

    fn reset(&self) -> BoxFuture<'_, scim::error::Result<()>> {
        Box::pin(async move {
            self.directory
                .reset()
                .await
                .map_err(|e| scim::ScimError::internal(e.description))
        })
    }
}

/// The native API and the control plane, with faults and metrics around the API.
pub fn native_app(space: Arc<Space>) -> Router {
    mockkit::sim::native_app(api::router(space.clone()), space)
}

/// A small organisation the default policy (`scenarios/policies/space-default.toml`) refers to.
pub async fn seed_sample(directory: &Directory) -> Result<(), ApiError> {
    let sample = [
        ("BACKEND", "Backend", &["api", "billing"][..]),
        ("INFRA", "Infrastructure", &["terraform"][..]),
        ("WEB", "Web", &["site"][..]),
    ];
    directory
        .change(|org, c| {
            for (key, name, repos) in sample {
                if org.projects.values().any(|p| p.key == key) {
                    continue;
                }
                let p = Project {
                    id: new_id(),
                    key: key.into(),
                    name: name.into(),
                    private: true,
                };
                c.event(
                    "project.created",
                    &p.id,
                    json!({"key": key, "sample": true}),
                );
                for r in repos {
                    c.put(Record::Repository(Repository {
                        project_id: p.id.clone(),
                        name: (*r).into(),
                    }));
                }
                c.put(Record::Project(p));
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
    Space(#[from] ApiError),
    #[error(transparent)]
    Scim(#[from] scim::ScimError),
}

/// How to start the simulator and its connector.
#[derive(Debug, Clone)]
pub struct Options {
    pub port: u16,
    /// Organisation token for the native API; the connector uses it too.
    pub token: String,
    pub policy: Policy,
    /// The connector's port, data folder (the simulator's too), clients and transport.
    pub serving: Serving,
}

/// Both servers, running.
#[derive(Debug)]
pub struct Launched {
    pub space_url: String,
    pub scim_url: String,
    pub space: Arc<Space>,
    servers: Servers,
}

impl Launched {
    /// Stops both servers after their open requests finish.
    pub async fn stop(self) {
        self.space.controls().close();
        self.servers.stop().await;
    }
}

/// Starts the native simulator and the SCIM connector on loopback.
pub async fn launch(opts: Options) -> Result<Launched, LaunchError> {
    let serving = &opts.serving;
    let directory = match serving.folder("space") {
        Some(dir) => Directory::open(&dir, serving.durable)?,
        None => Directory::temporary()?,
    };
    seed_sample(&directory).await?;
    let space = Arc::new(Space::new(
        directory,
        vec![opts.token.clone()],
        serving.sim_token.clone(),
    ));
    let mut servers = Servers::new(serving.tls.server.clone());
    let (native_listener, space_url) = bind(&servers, opts.port).await?;

    let client = space_client(&space_url, &opts.token, &serving.tls.client)?;
    let backend = SpaceBackend::new(client, opts.policy);
    // The connector re-grants every group before it takes requests, which calls the native API.
    servers.serve(native_listener, native_app(space.clone()));
    let sim: Arc<dyn Simulated> = space.clone();
    let scim_url = serving
        .serve_connector(&mut servers, "space-scim", Arc::new(backend), Some(sim))
        .await?;
    Ok(Launched {
        space_url,
        scim_url,
        space,
        servers,
    })
}
