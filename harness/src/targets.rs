//! The mocks as `scimlab up` and `ci` run them: mock-space and mock-teamcity, each with its SCIM
//! connector and default policy, and mock-idp with one app per connector, like a fresh real
//! deployment, on loopback ports chosen by the system.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use scim::tls::Tls;
use serde_json::{json, Value};

pub use mock_idp::Dialect;

/// Every mock, running: where each listens (the same ports across a restart), and the IdP's
/// app ids for the Space connector and the TeamCity bridge.
#[derive(Debug)]
pub struct Targets {
    pub space: SpaceUrls,
    pub teamcity: TeamCityUrls,
    pub idp: IdpUrls,
    pub space_app: String,
    pub teamcity_app: String,
    setup: Setup,
    running: Running,
}

#[derive(Debug, Clone)]
pub struct SpaceUrls {
    pub space_url: String,
    pub scim_url: String,
}

#[derive(Debug, Clone)]
pub struct TeamCityUrls {
    pub teamcity_url: String,
    pub scim_url: String,
}

#[derive(Debug, Clone)]
pub struct IdpUrls {
    pub url: String,
}

/// A server that can be stopped and started again: the IdP, or a target with its connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Server {
    Idp,
    Space,
    Teamcity,
}

impl Server {
    /// The name in flags and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Server::Idp => "idp",
            Server::Space => "space",
            Server::Teamcity => "teamcity",
        }
    }
}

/// How the mocks were started, to start one again the same way.
#[derive(Debug)]
struct Setup {
    data: Option<PathBuf>,
    token: String,
    durable: bool,
    lenient: bool,
    policies: (mock_space::Policy, mock_teamcity::Policy),
    security: Security,
}

/// How the servers are reached: over HTTPS or not, by static token or OAuth.
#[derive(Debug, Clone, Default)]
pub struct Security {
    pub tls: Tls,
    /// Every SCIM endpoint takes only this authorization server's tokens, and the IdP pushes
    /// with them.
    pub oauth: Option<OAuth>,
}

/// `up --oauth`: mock-idp's authorization server and the one client it knows (by secret or by
/// key), kept in a folder so that the client's credentials and the tokens already issued
/// outlive a restart.
#[derive(Debug, Clone)]
pub struct OAuth {
    pub server: Arc<mock_idp::oauth::OAuthServer>,
    pub verifier: Arc<scim::oauth::Verifier>,
    pub client_id: String,
    pub client_secret: String,
    /// The client's private key (PEM), for `private_key_jwt`.
    pub client_key: PathBuf,
}

/// Who issues the access tokens, and whom they are for.
pub const OAUTH_ISSUER: &str = "scimlab-mock-idp";
pub const OAUTH_AUDIENCE: &str = "scimlab-scim";

