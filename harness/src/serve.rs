//! `scimlab up`: the standalone SCIM provider, mock-space and mock-teamcity (each a native API
//! and its SCIM connector) and mock-idp with one app per connector, on loopback, following DESIGN.md's start-up contract (`NAME URL token=TOKEN` lines, then
//! `ready`; `--json` for one JSON object).

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
    #[arg(long, value_enum, default_value_t = harness::targets::Dialect::Okta)]
    pub dialect: harness::targets::Dialect,
    /// Map the IdP's pushed groups by the policies in this folder (space-idp.toml,
    /// teamcity-idp.toml: `scenarios/policies`, as `scimlab load --targets` expects) instead of
    /// the connectors' defaults.
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// Serve every server over HTTPS with certificates signed by a local authority kept in
    /// DATA/tls (its `ca.pem` is printed: give it to clients with --ca-cert).
    #[arg(long, conflicts_with = "tls_cert")]
    pub tls: bool,
    /// Serve HTTPS with your own certificate instead (--tls-cert, --tls-key; the servers'
    /// calls to each other trust --ca-cert).
    #[command(flatten)]
    pub own_tls: scim::tls::TlsArgs,
    /// Every SCIM endpoint takes only OAuth 2.0 access tokens from the IdP's token endpoint
    /// (client credentials); the client's id and secret are printed, its key for
    /// private_key_jwt is DATA/oauth/client-key.pem. The IdP's pushes use them too.
    #[arg(long)]
    pub oauth: bool,
    /// How long the IdP's access tokens live, in seconds.
    #[arg(long, default_value_t = 3600, requires = "oauth")]
    pub oauth_token_lifetime: u64,
    /// Rate-limit the SCIM provider: each credential may send N requests at once and N per
    /// second, then gets 429 with Retry-After (the IPSIE AL1 profile asks for a limit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit: Option<u32>,
}

/// A running provider.
pub struct Running {
    pub url: String,
    servers: scim::serve::Servers,
}

pub fn generate_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Binds 127.0.0.1:`port` and serves a provider whose data lives in `dir`, over HTTPS when
/// given a TLS config.
pub async fn start(
    port: u16,
    dir: &Path,
    token: String,
    durability: Durability,
    tls: Option<scim::tls::ServerTls>,
    oauth: Option<std::sync::Arc<scim::oauth::Verifier>>,
    rate_limit: Option<scim::rate::RateLimit>,
) -> anyhow::Result<Running> {
    let mut servers = scim::serve::Servers::new(tls);
    let (listener, url) = servers
        .bind(port)
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config = ProviderConfig {
        base_url: url.clone(),
        durability,
        rate_limit,
        ..Default::default()
    };
    let provider = Provider::open(dir, config)
        .with_context(|| format!("cannot open the SCIM store in {}", dir.display()))?;
    let state = AppState {
        provider,
        tokens: match oauth {
            Some(_) => Vec::new(),
            None => vec![token.clone()],
        },
        oauth,
    };
    servers.serve(listener, app(state));
    Ok(Running { url, servers })
}

impl Running {
    /// Stops accepting requests, lets the ones in flight finish, and closes the store.
    pub async fn stop(self) {
        self.servers.stop().await;
    }
}

/// The TLS every server of `up` serves with, and the CA file to print (`--tls` only).
fn up_tls(args: &UpArgs) -> anyhow::Result<(scim::tls::Tls, Option<PathBuf>)> {
    if !args.tls {
        return Ok((args.own_tls.tls()?, None));
    }
    let dir = args.data.join("tls");
    let authority = scim::tls::Authority::open(&dir)?;
    let ca = dir.join("ca.pem");
    let tls = scim::tls::Tls {
        server: Some(authority.loopback_server()?),
        client: scim::tls::ClientTls::trusting(&ca),
    };
    Ok((tls, Some(ca)))
}

pub async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    // Read first: a bad file stops `up` before anything listens or writes.
    let policies = match &args.policies {
        Some(dir) => harness::targets::idp_policies(dir)
            .map_err(|(path, e)| anyhow::anyhow!("{}: {e}", path.display()))?,
        None => harness::targets::default_policies(),
    };
    let token = args.token.clone().unwrap_or_else(generate_token);
    let durability = if args.no_fsync {
        Durability::Background
    } else {
        Durability::Flush
    };
    let (tls, ca) = up_tls(&args)?;
    let oauth = if args.oauth {
        let lifetime = std::time::Duration::from_secs(args.oauth_token_lifetime.max(1));
        Some(harness::targets::OAuth::open(
            &args.data.join("oauth"),
            lifetime,
        )?)
    } else {
        None
    };
    let running = start(
        args.port,
        &args.data.join("scim"),
        token.clone(),
        durability,
        tls.server.clone(),
        oauth.as_ref().map(|o| o.verifier.clone()),
        args.rate_limit.map(|n| scim::rate::RateLimit {
            per_second: n,
            burst: n,
        }),
    )
    .await?;
    let targets = harness::targets::Targets::start_with_policies(
        Some(args.data.clone()),
        &token,
        !args.no_fsync,
        args.dialect,
        policies,
        harness::targets::Security {
            tls,
            oauth: oauth.clone(),
        },
    )
    .await?;
    let token_url = format!("{}{}", targets.idp.url, mock_idp::oauth::TOKEN_PATH);
    let mut endpoints = vec![
        ("idp".to_owned(), &targets.idp.url),
        ("scim".to_owned(), &running.url),
    ];
    for (t, urls) in &targets.mocks {
        endpoints.push((t.to_string(), &urls.native_url));
        endpoints.push((format!("{t}-scim"), &urls.scim_url));
    }
    if args.json {
        let mut out = serde_json::Map::new();
        for (name, url) in endpoints {
            out.insert(name, serde_json::json!({"url": url, "token": token}));
        }
        if let Some(ca) = &ca {
            out.insert("ca".into(), ca.display().to_string().into());
        }
        if let Some(o) = &oauth {
            out.insert(
                "oauth".into(),
                serde_json::json!({"token_url": token_url, "client_id": o.client_id,
                    "client_secret": o.client_secret, "client_key": o.client_key}),
            );
        }
        out.insert("ready".into(), true.into());
        println!("{}", serde_json::Value::Object(out));
    } else {
        for (name, url) in endpoints {
            println!("{name} {url} token={token}");
        }
        if let Some(ca) = &ca {
            println!("ca {}", ca.display());
        }
        if let Some(o) = &oauth {
            println!(
                "oauth {token_url} client_id={} client_secret={} client_key={}",
                o.client_id,
                o.client_secret,
                o.client_key.display()
            );
        }
        println!("ready");
    }
    scim::serve::shutdown_signal().await;
    targets.stop().await;
    running.stop().await;
    Ok(ExitCode::SUCCESS)
}
