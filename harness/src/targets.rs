//! The mocks as `scimlab up` and `ci` run them: mock-space and mock-teamcity, each with its SCIM
//! connector and default policy, and mock-idp with one app per connector, like a fresh real
//! deployment, on loopback ports chosen by the system.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use scim::tls::Tls;
use serde_json::{json, Value};

pub use mock_idp::Dialect;

use crate::mock_target::{Launch, RunningMock, TargetName};

/// Every mock, running: where each listens (the same ports across a restart), and the IdP's
/// app id for each mock target's connector.
#[derive(Debug)]
pub struct Targets {
    /// Every registered mock target.
    pub mocks: BTreeMap<TargetName, MockUrls>,
    pub idp: IdpUrls,
    pub apps: BTreeMap<TargetName, String>,
    setup: Setup,
    running: Running,
}

/// A mock target's own API and its SCIM connector.
#[derive(Debug, Clone)]
pub struct MockUrls {
    pub native_url: String,
    pub scim_url: String,
}

/// Each mock target's connector policy (TOML).
pub type PolicyTexts = BTreeMap<TargetName, String>;

/// `target`'s policy in `policies`, or its built-in one.
pub fn policy_of(policies: &PolicyTexts, target: TargetName) -> &str {
    policies
        .get(&target)
        .map_or(target.mock().default_policy(), String::as_str)
}

/// Every mock target's built-in policy.
pub fn default_policies() -> PolicyTexts {
    TargetName::all()
        .map(|t| (t, t.mock().default_policy().to_owned()))
        .collect()
}

#[derive(Debug, Clone)]
pub struct IdpUrls {
    pub url: String,
}

/// A server that can be stopped and started again: the IdP, or a mock target with its
/// connector. Written as `idp` or the target's name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Idp,
    Target(TargetName),
}

impl Server {
    /// The name in flags and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Server::Idp => "idp",
            Server::Target(t) => t.as_str(),
        }
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Server::Idp => f.write_str("Idp"),
            Server::Target(t) => write!(f, "{t:?}"),
        }
    }
}

impl std::str::FromStr for Server {
    type Err = String;

    fn from_str(s: &str) -> Result<Server, String> {
        match s {
            "idp" => Ok(Server::Idp),
            _ => s
                .parse::<TargetName>()
                .map(Server::Target)
                .map_err(|_| format!("`{s}` is not a server: idp or a target ({})", names())),
        }
    }
}

fn names() -> String {
    TargetName::all()
        .map(TargetName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

impl serde::Serialize for Server {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Server {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Server, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// How the mocks were started, to start one again the same way.
#[derive(Debug)]
struct Setup {
    data: Option<PathBuf>,
    token: String,
    durable: bool,
    lenient: bool,
    policies: PolicyTexts,
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

/// The servers now running; absent while one is down.
#[derive(Debug, Default)]
struct Running {
    mocks: BTreeMap<TargetName, Box<dyn RunningMock>>,
    idp: Option<mock_idp::Launched>,
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

impl Setup {
    /// Starts `target` on the ports it had (`urls`), or on any.
    async fn mock(
        &self,
        target: TargetName,
        urls: Option<&MockUrls>,
    ) -> Result<Box<dyn RunningMock>, TargetsError> {
        let how = Launch {
            native_port: urls.map_or(0, |u| port_of(&u.native_url)),
            token: self.token.clone(),
            policy: policy_of(&self.policies, target).to_owned(),
            serving: mockkit::connector::Serving {
                scim_port: urls.map_or(0, |u| port_of(&u.scim_url)),
                data: self.data.clone(),
                scim_token: self.token.clone(),
                scim_oauth: self.security.oauth.as_ref().map(|o| o.verifier.clone()),
                sim_token: None,
                durable: self.durable,
                lenient: self.lenient,
                tls: self.security.tls.clone(),
            },
        };
        target
            .mock()
            .launch(how)
            .await
            .map_err(|why| TargetsError::Mock(target, why))
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
    #[error("cannot start mock-{0}: {1}")]
    Mock(TargetName, String),
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

/// The policies for IdP-pushed groups in `dir` (`TARGET-idp.toml`); an error names the file.
pub fn idp_policies(dir: &Path) -> Result<PolicyTexts, (PathBuf, String)> {
    TargetName::all()
        .map(|t| {
            let path = dir.join(format!("{t}-idp.toml"));
            read_policy(t, &path).map(|text| (t, text))
        })
        .collect()
}

/// The policy file `path` for `target`, read and checked; an error names the file.
pub fn read_policy(target: TargetName, path: &Path) -> Result<String, (PathBuf, String)> {
    let text = std::fs::read_to_string(path).map_err(|e| (path.to_owned(), e.to_string()))?;
    target
        .mock()
        .check_policy(&text)
        .map_err(|e| (path.to_owned(), e))?;
    Ok(text)
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
        Self::start_with_policies(
            data,
            token,
            durable,
            dialect,
            default_policies(),
            Security::default(),
        )
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
        policies: PolicyTexts,
        security: Security,
    ) -> Result<Targets, TargetsError> {
        let wiring = |e: &dyn std::fmt::Display| TargetsError::Wiring(e.to_string());
        let client = security.tls.client.builder().map_err(|e| wiring(&e))?;
        let client = client.build().map_err(|e| wiring(&e))?;
        let setup = Setup {
            data,
            token: token.to_owned(),
            durable,
            lenient: mock_idp::dialect::speech(dialect).string_booleans(),
            policies,
            security,
        };
        let oauth = setup.security.oauth.as_ref();
        let mut running = Running::default();
        let mut mocks = BTreeMap::new();
        for t in TargetName::all() {
            let mock = setup.mock(t, None).await?;
            mocks.insert(
                t,
                MockUrls {
                    native_url: mock.native_url().to_owned(),
                    scim_url: mock.scim_url().to_owned(),
                },
            );
            running.mocks.insert(t, mock);
        }
        let idp = setup.idp(None).await?;
        let mut apps = BTreeMap::new();
        for (t, urls) in &mocks {
            let app = wire_app(
                &client,
                &idp.url,
                token,
                connection(&idp.url, token, oauth),
                t.mock().label(),
                &urls.scim_url,
                dialect,
            )
            .await?;
            apps.insert(*t, app);
        }
        let idp_urls = IdpUrls {
            url: idp.url.clone(),
        };
        running.idp = Some(idp);
        Ok(Targets {
            mocks,
            idp: idp_urls,
            apps,
            setup,
            running,
        })
    }

    /// The URLs of a mock target.
    pub fn mock(&self, target: TargetName) -> &MockUrls {
        &self.mocks[&target]
    }

    /// Stops one server after its open requests finish; its data stays for `up`.
    pub async fn down(&mut self, server: Server) -> Result<(), TargetsError> {
        if self.setup.data.is_none() {
            return Err(TargetsError::InMemory(server));
        }
        match server {
            Server::Target(t) => {
                if let Some(s) = self.running.mocks.remove(&t) {
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
            Server::Target(t) if !self.running.mocks.contains_key(&t) => {
                let mock = self.setup.mock(t, self.mocks.get(&t)).await?;
                self.running.mocks.insert(t, mock);
            }
            Server::Idp if self.running.idp.is_none() => {
                self.running.idp = Some(self.setup.idp(Some(&self.idp)).await?);
            }
            _ => {}
        }
        Ok(())
    }

    pub async fn stop(self) {
        let Running { mocks, idp } = self.running;
        if let Some(idp) = idp {
            idp.stop().await;
        }
        for mock in mocks.into_values().rev() {
            mock.stop().await;
        }
    }
}