impl OAuth {
    /// The server and client in `dir` (made there on first use), tokens living `lifetime`.
    pub fn open(dir: &Path, lifetime: std::time::Duration) -> Result<OAuth, TargetsError> {
        use scim::oauth::{SigningKey, VerifyingKey};
        let bad =
            |e: &dyn std::fmt::Display| TargetsError::OAuth(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(|e| bad(&e))?;
        let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| bad(&e));
        // A key pair: its private PEM (kept 0600) and public PEM, made once.
        let pair = |name: &str| -> Result<(SigningKey, String, PathBuf), TargetsError> {
            let private = dir.join(format!("{name}.pem"));
            let public = dir.join(format!("{name}.pub.pem"));
            if !private.exists() || !public.exists() {
                let (_, private_pem, public_pem) = SigningKey::generate().map_err(|e| bad(&e))?;
                scim::tls::write_private(&private, &private_pem).map_err(|e| bad(&e))?;
                std::fs::write(&public, public_pem).map_err(|e| bad(&e))?;
            }
            let signer = SigningKey::from_pem(&read(&private)?).map_err(|e| bad(&e))?;
            Ok((signer, read(&public)?, private))
        };
        let (signer, issuer_public, _) = pair("issuer-key")?;
        let (client_signer, client_public, client_key) = pair("client-key")?;
        let client_file = dir.join("client.json");
        if !client_file.exists() {
            let made = json!({"client_id": format!("scimlab-{}", random_hex(8)),
                "client_secret": random_hex(24)});
            scim::tls::write_private(&client_file, &made.to_string()).map_err(|e| bad(&e))?;
        }
        let client: Value = serde_json::from_str(&read(&client_file)?).map_err(|e| bad(&e))?;
        let field = |k: &str| {
            client[k]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad(&format!("client.json has no {k}")))
        };
        let (client_id, client_secret) = (field("client_id")?, field("client_secret")?);
        let verifier = scim::oauth::Verifier::new(
            VerifyingKey::from_public_pem(&issuer_public, signer.algorithm())
                .map_err(|e| bad(&e))?,
            OAUTH_ISSUER,
            OAUTH_AUDIENCE,
        );
        let client_key_check =
            VerifyingKey::from_public_pem(&client_public, client_signer.algorithm())
                .map_err(|e| bad(&e))?;
        let server = mock_idp::oauth::OAuthServer::new(
            scim::oauth::Issuer::new(signer, OAUTH_ISSUER, OAUTH_AUDIENCE, lifetime),
            vec![mock_idp::oauth::OAuthClient {
                id: client_id.clone(),
                secret: Some(client_secret.clone()),
                public_key: Some(client_key_check),
            }],
        );
        Ok(OAuth {
            server: Arc::new(server),
            verifier: Arc::new(verifier),
            client_id,
            client_secret,
            client_key,
        })
    }
}

/// `bytes` random bytes in hex.
fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// The mocks now running; `None` while one is down.
#[derive(Debug, Default)]
struct Running {
    space: Option<mock_space::Launched>,
    teamcity: Option<mock_teamcity::Launched>,
    idp: Option<mock_idp::Launched>,
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

impl Setup {
    async fn space(&self, urls: Option<&SpaceUrls>) -> Result<mock_space::Launched, TargetsError> {
        Ok(mock_space::launch(mock_space::Options {
            port: urls.map_or(0, |u| port_of(&u.space_url)),
            scim_port: urls.map_or(0, |u| port_of(&u.scim_url)),
            data: self.data.clone(),
            token: self.token.clone(),
            scim_token: self.token.clone(),
            policy: self.policies.0.clone(),
            durable: self.durable,
            lenient: self.lenient,
            sim_token: None,
            tls: self.security.tls.clone(),
            scim_oauth: self.security.oauth.as_ref().map(|o| o.verifier.clone()),
        })
        .await?)
    }

    async fn teamcity(
        &self,
        urls: Option<&TeamCityUrls>,
    ) -> Result<mock_teamcity::Launched, TargetsError> {
        Ok(mock_teamcity::launch(mock_teamcity::Options {
            target: mock_teamcity::Target::Simulator {
                port: urls.map_or(0, |u| port_of(&u.teamcity_url)),
            },
            scim_port: urls.map_or(0, |u| port_of(&u.scim_url)),
            data: self.data.clone(),
            token: self.token.clone(),
            scim_token: self.token.clone(),
            policy: self.policies.1.clone(),
            durable: self.durable,
            lenient: self.lenient,
            sim_token: None,
            tls: self.security.tls.clone(),
            scim_oauth: self.security.oauth.as_ref().map(|o| o.verifier.clone()),
        })
        .await?)
    }

