//! Runs a scenario `for: scim` against SCIM endpoints: a vendor's (`scimlab scenario --scim
//! URL`), or scimlab's own engine started for the run. mock-idp runs embedded and pushes to
//! each endpoint through an app of its own, in the chosen dialect; after every `expect`, and
//! once more at the end, the endpoint is read back and compared with the SCIM-level oracle
//! (`crate::scim_target`). A read-only preflight comes first; at the end the run deletes what
//! it made, unless told to keep it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use scim::tls::ClientTls;
use serde_json::Value;

use super::directory::Directory;
use super::model::{self, Dialect, Scenario, ScimExpect, Step};
use super::play::{play, Runner, Verdict};
use super::run::{Endpoint, RunError, ScenarioRun, ScimOutcome, StepResult, TOKEN};
use crate::conformance::Target;
use crate::scim_target::{
    compare, due, read_idp, value_at, EndpointAuth, Facts, IdpFacts, PushAuth, ScimSpec, ScimTarget,
};
use crate::wiretap::{Caps, Wiretap};

const POLL: Duration = Duration::from_millis(50);

/// The endpoints to run against and how to reach them; no endpoints: scimlab's own engine,
/// started for each run.
#[derive(Debug, Clone, Default)]
pub struct ScimTargets {
    pub specs: Vec<ScimSpec>,
    /// How the IdP and the harness's read-back authenticate; unused for the engine.
    pub auth: Option<EndpointAuth>,
    pub tls: ClientTls,
    /// Leave what the run made on the endpoints.
    pub keep: bool,
    /// What the IdP may send each endpoint (`--max-requests`, `--max-rate`).
    pub caps: Caps,
}

/// scimlab's own SCIM engine, in memory, for a run without `--scim`.
struct Engine {
    url: String,
    servers: scim::serve::Servers,
}

impl Engine {
    async fn start() -> Result<Engine, RunError> {
        let failed = |e: &dyn std::fmt::Display| RunError::Remote(format!("the SCIM engine: {e}"));
        let mut servers = scim::serve::Servers::new(None);
        let (listener, url) = servers.bind(0).await.map_err(|e| failed(&e))?;
        let provider = scim::Provider::temporary(scim::ProviderConfig {
            base_url: url.clone(),
            ..Default::default()
        })
        .map_err(|e| failed(&e))?;
        let state = scim::AppState {
            provider,
            tokens: vec![TOKEN.to_owned()],
            oauth: None,
        };
        servers.serve(listener, scim::app(state));
        Ok(Engine { url, servers })
    }
}

/// One endpoint during a run: its IdP app, what was due after each step, and who it has
/// been due to hold.
struct Tracked {
    target: ScimTarget,
    app: String,
    history: Vec<Facts>,
    known: BTreeSet<String>,
    facts: IdpFacts,
}

struct ScimWorld {
    dir: Directory,
    dialect: Dialect,
    targets: Vec<Tracked>,
}

/// Runs `scenario` in `dialect` against `given` endpoints (or a fresh engine).
pub async fn run(
    scenario: &Scenario,
    file: &Path,
    dialect: Dialect,
    given: &ScimTargets,
) -> Result<ScenarioRun, RunError> {
    let started = Instant::now();
    let engine = match given.specs.is_empty() {
        true => Some(Engine::start().await?),
        false => None,
    };
    let (specs, auth) = match &engine {
        Some(e) => (
            vec![ScimSpec {
                name: "engine".into(),
                url: e.url.clone(),
            }],
            EndpointAuth {
                push: PushAuth::Bearer(TOKEN.to_owned()),
                read: crate::conformance::Auth::Bearer(TOKEN.to_owned()),
            },
        ),
        None => (
            given.specs.clone(),
            given
                .auth
                .clone()
                .ok_or_else(|| RunError::Remote("--scim needs credentials".into()))?,
        ),
    };
    let outcome = run_on(scenario, dialect, &specs, &auth, given).await;
    if let Some(e) = engine {
        e.servers.stop().await;
    }
    let (steps, scim) = outcome?;
    Ok(ScenarioRun::finished(
        scenario,
        file,
        dialect,
        started,
        steps,
        given.tls.insecure,
        scim,
    ))
}

