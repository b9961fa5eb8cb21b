//! `mock-idp`: the Okta-like IdP and its provisioning engine on loopback.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use mock_idp::{launch, EngineConfig, Options};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "An Okta-like IdP whose provisioning engine pushes changes to SCIM apps"
)]
struct Args {
    /// Port of the management API (0 = a free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Data folder (sled); one process per folder.
    #[arg(long, default_value = "data/mock-idp")]
    data: PathBuf,
    /// API token, sent as `Authorization: SSWS <token>` (generated when absent).
    #[arg(long, env = "SCIMLAB_TOKEN")]
    token: Option<String>,
    /// A token that opens the control plane (`/_sim`) besides `--token`.
    #[arg(long, env = "SCIMLAB_SIM_TOKEN")]
    sim_token: Option<String>,
    /// Acknowledge API writes before they are flushed (faster; not crash-safe).
    #[arg(long)]
    no_fsync: bool,
    /// Deliveries in flight per app.
    #[arg(long, default_value_t = mock_idp::EngineConfig::default().concurrency)]
    concurrency: usize,
    /// Attempts before an outbox entry is parked.
    #[arg(long, default_value_t = 10)]
    max_attempts: u32,
    /// First retry delay in milliseconds; it doubles per attempt, with jitter.
    #[arg(long, default_value_t = 250)]
    retry_base_ms: u64,
    /// Longest retry delay in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    retry_cap_ms: u64,
    /// Print the endpoint as one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    tls: scim::tls::TlsArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mockkit::cli::init_tracing();
    let args = Args::parse();
    anyhow::ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    anyhow::ensure!(args.max_attempts >= 1, "--max-attempts must be at least 1");
    let token = args
        .token
        .unwrap_or_else(|| format!("idp-{}", rand::random::<u128>()));
    let tls = args.tls.tls()?;
    let launched = launch(Options {
        tls,
        oauth: None,
        sim_token: args.sim_token.clone(),
        port: args.port,
        data: Some(args.data.clone()),
        token: token.clone(),
        durable: !args.no_fsync,
        engine: EngineConfig {
            concurrency: args.concurrency,
            max_attempts: args.max_attempts,
            backoff_base: Duration::from_millis(args.retry_base_ms),
            backoff_cap: Duration::from_millis(args.retry_cap_ms.max(args.retry_base_ms)),
            ..EngineConfig::default()
        },
    })
    .await
    .with_context(|| format!("starting mock-idp on {}", args.data.display()))?;
    mockkit::cli::print_endpoints(args.json, &token, &[("idp", &launched.url)]);
    scim::serve::shutdown_signal().await;
    launched.stop().await;
    Ok(())
}
