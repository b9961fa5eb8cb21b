//! `scimlab up`: the standalone SCIM provider, mock-space and mock-teamcity (each a native API
//! and its SCIM connector) and mock-idp with one app per connector, on loopback, following DESIGN.md's start-up contract (`NAME URL token=TOKEN` lines, then
//! `ready`; `--json` for one JSON object).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use rand::Rng;
use scim::{app, AppState, Durability, Provider, ProviderConfig};

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Port of the SCIM provider (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Data folder: DATA/scim (the provider), DATA/space and DATA/space-scim (mock-space),
    /// DATA/teamcity and DATA/teamcity-scim (mock-teamcity), DATA/idp (mock-idp).
    #[arg(long, default_value_os_t = crate::default_data_dir())]
    pub data: PathBuf,
    /// Bearer token clients must send (generated and printed when absent).
    #[arg(long, env = "SCIMLAB_TOKEN")]
    pub token: Option<String>,
    /// Print the endpoints as one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Acknowledge writes before they are flushed to disk (faster; a crash can lose the last ones).
    #[arg(long)]
    pub no_fsync: bool,
    /// The SCIM dialect the IdP's apps speak: okta or entra.
    #[arg(long, default_value = "okta", value_parser = parse_dialect)]
    pub dialect: harness::targets::Dialect,
    /// Map the IdP's pushed groups by the policies in this folder (space-idp.toml,
    /// teamcity-idp.toml: `scenarios/policies`, as `scimlab load --targets` expects) instead of
    /// the connectors' defaults.
    #[arg(long)]
    pub policies: Option<PathBuf>,
}

fn parse_dialect(text: &str) -> Result<harness::targets::Dialect, String> {
    match text {
        "okta" => Ok(harness::targets::Dialect::Okta),
        "entra" => Ok(harness::targets::Dialect::Entra),
        other => Err(format!("'{other}' is not okta or entra")),
    }
}

/// A running provider.
pub struct Running {
    pub url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub fn generate_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Binds 127.0.0.1:`port` and serves a provider whose data lives in `dir`.
pub async fn start(
    port: u16,
    dir: &Path,
    token: String,
    durability: Durability,
) -> anyhow::Result<Running> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config = ProviderConfig {
        base_url: url.clone(),
        durability,
        ..Default::default()
    };
    let provider = Provider::open(dir, config)
        .with_context(|| format!("cannot open the SCIM store in {}", dir.display()))?;
    let state = AppState {
        provider,
        tokens: vec![token.clone()],
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app(state))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .context("the SCIM server failed")
    });
    Ok(Running { url, stop, task })
}

impl Running {
    /// Stops accepting requests, lets the ones in flight finish, and closes the store.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("the SCIM server task panicked")?
    }
}

pub async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    // Read first: a bad file stops `up` before anything listens or writes.
    let policies = match &args.policies {
        Some(dir) => harness::targets::idp_policies(dir)
            .map_err(|(path, e)| anyhow::anyhow!("{}: {e}", path.display()))?,
        None => (
            mock_space::Policy::default_policy(),
            mock_teamcity::Policy::default_policy(),
        ),
    };
    let token = args.token.clone().unwrap_or_else(generate_token);
    let durability = if args.no_fsync {
        Durability::Background
    } else {
        Durability::Flush
    };
    let running = start(
        args.port,
        &args.data.join("scim"),
        token.clone(),
        durability,
    )
    .await?;
    let targets = harness::targets::Targets::start_with_policies(
        Some(args.data.clone()),
        &token,
        !args.no_fsync,
        args.dialect,
        policies,
    )
    .await?;
    let (space, teamcity) = (&targets.space, &targets.teamcity);
    let endpoints = [
        ("idp", &targets.idp.url),
        ("scim", &running.url),
        ("space", &space.space_url),
        ("space-scim", &space.scim_url),
        ("teamcity", &teamcity.teamcity_url),
        ("teamcity-scim", &teamcity.scim_url),
    ];
    if args.json {
        let mut out = serde_json::Map::new();
        for (name, url) in endpoints {
            out.insert(name.into(), serde_json::json!({"url": url, "token": token}));
        }
        out.insert("ready".into(), true.into());
        println!("{}", serde_json::Value::Object(out));
    } else {
        for (name, url) in endpoints {
            println!("{name} {url} token={token}");
        }
        println!("ready");
    }
    scim::sim::shutdown_signal().await;
    targets.stop().await;
    running.stop().await?;
    Ok(ExitCode::SUCCESS)
}
