//! How scimlab reaches servers it did not start: the TLS flags every command that calls a
//! server takes (conformance, scenario, load), the same everywhere.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use std::sync::Arc;

use scim::oauth::{ClientAuth, Credentials, SigningKey, TokenSource};
use scim::tls::ClientTls;

#[derive(Debug, Clone, Default, Args)]
pub struct TlsFlags {
    /// Trust this certificate authority (PEM) besides the system's (repeatable), e.g. the
    /// `ca.pem` that `scimlab up --tls` prints.
    #[arg(long = "ca-cert")]
    pub ca_certs: Vec<PathBuf>,
    /// Present this certificate (PEM) to servers that ask for one (mutual TLS).
    #[arg(long, requires = "client_cert_key")]
    pub client_cert: Option<PathBuf>,
    /// The private key (PEM) of --client-cert.
    #[arg(long, requires = "client_cert")]
    pub client_cert_key: Option<PathBuf>,
    /// Accept any server certificate. For a test server only: every report says so.
    #[arg(long)]
    pub insecure: bool,
}

impl TlsFlags {
    /// The client config, checked now so that a bad file stops the command before any call.
    pub fn client_tls(&self) -> Result<ClientTls, scim::tls::TlsError> {
        let tls = ClientTls {
            ca_certs: self.ca_certs.clone(),
            identity: self.client_cert.clone().zip(self.client_cert_key.clone()),
            insecure: self.insecure,
        };
        tls.config()?;
        Ok(tls)
    }
}

/// The line every report carries when certificates were not checked.
pub const INSECURE_NOTICE: &str =
    "--insecure: server certificates were NOT checked; these results say nothing about TLS";

/// OAuth 2.0 client credentials (RFC 6749 §4.4): the token is fetched before the run and
/// again before it expires.
#[derive(Debug, Clone, Default, Args)]
pub struct OAuthFlags {
    /// The authorization server's token endpoint, e.g. https://idp.example.com/oauth2/v1/token.
    #[arg(long, requires = "client_id")]
    pub oauth_token_url: Option<String>,
    #[arg(long, requires = "oauth_token_url")]
    pub client_id: Option<String>,
    /// The client secret (or SCIMLAB_CLIENT_SECRET); never printed.
    #[arg(long, env = "SCIMLAB_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// Read the client secret from this file (its first line).
    #[arg(long, conflicts_with = "client_secret")]
    pub client_secret_file: Option<PathBuf>,
    /// How the secret is sent: HTTP Basic (client_secret_basic) or in the form
    /// (client_secret_post).
    #[arg(long, value_enum, default_value = "basic")]
    pub client_auth: SecretIn,
    /// Authenticate with a JWT signed by this private key (PEM; private_key_jwt, RFC 7523)
    /// instead of a secret.
    #[arg(long, conflicts_with_all = ["client_secret", "client_secret_file"])]
    pub client_key: Option<PathBuf>,
    /// The scope to ask for.
    #[arg(long)]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum SecretIn {
    #[default]
    Basic,
    Post,
}

impl OAuthFlags {
    /// The client, when a token URL was given; a missing secret or unreadable key is an error
    /// before any call.
    pub fn credentials(&self) -> anyhow::Result<Option<Credentials>> {
        use anyhow::Context;
        let (Some(token_url), Some(client_id)) = (&self.oauth_token_url, &self.client_id) else {
            return Ok(None);
        };
        let secret = match (&self.client_secret, &self.client_secret_file) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                Some(text.lines().next().unwrap_or("").trim().to_owned())
            }
            (None, None) => None,
        };
        let auth = match (&self.client_key, secret) {
            (Some(key), _) => {
                let pem = std::fs::read_to_string(key)
                    .with_context(|| format!("cannot read {}", key.display()))?;
                let signer =
                    SigningKey::from_pem(&pem).with_context(|| key.display().to_string())?;
                ClientAuth::PrivateKeyJwt(signer)
            }
            (None, Some(s)) if !s.is_empty() => match self.client_auth {
                SecretIn::Basic => ClientAuth::SecretBasic(s),
                SecretIn::Post => ClientAuth::SecretPost(s),
            },
            _ => anyhow::bail!(
                "--oauth-token-url needs --client-secret, --client-secret-file or --client-key"
            ),
        };
        Ok(Some(Credentials {
            token_url: token_url.clone(),
            client_id: client_id.clone(),
            auth,
            scope: self.scope.clone(),
        }))
    }
}