async fn run_on(
    scenario: &Scenario,
    dialect: Dialect,
    specs: &[ScimSpec],
    auth: &EndpointAuth,
    given: &ScimTargets,
) -> Result<(Vec<StepResult>, Vec<ScimOutcome>), RunError> {
    let bad = |e: &dyn std::fmt::Display| RunError::Remote(e.to_string());
    let http = given.tls.client().map_err(|e| bad(&e))?;
    let tag = format!("sl{:08x}", rand::random::<u32>());
    let mut targets = Vec::new();
    for spec in specs {
        let reader =
            Target::with_tls(&spec.url, auth.read.clone(), &given.tls).map_err(|e| bad(&e))?;
        targets.push(ScimTarget::new(spec, auth.push.clone(), reader, &tag));
    }
    let outcomes = |targets: &[ScimTarget]| -> Vec<ScimOutcome> {
        targets
            .iter()
            .map(|t| ScimOutcome::new(t, &tag, given.keep))
            .collect()
    };
    for t in &targets {
        if let Err(why) = t.preflight().await {
            let step = StepResult::new(
                0,
                "preflight",
                Err(format!("{why} (nothing was written)")),
                0.0,
            );
            return Ok((vec![step], outcomes(&targets)));
        }
    }
    // The IdP pushes through a metering proxy per endpoint, which keeps to the caps.
    let mut taps = Vec::new();
    for t in &targets {
        let tap = Wiretap::start(&t.url, &given.tls, given.caps)
            .await
            .map_err(|e| bad(&e))?;
        taps.push(tap);
    }
    let idp = crate::targets::embedded_idp(TOKEN, given.tls.clone()).await?;
    let mut tracked = Vec::new();
    for (t, tap) in targets.into_iter().zip(&taps) {
        let label = format!("SCIM {}", t.name);
        let connection = t.push.connection();
        let app = crate::targets::wire_app(
            &http, &idp.url, TOKEN, connection, &label, &tap.url, dialect,
        )
        .await;
        let app = match app {
            Ok(app) => app,
            Err(e) => {
                idp.stop().await;
                for tap in taps {
                    tap.stop().await;
                }
                return Err(e.into());
            }
        };
        tracked.push(Tracked {
            target: t,
            app,
            history: Vec::new(),
            known: BTreeSet::new(),
            facts: IdpFacts::default(),
        });
    }
    let idp_end = Endpoint {
        url: idp.url.clone(),
        token: TOKEN.to_owned(),
        app: None,
        scim: None,
    };
    let apps = tracked.iter().map(|t| t.app.clone()).collect();
    let mut dir = Directory::new(http, idp_end, apps);
    dir.tag = Some(tag.clone());
    dir.prefix_groups = true;
    let mut world = ScimWorld {
        dir,
        dialect,
        targets: tracked,
    };
    // Interrupted (Ctrl-C, SIGTERM): stop where it is, and still clean up below.
    let steps = tokio::select! {
        steps = play(&mut world, scenario) => steps,
        () = scim::serve::shutdown_signal() => vec![StepResult::new(
            0,
            "interrupted",
            Err(crate::load::LoadError::Interrupted.to_string()),
            0.0,
        )],
    };
    // The IdP stops first, so nothing it still retries lands after the clean-up.
    idp.stop().await;
    let logins: Vec<String> = world
        .dir
        .users
        .iter()
        .map(|(n, _)| world.dir.login(n))
        .collect();
    let group_names: Vec<String> = group_names(scenario)
        .iter()
        .map(|g| world.dir.group_name(g))
        .collect();
    let mut out = Vec::new();
    for (t, tap) in world.targets.iter().zip(taps) {
        let mut outcome = ScimOutcome {
            requests: tap.traffic().requests,
            capped: tap.capped(),
            ..ScimOutcome::new(&t.target, &tag, given.keep)
        };
        tap.stop().await;
        if !given.keep {
            let done = t.target.clean_up(&logins, &group_names).await;
            outcome.deleted = done.deleted;
            outcome.left = done.left;
        }
        out.push(outcome);
    }
    Ok((steps, out))
}

/// Every name a scenario's groups have had: as declared, and after each rename.
fn group_names(scenario: &Scenario) -> Vec<String> {
    let mut names = scenario.groups.clone();
    names.extend(scenario.steps.iter().filter_map(|s| match s {
        Step::Rename(r) => Some(r.to.clone()),
        _ => None,
    }));
    names
}

impl Runner for ScimWorld {
    fn directory(&mut self) -> &mut Directory {
        &mut self.dir
    }

    async fn target_step(&mut self, step: &Step) -> Result<String, String> {
        match step {
            Step::Expect(e) => self.expect(e).await,
            other => Err(format!("{} needs scimlab's mocks", other.kind())),
        }
    }

    async fn begin_step(&mut self) -> Result<(), String> {
        self.due_now(false).await
    }

    async fn expire_contracts(&mut self) -> Result<(), String> {
        self.dir.expire_contracts().await.map(drop)
    }

