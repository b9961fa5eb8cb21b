//! The mocks as `scimlab up` and `ci` run them: mock-space and mock-teamcity, each with its SCIM
//! connector and default policy, and mock-idp with one app per connector, like a fresh real
//! deployment, on loopback ports chosen by the system.

use std::path::PathBuf;

use serde_json::{json, Value};

pub use mock_idp::Dialect;

/// Every mock, running.
#[derive(Debug)]
pub struct Targets {
    pub space: mock_space::Launched,
    pub teamcity: mock_teamcity::Launched,
    pub idp: mock_idp::Launched,
    /// The IdP's app ids for the Space connector and the TeamCity bridge.
    pub space_app: String,
    pub teamcity_app: String,
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

/// The app labelled `label` (created when missing), pointed at `scim_url` in `dialect` with
/// every provisioning feature on.
async fn wire_app(
    idp: &mock_idp::Launched,
    token: &str,
    label: &str,
    scim_url: &str,
    dialect: Dialect,
) -> Result<String, TargetsError> {
    use reqwest::Method;
    let client = &reqwest::Client::new();
    let call = |method, path: String, body: Value| async move {
        idp_call(client, &idp.url, token, method, &path, Some(body))
            .await
            .map_err(TargetsError::Wiring)
    };
    let apps = idp_call(client, &idp.url, token, Method::GET, "/api/v1/apps", None)
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
        json!({"profile": {"authScheme": "TOKEN", "token": token}, "baseUrl": scim_url}),
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
        Self::start_with_policies(data, token, durable, dialect, policies).await
    }

    /// As `start_with`, the connectors mapping groups to permissions by these policies.
    pub async fn start_with_policies(
        data: Option<PathBuf>,
        token: &str,
        durable: bool,
        dialect: Dialect,
        (space_policy, teamcity_policy): (mock_space::Policy, mock_teamcity::Policy),
    ) -> Result<Targets, TargetsError> {
        let lenient = dialect == Dialect::Entra;
        let space = mock_space::launch(mock_space::Options {
            port: 0,
            scim_port: 0,
            data: data.clone(),
            token: token.into(),
            scim_token: token.into(),
            policy: space_policy,
            durable,
            lenient,
        })
        .await?;
        let teamcity = mock_teamcity::launch(mock_teamcity::Options {
            target: mock_teamcity::Target::Simulator { port: 0 },
            scim_port: 0,
            data: data.clone(),
            token: token.into(),
            scim_token: token.into(),
            policy: teamcity_policy,
            durable,
            lenient,
        })
        .await?;
        let idp = mock_idp::launch(mock_idp::Options {
            port: 0,
            data: data.map(|d| d.join("idp")),
            token: token.into(),
            durable,
            engine: mock_idp::EngineConfig::default(),
        })
        .await?;
        let space_app = wire_app(&idp, token, "Space", &space.scim_url, dialect).await?;
        let teamcity_app = wire_app(&idp, token, "TeamCity", &teamcity.scim_url, dialect).await?;
        Ok(Targets {
            space,
            teamcity,
            idp,
            space_app,
            teamcity_app,
        })
    }

    pub async fn stop(self) {
        self.idp.stop().await;
        self.teamcity.stop().await;
        self.space.stop().await;
    }
}
