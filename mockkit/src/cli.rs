//! What the mocks' binaries share on their command line and at start.

use scim::tls::TlsArgs;

/// Flags of every mock target (mock-space, mock-teamcity).
#[derive(Debug, clap::Args)]
pub struct MockFlags {
    /// A token that opens the control plane (`/_sim`) besides `--token`.
    #[arg(long, env = "SCIMLAB_SIM_TOKEN")]
    pub sim_token: Option<String>,
    /// Acknowledge writes before they are flushed (faster; not crash-safe).
    #[arg(long)]
    pub no_fsync: bool,
    /// Accept "True"/"False" strings for booleans, as Entra ID sends them.
    #[arg(long)]
    pub lenient: bool,
    /// Print the endpoints as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// Logs to stderr, filtered by `RUST_LOG`.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
}

/// Says where the servers listen, all with `token`: one JSON object (`--json`), or a
/// `name url token=...` line each and then `ready`.
pub fn print_endpoints(json: bool, token: &str, endpoints: &[(&str, &str)]) {
    if json {
        let out: serde_json::Map<String, serde_json::Value> = endpoints
            .iter()
            .map(|(name, url)| {
                (
                    (*name).to_owned(),
                    serde_json::json!({"url": url, "token": token}),
                )
            })
            .collect();
        println!("{}", serde_json::Value::Object(out));
    } else {
        for (name, url) in endpoints {
            println!("{name} {url} token={token}");
        }
        println!("ready");
    }
}