    async fn settle(&mut self, within: Duration) -> Result<(Verdict, String), String> {
        let verdict = self.converge(within, &[]).await?;
        let detail = format!(
            "{} accounts and {} groups equal to the SCIM oracle",
            self.dir.users.len() * self.targets.len(),
            self.dir.groups.len() * self.targets.len()
        );
        Ok((verdict, detail))
    }
}

impl ScimWorld {
    async fn expect(&mut self, e: &model::Expect) -> Result<String, String> {
        let within = model::duration(&e.within).unwrap_or(Duration::from_secs(5));
        let verdict = self.converge(within, &e.scim).await?;
        if verdict.holds() {
            Ok(format!(
                "{} expectations and the SCIM oracle held",
                e.scim.len()
            ))
        } else {
            Err(format!("after {}: {}", e.within, verdict.text()))
        }
    }

    /// What is due on every endpoint now: appended after set-up and each step, or replacing
    /// the latest view (`refresh`) once the IdP has delivered and linked what it made.
    async fn due_now(&mut self, refresh: bool) -> Result<(), String> {
        for i in 0..self.targets.len() {
            let app = self.targets[i].app.clone();
            let d = &self.dir;
            let facts = read_idp(
                &d.client,
                (&d.idp.url, &d.idp.token),
                &app,
                &d.groups,
                &d.users,
                &self.targets[i].facts,
            )
            .await?;
            let t = &mut self.targets[i];
            let now = due(&facts, &mut t.known, self.dialect);
            t.facts = facts;
            match (refresh, t.history.last_mut()) {
                (true, Some(last)) => *last = now,
                _ => t.history.push(now),
            }
        }
        Ok(())
    }

    /// Polls until the IdP has delivered everything and the expectations and the oracle hold
    /// on every endpoint, or `within` passes; the last verdict.
    async fn converge(
        &mut self,
        within: Duration,
        wanted: &[ScimExpect],
    ) -> Result<Verdict, String> {
        let deadline = Instant::now() + within;
        // Once the IdP has nothing left to send, its state stops changing: read it once.
        let mut due_read = false;
        loop {
            let undelivered = self.dir.undelivered().await?;
            // Parked changes will not arrive by waiting: judge the endpoint as it is.
            let settled = undelivered.iter().all(|u| u.parked);
            let mut verdict = Verdict::default();
            if !undelivered.is_empty() {
                verdict.misses.push(Directory::waiting(&undelivered));
            }
            if settled {
                if !due_read {
                    self.due_now(true).await?;
                    due_read = undelivered.is_empty();
                }
                for t in &self.targets {
                    let (seen, resources) = t.target.read_back(&t.facts).await?;
                    verdict
                        .differences
                        .extend(compare(&t.target.name, &t.history, &seen));
                    for e in wanted {
                        if let Some(why) = miss(e, &seen, resources.get(&e.user)) {
                            verdict
                                .misses
                                .push(format!("{}: {}: {why}", t.target.name, e.user));
                        }
                    }
                }
                if !undelivered.is_empty() {
                    return Ok(verdict);
                }
            }
            if verdict.holds() || Instant::now() >= deadline {
                return Ok(verdict);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Why one `scim` expectation does not hold on what an endpoint shows (`None` when it does).
fn miss(e: &ScimExpect, seen: &Facts, resource: Option<&Value>) -> Option<String> {
    let mut why = Vec::new();
    let exists = resource.is_some();
    if let Some(want) = e.exists.filter(|w| *w != exists) {
        why.push(format!("exists is {exists}, expected {want}"));
    }
    if let Some(want) = e.active {
        let active = resource.and_then(|r| value_at(r, "active"));
        if active.as_deref() != Some(if want { "true" } else { "false" }) {
            why.push(format!(
                "active is {}, expected {want}",
                active.as_deref().unwrap_or(crate::scim_target::NOTHING)
            ));
        }
    }
    if let Some(want) = &e.groups {
        let held: BTreeSet<String> = seen
            .iter()
            .filter(|((s, a), members)| {
                s.starts_with("group ")
                    && a == "members"
                    && members.split(", ").any(|m| m == e.user)
            })
            .map(|((s, _), _)| s.trim_start_matches("group ").to_owned())
            .collect();
        let want: BTreeSet<String> = want.iter().cloned().collect();
        if held != want {
            why.push(format!("in groups {held:?}, expected {want:?}"));
        }
    }
    for (path, want) in &e.attributes {
        let got = resource.and_then(|r| value_at(r, path));
        if got.as_deref() != Some(want.as_str()) {
            why.push(format!(
                "{path} is {}, expected {want:?}",
                got.map_or(crate::scim_target::NOTHING.to_owned(), |g| format!("{g:?}"))
            ));
        }
    }
    (!why.is_empty()).then(|| why.join(", "))
}
