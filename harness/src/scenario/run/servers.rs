//! The servers a run talks to: an endpoint, remote servers from a TOML file, and every end
//! resolved (`Ends`), with the final check of a run against them.

use super::*;

/// PUTs a JSON body to a mock's control plane (`/_sim/...`).
pub(crate) async fn put_control(
    client: &reqwest::Client,
    end: &Endpoint,
    path: &str,
    body: &Value,
) -> Result<(), String> {
    let url = format!("{}{path}", end.url);
    let resp = client
        .put(&url)
        .bearer_auth(&end.token)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("PUT {url}: {e}"))?;
    if resp.status().is_success() {
        return Ok(());
    }
    let status = resp.status();
    Err(format!(
        "PUT {url}: {status} {}",
        resp.text().await.unwrap_or_default()
    ))
}

/// A mock's permission view of the user with `login` (`/_sim/permissions`); `None` when the
/// user does not exist there.
pub(crate) async fn permission_view(
    client: &reqwest::Client,
    end: &Endpoint,
    login: &str,
) -> Result<Option<Value>, String> {
    let locator = format!("username:{login}");
    let path = format!("/_sim/permissions/{}", encode(&locator));
    match crate::mock_target::native_find(client, end, &path).await? {
        Some(seen) if !seen.is_object() => {
            Err(format!("GET {}{path}: not an object: {seen}", end.url))
        }
        found => Ok(found),
    }
}

/// One server's API: its base URL and the token it takes (`SSWS` for the IdP, bearer for the
/// targets); for a target, optionally its app's id in the IdP and its SCIM connector's base
/// URL (same token; `scimlab load --poll-ms` reads people there).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub url: String,
    pub token: String,
    #[serde(default)]
    pub app: Option<String>,
    #[serde(default)]
    pub scim: Option<String>,
}

/// Servers already running elsewhere (`scimlab up` on another machine, say), from a TOML file:
/// the dialect the IdP's apps speak, then `[idp]` and one endpoint per mock target, named as
/// the target (`[space]`, `[teamcity]`). The targets' permission and audit views (`/_sim/...`)
/// are read, so they must be scimlab's mocks. `ca_cert` names an authority (PEM) to trust for
/// all of them, relative to the file.
#[derive(Debug, Clone, Deserialize)]
pub struct Remote {
    pub dialect: Dialect,
    #[serde(default)]
    pub ca_cert: Option<std::path::PathBuf>,
    pub idp: Endpoint,
    /// Every other key names a mock target (an unknown one is refused).
    #[serde(flatten)]
    pub targets: BTreeMap<TargetName, Endpoint>,
    /// How the servers are reached: the file's `ca_cert`, then the command's TLS flags.
    #[serde(skip)]
    pub tls: ClientTls,
    /// Access tokens for the targets' SCIM connectors (`load --poll-ms` reads them) when they
    /// take OAuth; `None`: each endpoint's token.
    #[serde(skip)]
    pub scim_oauth: Option<std::sync::Arc<scim::oauth::TokenSource>>,
}

impl Remote {
    pub fn load(path: &Path) -> Result<Remote, RunError> {
        let bad = |why: String| RunError::Remote(format!("{}: {why}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let mut remote: Remote = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if let Some(missing) = TargetName::all().find(|t| !remote.targets.contains_key(t)) {
            return Err(bad(format!("no [{missing}] endpoint")));
        }
        if let Some(ca) = &remote.ca_cert {
            let dir = path.parent().unwrap_or(Path::new("."));
            remote.tls.ca_certs.push(dir.join(ca));
        }
        remote.tls.config().map_err(|e| bad(e.to_string()))?;
        Ok(remote)
    }

    /// The same servers, reached also with these TLS settings (a command's flags).
    pub fn with_tls(mut self, flags: ClientTls) -> Remote {
        self.tls.ca_certs.extend(flags.ca_certs);
        self.tls.identity = flags.identity.or(self.tls.identity);
        self.tls.insecure |= flags.insecure;
        self
    }

    /// The endpoint of one target (every one is there once loaded).
    pub fn target(&self, on: TargetName) -> &Endpoint {
        &self.targets[&on]
    }

    /// An HTTP client for these servers.
    pub fn http(&self) -> Result<reqwest::Client, String> {
        self.tls.client().map_err(|e| e.to_string())
    }
}

/// What [`check_remote`] found: differences from the oracle, people whose permission view
/// could not be read, and audit chains that do not verify. Empty everywhere means equal.
#[derive(Debug, Default)]
pub struct FinalCheck {
    pub findings: Vec<oracle::Finding>,
    pub unreadable: Vec<String>,
    pub broken_chains: Vec<String>,
}

/// Checks `users` (name, IdP id) on servers already running (a `scimlab up` with
/// `--policies DIR`) against the oracle for the policies in `policies_dir`, and every audit
/// chain; for tests that drive a stack themselves, such as the crash test.
pub async fn check_remote(
    remote: &Remote,
    policies_dir: &Path,
    users: &[(String, String)],
) -> Result<FinalCheck, String> {
    let policies = crate::targets::idp_policies(policies_dir)
        .map_err(|(path, e)| format!("{}: {e}", path.display()))?;
    let client = remote.http()?;
    let ends = Ends::remote(&client, remote).await?;
    let mut oracle = ends.oracle(&client, &policies, remote.dialect).await?;
    ends.final_check(&client, &mut oracle, users).await
}

/// Every server a run talks to, resolved: the IdP, and each mock target with its app's id in
/// the IdP.
#[derive(Debug, Clone)]
pub(crate) struct Ends {
    pub(crate) idp: Endpoint,
    pub(crate) targets: BTreeMap<TargetName, Endpoint>,
    pub(crate) apps: BTreeMap<TargetName, String>,
}

impl Ends {
    /// Every audit hash chain (the IdP's and both targets') that does not verify, with why.
    pub(crate) async fn broken_chains(&self, client: &reqwest::Client) -> Vec<String> {
        let mut out = Vec::new();
        let targets = self.targets.iter().map(|(t, end)| (t.as_str(), end));
        for (name, end) in std::iter::once(("idp", &self.idp)).chain(targets) {
            let url = format!("{}/_sim/events/verify", end.url);
            let answer = async {
                let resp = client.get(&url).bearer_auth(&end.token).send().await?;
                resp.json::<Value>().await
            };
            match answer.await {
                Ok(v) if v["valid"] == json!(true) => {}
                Ok(v) => out.push(format!("{name}: audit chain broken: {v}")),
                Err(e) => out.push(format!("{name}: cannot verify the audit chain: {e}")),
            }
        }
        out
    }