/// How scimlab authenticates to a SCIM endpoint it did not start: the same flags on every
/// command that calls one (conformance, scenario --scim, load --scim).
#[derive(Debug, Clone, Default, Args)]
pub struct AuthFlags {
    /// Bearer token (or SCIMLAB_TOKEN).
    #[arg(long, env = "SCIMLAB_TOKEN", hide_env_values = true, conflicts_with_all = ["basic", "token_file", "oauth_token_url"])]
    pub token: Option<String>,
    /// Read the bearer token from this file (its first line).
    #[arg(long, conflicts_with_all = ["basic", "oauth_token_url"])]
    pub token_file: Option<PathBuf>,
    /// HTTP Basic credentials as USER:PASSWORD.
    #[arg(long, conflicts_with = "oauth_token_url")]
    pub basic: Option<String>,
    #[command(flatten)]
    pub oauth: OAuthFlags,
}

impl AuthFlags {
    /// The bearer token given directly or in a file.
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        use anyhow::Context;
        match &self.token_file {
            Some(path) => Ok(Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned(),
            )),
            None => Ok(self.token.clone()),
        }
    }

    /// How the harness's own requests authenticate.
    pub fn auth(&self, tls: &ClientTls) -> anyhow::Result<crate::conformance::Auth> {
        use crate::conformance::Auth;
        Ok(
            match (self.token()?, &self.basic, self.oauth.credentials()?) {
                (Some(t), _, _) => Auth::Bearer(t),
                (None, Some(b), _) => Auth::Basic(b.clone()),
                (None, None, Some(credentials)) => {
                    let http = tls
                        .builder()?
                        .timeout(std::time::Duration::from_secs(10))
                        .build()?;
                    Auth::OAuth(TokenSource::new(credentials, http))
                }
                (None, None, None) => Auth::None,
            },
        )
    }

    /// How `--scim` runs reach the endpoint: the IdP pushes with a bearer token or OAuth
    /// client credentials with a secret (what Okta's and Entra's SCIM apps support); the
    /// harness reads back with the credentials exactly as given.
    pub fn endpoint_auth(
        &self,
        tls: &ClientTls,
    ) -> anyhow::Result<crate::scim_target::EndpointAuth> {
        Ok(crate::scim_target::EndpointAuth {
            push: self.push_auth()?,
            read: self.auth(tls)?,
        })
    }

    fn push_auth(&self) -> anyhow::Result<crate::scim_target::PushAuth> {
        use crate::scim_target::PushAuth;
        if let Some(token) = self.token()? {
            return Ok(PushAuth::Bearer(token));
        }
        if self.basic.is_some() {
            anyhow::bail!("the IdP pushes with a bearer token or OAuth client credentials, not HTTP Basic: give --token or --oauth-token-url");
        }
        match self.oauth.credentials()? {
            Some(Credentials {
                token_url,
                client_id,
                auth: ClientAuth::SecretBasic(secret) | ClientAuth::SecretPost(secret),
                ..
            }) => Ok(PushAuth::OAuth {
                token_url,
                client_id,
                client_secret: secret,
            }),
            Some(_) => anyhow::bail!(
                "the IdP's OAuth client authenticates with a secret: give --client-secret, not --client-key"
            ),
            None => anyhow::bail!("give --token (or --token-file) or --oauth-token-url with a client"),
        }
    }
}

/// A bearer credential: a fixed token, or OAuth access tokens fetched as they are needed.
#[derive(Debug, Clone)]
pub enum Bearer {
    Token(String),
    OAuth(Arc<TokenSource>),
}

impl Bearer {
    pub async fn token(&self) -> Result<String, scim::oauth::OAuthError> {
        match self {
            Bearer::Token(t) => Ok(t.clone()),
            Bearer::OAuth(source) => source.bearer().await,
        }
    }
}
