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
    /// Data folder (sled); one process per folder.
    #[arg(long, default_value = "data/mock-space")]
    data: PathBuf,
    #[command(flatten)]
    common: mockkit::cli::MockFlags,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mockkit::cli::init_tracing();
    let args = Args::parse();
    let policy: Policy = args.common.policy()?;
    let token = args.common.token("spc");
    let serving = args.common.serving(args.data.clone(), &token)?;
    let launched = launch(Options {
        port: args.port,
        token: token.clone(),
        policy,
        serving,
    })
    .await
    .with_context(|| format!("starting mock-space on {}", args.data.display()))?;
    mockkit::cli::print_endpoints(
        args.common.json,
        &token,
        &[
            ("space", &launched.space_url),
            ("space-scim", &launched.scim_url),
        ],
    );
    scim::serve::shutdown_signal().await;
    launched.stop().await;
    Ok(())
}