    /// A mock target's endpoint (every registered one is there).
    pub(crate) fn target(&self, on: TargetName) -> &Endpoint {
        &self.targets[&on]
    }

    /// Every app id, in target order.
    pub(crate) fn app_ids(&self) -> Vec<String> {
        self.apps.values().cloned().collect()
    }

    /// The oracle for these targets under `policies`, their configuration read from them.
    pub(crate) async fn oracle(
        &self,
        client: &reqwest::Client,
        policies: &PolicyTexts,
        dialect: Dialect,
    ) -> Result<Oracle, String> {
        Oracle::read(client, |t| self.target(t).clone(), policies, dialect).await
    }

    pub(crate) fn embedded(targets: &Targets) -> Ends {
        let end = |url: &str, scim: Option<&str>| Endpoint {
            url: url.to_owned(),
            token: TOKEN.to_owned(),
            app: None,
            scim: scim.map(str::to_owned),
        };
        Ends {
            idp: end(&targets.idp.url, None),
            targets: targets
                .mocks
                .iter()
                .map(|(t, urls)| (*t, end(&urls.native_url, Some(&urls.scim_url))))
                .collect(),
            apps: targets.apps.clone(),
        }
    }

    /// The remote IdP's app ids: as given, or the apps labelled as each target (`Space`).
    pub(crate) async fn remote(client: &reqwest::Client, r: &Remote) -> Result<Ends, String> {
        let apps = idp_call(
            client,
            &r.idp.url,
            &r.idp.token,
            Method::GET,
            "/api/v1/apps",
            None,
        )
        .await?;
        let find = |given: &Option<String>, label: &str| {
            given
                .clone()
                .or_else(|| {
                    apps.as_array()?
                        .iter()
                        .find(|a| a["label"] == json!(label))?["id"]
                        .as_str()
                        .map(str::to_owned)
                })
                .ok_or_else(|| format!("the IdP has no app labelled {label}: give its id as `app`"))
        };
        let mut apps = BTreeMap::new();
        for t in TargetName::all() {
            apps.insert(t, find(&r.target(t).app, t.mock().label())?);
        }
        Ok(Ends {
            idp: r.idp.clone(),
            targets: r.targets.clone(),
            apps,
        })
    }

    /// The state that `users` (name, IdP id) have reached on every target against the oracle,
    /// and every audit chain. Everyone named must have been hired active into a group assigned
    /// to every app (so each was provisioned on every target at some point).
    pub(crate) async fn final_check(
        &self,
        client: &reqwest::Client,
        oracle: &mut Oracle,
        users: &[(String, String)],
    ) -> Result<FinalCheck, String> {
        use futures::StreamExt;
        let apps: Vec<(TargetName, String)> =
            self.apps.iter().map(|(t, a)| (*t, a.clone())).collect();
        let state = oracle::read_idp(client, &self.idp.url, &self.idp.token, users, &apps).await?;
        let names: Vec<String> = users.iter().map(|(n, _)| n.clone()).collect();
        oracle
            .provisioned(TargetName::all().flat_map(|t| names.iter().map(move |n| (t, n.clone()))));
        let due = oracle.expected(&state, &names);
        let reads = futures::stream::iter(due.keys().cloned().map(|(target, user)| {
            let end = self.target(target).clone();
            async move {
                let view = permission_view(client, &end, &user).await;
                (target, user, view)
            }
        }))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
        let mut seen = Seen::default();
        let mut unreadable = Vec::new();
        for (target, user, view) in reads {
            let Some(judge) = oracle.judge(target) else {
                continue;
            };
            match view {
                Ok(v) => seen.add(target, judge, &user, v.as_ref()),
                Err(e) => unreadable.push(format!("reading {user}: {e}")),
            }
        }
        Ok(FinalCheck {
            findings: oracle::compare(&[due], &seen),
            unreadable,
            broken_chains: self.broken_chains(client).await,
        })
    }
}
