//! `mock-space`: the Space-like simulator and its SCIM connector on loopback.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use mock_space::{launch, Options, Policy};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A JetBrains Space-like team directory on sled, with a SCIM 2.0 connector"
)]
struct Args {
    /// Port of the native API (0 = a free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Port of the SCIM connector (0 = a free port).
    #[arg(long, default_value_t = 0)]
    scim_port: u16,
    /// Data folder (sled); one process per folder.
    #[arg(long, default_value = "data/mock-space")]
    data: PathBuf,
    /// Role-mapping policy (TOML); default: scenarios/policies/space-default.toml, built in.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Token for both servers (generated when absent).
    #[arg(long, env = "SCIMLAB_TOKEN")]
    token: Option<String>,
    /// A token that opens the control plane (`/_sim`) besides `--token`.
    #[arg(long, env = "SCIMLAB_SIM_TOKEN")]
    sim_token: Option<String>,
    /// Acknowledge writes before they are flushed (faster; not crash-safe).
    #[arg(long)]
    no_fsync: bool,
    /// Accept "True"/"False" strings for booleans, as Entra ID sends them.
    #[arg(long)]
    lenient: bool,
    /// Print the endpoints as one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    tls: scim::tls::TlsArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let policy = match &args.policy {
        Some(path) => Policy::load(path)?,
        None => Policy::default_policy(),
    };
    let token = args
        .token
        .unwrap_or_else(|| format!("spc-{}", rand::random::<u128>()));
    let tls = args.tls.tls()?;
    let launched = launch(Options {
        tls,
        scim_oauth: None,
        sim_token: args.sim_token.clone(),
        port: args.port,
        scim_port: args.scim_port,
        data: Some(args.data.clone()),
        token: token.clone(),
        scim_token: token.clone(),
        policy,
        durable: !args.no_fsync,
        lenient: args.lenient,
    })
    .await
    .with_context(|| format!("starting mock-space on {}", args.data.display()))?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "space": {"url": launched.space_url, "token": token},
                "space-scim": {"url": launched.scim_url, "token": token},
            })
        );
    } else {
        println!("space {} token={token}", launched.space_url);
        println!("space-scim {} token={token}", launched.scim_url);
        println!("ready");
    }
    scim::sim::shutdown_signal().await;
    launched.stop().await;
    Ok(())
}
