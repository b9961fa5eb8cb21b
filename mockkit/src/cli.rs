//! What the mocks' binaries share on their command line and at start.

use scim::tls::TlsArgs;

use crate::connector::{Policy, PolicyError, PolicyGrant};

/// Flags of every mock target (mock-space, mock-teamcity).
#[derive(Debug, clap::Args)]
pub struct MockFlags {
    /// Port of the SCIM connector (0 = a free port).
    #[arg(long, default_value_t = 0)]
    pub scim_port: u16,
    /// Role-mapping policy (TOML); default: the product's own,
    /// scenarios/policies/<product>-default.toml, built in.
    #[arg(long)]
    pub policy: Option<std::path::PathBuf>,
    /// Token for both servers (generated when absent).
    #[arg(long, env = "SCIMLAB_TOKEN")]
    pub token: Option<String>,
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

impl MockFlags {
    /// `--token`, or a fresh random one that starts with `prefix`.
    pub fn token(&self, prefix: &str) -> String {
        self.token
            .clone()
            .unwrap_or_else(|| format!("{prefix}-{:032x}", rand::random::<u128>()))
    }

    /// `--policy`, or the product's built-in one.
    pub fn policy<G: PolicyGrant>(&self) -> Result<Policy<G>, PolicyError> {
        match &self.policy {
            Some(path) => Policy::load(path),
            None => Ok(Policy::default_policy()),
        }
    }

    /// How the connector is served from these flags, keeping data in `data`, taking `token`.
    pub fn serving(
        &self,
        data: std::path::PathBuf,
        token: &str,
    ) -> Result<crate::connector::Serving, scim::tls::TlsError> {
        Ok(crate::connector::Serving {
            scim_port: self.scim_port,
            data: Some(data),
            scim_token: token.to_owned(),
            scim_oauth: None,
            sim_token: self.sim_token.clone(),
            durable: !self.no_fsync,
            lenient: self.lenient,
            tls: self.tls.tls()?,
        })
    }
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