    async fn idp(&self, urls: Option<&IdpUrls>) -> Result<mock_idp::Launched, TargetsError> {
        Ok(mock_idp::launch(mock_idp::Options {
            port: urls.map_or(0, |u| port_of(&u.url)),
            data: self.data.as_ref().map(|d| d.join("idp")),
            token: self.token.clone(),
            durable: self.durable,
            engine: mock_idp::EngineConfig::default(),
            sim_token: None,
            tls: self.security.tls.clone(),
            oauth: self.security.oauth.as_ref().map(|o| o.server.clone()),
        })
        .await?)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetsError {
    #[error("cannot start mock-space: {0}")]
    Space(#[from] mock_space::LaunchError),
    #[error("cannot start mock-teamcity: {0}")]
    TeamCity(#[from] mock_teamcity::LaunchError),
    #[error("cannot start mock-idp: {0}")]
    Idp(#[from] mock_idp::LaunchError),
    #[error("cannot set up the IdP's apps: {0}")]
    Wiring(String),
    #[error("cannot set up OAuth: {0}")]
    OAuth(String),
    #[error("{0:?} cannot restart: its state is in memory only (give a data folder)")]
    InMemory(Server),
}

/// Calls the IdP's management API as an administrator would; an answer other than 2xx is an
/// error that names the call and the answer.
pub async fn idp_call(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut req = client
        .request(method.clone(), format!("{url}{path}"))
        .header("authorization", format!("SSWS {token}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!(
            "{method} {path}: the IdP answered {status}: {text}"
        ));
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A GET of the IdP's management API; `None` when it answers 404 (a deleted user, say).
pub async fn idp_find(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    path: &str,
) -> Result<Option<Value>, String> {
    let resp = client
        .get(format!("{url}{path}"))
        .header("authorization", format!("SSWS {token}"))
        .send()
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    match resp.status().as_u16() {
        404 => Ok(None),
        200 => resp
            .json()
            .await
            .map(Some)
            .map_err(|e| format!("GET {path}: {e}")),
        code => Err(format!("GET {path}: the IdP answered {code}")),
    }
}

/// mock-idp in memory on loopback, as `scenario --scim` and `load --scim` run it beside a
/// foreign endpoint, trusting `client` for the endpoint's certificate.
pub async fn embedded_idp(
    token: &str,
    client: scim::tls::ClientTls,
) -> Result<mock_idp::Launched, TargetsError> {
    Ok(mock_idp::launch(mock_idp::Options {
        port: 0,
        data: None,
        token: token.to_owned(),
        durable: false,
        engine: mock_idp::EngineConfig::default(),
        sim_token: None,
        tls: Tls {
            server: None,
            client,
        },
        oauth: None,
    })
    .await?)
}

/// The id of the IdP group called `name`. With `reuse`, one of that name is taken if there is
/// one (servers already running may have it from an earlier run or another shard, and the
/// policies match groups by name); names are unique in the IdP, so a create refused because
/// another client made it meanwhile finds that one.
pub async fn group_named(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    name: &str,
    reuse: bool,
) -> Result<String, String> {
    use reqwest::Method;
    let call = |method, path: String, body| async move {
        idp_call(client, url, token, method, &path, body).await
    };
    let find = || async {
        let path = format!("/api/v1/groups?q={}", crate::encode(name));
        let found = call(Method::GET, path, None).await?;
        Ok::<_, String>(
            found
                .as_array()
                .into_iter()
                .flatten()
                .find(|g| g["profile"]["name"] == json!(name))
                .and_then(|g| g["id"].as_str())
                .map(str::to_owned),
        )
    };
    if reuse {
        if let Some(id) = find().await? {
            return Ok(id);
        }
    }
    let body = json!({"profile": {"name": name}});
    match call(Method::POST, "/api/v1/groups".into(), Some(body)).await {
        Ok(g) => g["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("group {name}: the IdP gave no id")),
        Err(e) if reuse => find().await?.ok_or(e),
        Err(e) => Err(e),
    }
}

/// Assigns a group to an app (its members get accounts) and pushes it (it exists there, with
/// its members), as an Okta administrator would; a group already pushed is left as it is.
pub async fn assign_and_push(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    app: &str,
    group: &str,
) -> Result<(), String> {
    use reqwest::Method;
    let call = |method, path: String, body| async move {
        idp_call(client, url, token, method, &path, body).await
    };
    call(
        Method::PUT,
        format!("/api/v1/apps/{app}/groups/{group}"),
        Some(json!({})),
    )
    .await?;
    let path = format!("/api/v1/apps/{app}/group-push/mappings");
    let pushed = || async {
        let mappings = call(Method::GET, path.clone(), None).await?;
        Ok::<_, String>(
            mappings
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["sourceGroupId"] == json!(group)),
        )
    };
    if !pushed().await? {
        let push = call(
            Method::POST,
            path.clone(),
            Some(json!({"sourceGroupId": group})),
        );
        // Refused because another client (a shard starting alongside) pushed it meanwhile.
        if let Err(e) = push.await {
            if !pushed().await? {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// The app connection profile for pushing with the IdP's `token`, or with OAuth tokens from
/// `oauth` when the targets take only those.
fn connection(idp_url: &str, token: &str, oauth: Option<&OAuth>) -> Value {
    match oauth {
        Some(o) => json!({"authScheme": "OAUTH2",
            "tokenUrl": format!("{idp_url}{}", mock_idp::oauth::TOKEN_PATH),
            "clientId": o.client_id, "clientSecret": o.client_secret}),
        None => json!({"authScheme": "TOKEN", "token": token}),
    }
}

/// The app labelled `label` (created when missing), pointed at `scim_url` in `dialect` with
/// every provisioning feature on, authenticating with `connection` (an app connection
/// profile: `authScheme` and its fields).
pub(crate) async fn wire_app(
    client: &reqwest::Client,
    idp_url: &str,
    token: &str,
    connection: Value,
    label: &str,
    scim_url: &str,
    dialect: Dialect,
) -> Result<String, TargetsError> {
    use reqwest::Method;
    let call = |method, path: String, body: Value| async move {
        idp_call(client, idp_url, token, method, &path, Some(body))
            .await
            .map_err(TargetsError::Wiring)
    };
    let apps = idp_call(client, idp_url, token, Method::GET, "/api/v1/apps", None)
        .await
        .map_err(TargetsError::Wiring)?;
    let existing = apps
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["label"] == label)
        .and_then(|a| a["id"].as_str())
        .map(str::to_owned);
    let settings = json!({"label": label, "settings": {"app": {"scimDialect": dialect}}});
    let id = match existing {
        Some(id) => {
            call(Method::PUT, format!("/api/v1/apps/{id}"), settings).await?;
            id
        }
        None => {
            let app = call(Method::POST, "/api/v1/apps".into(), settings).await?;
            app["id"]
                .as_str()
                .ok_or_else(|| TargetsError::Wiring(format!("the IdP answered no app id: {app}")))?
                .to_owned()
        }
    };
    // The connectors listen on new ports after a restart: point the app at them again.
    call(
        Method::POST,
        format!("/api/v1/apps/{id}/connections/default?activate=true"),
        json!({"profile": connection, "baseUrl": scim_url}),
    )
    .await?;
    call(
        Method::PUT,
        format!("/api/v1/apps/{id}/features/USER_PROVISIONING"),
        json!({"capabilities": {"create": {"lifecycleCreate": {"status": "ENABLED"}},
            "update": {"profile": {"status": "ENABLED"}, "lifecycleDeactivate": {"status": "ENABLED"}}}}),
    )
    .await?;
    Ok(id)
}

/// The policies for IdP-pushed groups in `dir` (`space-idp.toml`, `teamcity-idp.toml`); an
/// error names the file.
pub fn idp_policies(
    dir: &Path,
) -> Result<(mock_space::Policy, mock_teamcity::Policy), (PathBuf, String)> {
    let space = dir.join("space-idp.toml");
    let space = mock_space::Policy::load(&space).map_err(|e| (space, e.to_string()))?;
    let teamcity = dir.join("teamcity-idp.toml");
    let teamcity = mock_teamcity::Policy::load(&teamcity).map_err(|e| (teamcity, e.to_string()))?;
    Ok((space, teamcity))
}

impl Targets {
    /// Starts every mock, the IdP in the Okta dialect; `data` `None` keeps everything in
    /// memory; `durable` flushes before answering.
    pub async fn start(
        data: Option<PathBuf>,
        token: &str,
        durable: bool,
    ) -> Result<Targets, TargetsError> {
        Self::start_with(data, token, durable, Dialect::Okta).await
    }

    /// As `start`, with the IdP's apps in `dialect`; the connectors then accept Entra's
    /// `"True"`/`"False"` strings.
    pub async fn start_with(
        data: Option<PathBuf>,
        token: &str,
        durable: bool,
        dialect: Dialect,
    ) -> Result<Targets, TargetsError> {
        let policies = (
            mock_space::Policy::default_policy(),
            mock_teamcity::Policy::default_policy(),
        );
        Self::start_with_policies(data, token, durable, dialect, policies, Security::default())
            .await
    }

    /// As `start_with`, the connectors mapping groups to permissions by these policies, every
    /// server over HTTPS when `security` has a server config, and taking OAuth tokens only
    /// when it has an authorization server.
    pub async fn start_with_policies(
        data: Option<PathBuf>,
        token: &str,
        durable: bool,
        dialect: Dialect,
        policies: (mock_space::Policy, mock_teamcity::Policy),
        security: Security,
    ) -> Result<Targets, TargetsError> {
        let wiring = |e: &dyn std::fmt::Display| TargetsError::Wiring(e.to_string());
        let client = security.tls.client.builder().map_err(|e| wiring(&e))?;
        let client = client.build().map_err(|e| wiring(&e))?;
        let setup = Setup {
            data,
            token: token.to_owned(),
            durable,
            lenient: dialect == Dialect::Entra,
            policies,
            security,
        };
        let oauth = setup.security.oauth.as_ref();
        let space = setup.space(None).await?;
        let teamcity = setup.teamcity(None).await?;
        let idp = setup.idp(None).await?;
        let space_app = wire_app(
            &client,
            &idp.url,
            token,
            connection(&idp.url, token, oauth),
            "Space",
            &space.scim_url,
            dialect,
        )
        .await?;
        let teamcity_app = wire_app(
            &client,
            &idp.url,
            token,
            connection(&idp.url, token, oauth),
            "TeamCity",
            &teamcity.scim_url,
            dialect,
        )
        .await?;
        Ok(Targets {
            space: SpaceUrls {
                space_url: space.space_url.clone(),
                scim_url: space.scim_url.clone(),
            },
            teamcity: TeamCityUrls {
                teamcity_url: teamcity.teamcity_url.clone(),
                scim_url: teamcity.scim_url.clone(),
            },
            idp: IdpUrls {
                url: idp.url.clone(),
            },
            space_app,
            teamcity_app,
            setup,
            running: Running {
                space: Some(space),
                teamcity: Some(teamcity),
                idp: Some(idp),
            },
        })
    }

    /// Stops one server after its open requests finish; its data stays for `up`.
    pub async fn down(&mut self, server: Server) -> Result<(), TargetsError> {
        if self.setup.data.is_none() {
            return Err(TargetsError::InMemory(server));
        }
        match server {
            Server::Space => {
                if let Some(s) = self.running.space.take() {
                    s.stop().await;
                }
            }
            Server::Teamcity => {
                if let Some(s) = self.running.teamcity.take() {
                    s.stop().await;
                }
            }
            Server::Idp => {
                if let Some(s) = self.running.idp.take() {
                    s.stop().await;
                }
            }
        }
        Ok(())
    }

    /// Starts a stopped server again on its ports, from its data; a running one is left alone.
    pub async fn up(&mut self, server: Server) -> Result<(), TargetsError> {
        match server {
            Server::Space if self.running.space.is_none() => {
                self.running.space = Some(self.setup.space(Some(&self.space)).await?);
            }
            Server::Teamcity if self.running.teamcity.is_none() => {
                self.running.teamcity = Some(self.setup.teamcity(Some(&self.teamcity)).await?);
            }
            Server::Idp if self.running.idp.is_none() => {
                self.running.idp = Some(self.setup.idp(Some(&self.idp)).await?);
            }
            _ => {}
        }
        Ok(())
    }

    pub async fn stop(self) {
        let Running {
            space,
            teamcity,
            idp,
        } = self.running;
        if let Some(idp) = idp {
            idp.stop().await;
        }
        if let Some(teamcity) = teamcity {
            teamcity.stop().await;
        }
        if let Some(space) = space {
            space.stop().await;
        }
    }
}
