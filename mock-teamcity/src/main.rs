//! `mock-teamcity`: the TeamCity-like simulator and its SCIM bridge on loopback, or the bridge
//! alone in front of a real TeamCity (`--teamcity-url`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use mock_teamcity::{launch, Options, Policy, Target};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A TeamCity-like REST API on sled, with a SCIM 2.0 bridge"
)]
struct Args {
    /// Port of the simulator's REST API (0 = a free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Data folder (sled); one process per folder.
    #[arg(long, default_value = "data/mock-teamcity")]
    data: PathBuf,
    /// Run only the bridge, in front of this TeamCity server.
    #[arg(long, requires = "teamcity_token")]
    teamcity_url: Option<String>,
    /// Access token for --teamcity-url (a user who may manage users, groups and roles).
    #[arg(long, env = "TEAMCITY_TOKEN")]
    teamcity_token: Option<String>,
    #[command(flatten)]
    common: mockkit::cli::MockFlags,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mockkit::cli::init_tracing();
    let args = Args::parse();
    let policy: Policy = args.common.policy()?;
    let token = args.common.token("tc");
    let target = match (args.teamcity_url, args.teamcity_token) {
        (Some(url), Some(token)) => Target::Remote { url, token },
        _ => Target::Simulator { port: args.port },
    };
    let serving = args.common.serving(args.data.clone(), &token)?;
    let launched = launch(Options {
        target,
        token: token.clone(),
        policy,
        serving,
    })
    .await
    .with_context(|| format!("starting mock-teamcity on {}", args.data.display()))?;
    let mut endpoints = Vec::new();
    if launched.teamcity.is_some() {
        endpoints.push(("teamcity", launched.teamcity_url.clone()));
    }
    endpoints.push(("teamcity-scim", launched.scim_url.clone()));
    let endpoints: Vec<(&str, &str)> = endpoints.iter().map(|(n, u)| (*n, u.as_str())).collect();
    mockkit::cli::print_endpoints(args.common.json, &token, &endpoints);
    scim::serve::shutdown_signal().await;
    launched.stop().await;
    Ok(())
}
