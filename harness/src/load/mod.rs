//! `scimlab load`: lifecycle events at a fixed rate through the IdP's management API, the
//! latency until each target applied them (from the targets' audit streams), fault phases on
//! the targets, and the final state against the permission oracle.

pub mod cpu;
pub mod endpoint;
pub mod html;
pub mod plan;
pub mod report;
pub mod track;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::scenario::model::{Dialect, TargetName};
use crate::scenario::run::{put_control, Endpoint, Ends, Remote, TOKEN};
use crate::targets::{
    assign_and_push, group_named, idp_call, idp_policies, PolicyTexts, Server, Targets,
    TargetsError,
};
use mockkit::sim::parse_duration as duration;
use plan::{Kind, PlanOptions, Planned, Shard, GROUPS};
use report::{Hist, LoadConfig, LoadReport, PhaseReport, Recorded, Second};
use track::{now_micros, Outcome, Tracked, Tracker, Watch};

/// Requests in flight while the starting population is hired.
const SETUP_CONCURRENCY: usize = 32;
/// Problems kept verbatim in the report; the rest are counted.
const KEPT: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Targets(#[from] TargetsError),
    #[error("policy {0}: {1}")]
    Policy(PathBuf, String),
    #[error("set-up: {0}")]
    Setup(String),
    /// Asked of servers already running what only embedded ones allow, or what they lack.
    #[error("{0}")]
    Remote(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("interrupted (Ctrl-C or SIGTERM): the run stopped before its end; its clean-up ran unless --keep")]
    Interrupted,
}

/// Faults put on both targets' native APIs (their connectors answer the IdP 503 for them) and
/// optionally one target stopped and started again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    /// What the simulators' control plane takes, as it takes it.
    pub faults: mockkit::sim::Faults,
    /// Stop this target at the phase's start and start it again after the pause.
    pub kill: Option<(Server, Duration)>,
}

impl FromStr for FaultSpec {
    type Err = String;

    /// `5xx=5%,429=2%,latency=20ms,drop=1%,kill=teamcity:2s`, or `none`.
    fn from_str(s: &str) -> Result<FaultSpec, String> {
        let mut spec = FaultSpec::default();
        let f = &mut spec.faults;
        for part in s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty() && *p != "none")
        {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected name=value"))?;
            match k {
                "kill" => {
                    let (server, pause) = v.split_once(':').unwrap_or((v, "2s"));
                    let server = server
                        .parse::<TargetName>()
                        .map_err(|e| format!("kill: {e}"))?
                        .server();
                    spec.kill = Some((server, duration(pause)?));
                }
                other => {
                    if !f.set_flag(other, v)? {
                        let mut kinds: Vec<&str> =
                            mockkit::sim::FAULT_KINDS.iter().map(|k| k.flag).collect();
                        kinds.push("kill");
                        return Err(format!("`{other}`: the faults are {}", kinds.join(", ")));
                    }
                }
            }
        }
        if let Some(why) = f.problem() {
            return Err(format!("`{s}`: {why}"));
        }
        Ok(spec)
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = self.faults.flags();
        if let Some((server, pause)) = &self.kill {
            parts.push(format!("kill={}:{}s", server.as_str(), pause.as_secs_f64()));
        }
        if parts.is_empty() {
            write!(f, "none")
        } else {
            write!(f, "{}", parts.join(","))
        }
    }
}

/// From `at` seconds on, these faults.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub at_s: f64,
    pub faults: FaultSpec,
}

impl FromStr for Phase {
    type Err = String;

    /// `AT:FAULTS`, for example `20s:5xx=5%,429=2%`.
    fn from_str(s: &str) -> Result<Phase, String> {
        let (at, faults) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: a phase is AT:FAULTS, for example 20s:5xx=5%"))?;
        Ok(Phase {
            at_s: duration(at.trim())?.as_secs_f64(),
            faults: faults.parse()?,
        })
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s:{}", self.at_s, self.faults)
    }
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub plan: PlanOptions,
    pub shard: Shard,
    /// Fault phases in time order; before the first, no faults.
    pub phases: Vec<Phase>,
    pub dialect: Dialect,
    /// Where `space-idp.toml` and `teamcity-idp.toml` are.
    pub policies: PathBuf,
    /// How long to wait for the last events to be applied after the last one was sent.
    pub settle: Duration,
    pub max_p99_ms: Option<f64>,
    /// Print a progress line every second (on a terminal).
    pub progress: bool,
    /// The servers flush to disk before they answer (otherwise sled flushes in the background
    /// every half second, and a stop flushes everything).
    pub durable: bool,
    /// Quirks to switch on before the run (`space` or `teamcity`, quirk name): to see what a
    /// broken target looks like in the numbers.
    pub quirks: Vec<(TargetName, String)>,
    /// Servers already running; `None` starts fresh embedded ones.
    pub remote: Option<Remote>,
    /// Marks the run's people (`load-TAG-...`).
    pub tag: Option<String>,
    /// Read people from the targets' SCIM connectors this often instead of following the
    /// targets' audit streams.
    pub poll: Option<Duration>,
}

impl LoadOptions {
    /// Refuses, before anything is started or changed, what servers already running cannot
    /// be asked: they are not the run's to stop or to give quirks, and polling needs their
    /// connectors' URLs.
    fn check_remote(&self) -> Result<(), LoadError> {
        let Some(r) = &self.remote else {
            return Ok(());
        };
        let refuse = |why: String| Err(LoadError::Remote(why));
        if let Some(p) = self.phases.iter().find(|p| p.faults.kill.is_some()) {
            return refuse(format!(
                "phase {p}: a kill stops an embedded server; with --targets the servers are not scimlab's to stop"
            ));
        }
        if !self.quirks.is_empty() {
            return refuse(
                "--quirk changes an embedded target; it is refused with --targets".into(),
            );
        }
        for (name, end) in TargetName::all().map(|t| (t.as_str(), r.target(t))) {
            if self.poll.is_some() && end.scim.is_none() {
                return refuse(format!(
                    "--poll-ms reads people from the targets' SCIM connectors: give [{name}] a `scim` URL in the targets file"
                ));
            }
        }
        Ok(())
    }

    fn config(&self) -> LoadConfig {
        LoadConfig {
            plan: self.plan.clone(),
            dialect: self.dialect.as_str().into(),
            phases: self.phases.iter().map(Phase::to_string).collect(),
            max_p99_ms: self.max_p99_ms,
            durable: self.durable,
            tag: self.tag.clone(),
            stamped_on_receipt: self.remote.is_some(),
            poll_ms: self.poll.map(|p| p.as_millis() as u64),
            insecure: self.remote.as_ref().is_some_and(|r| r.tls.insecure),
        }
    }

    /// The phases as the report names them, the fault-free start included.
    fn phase_spans(&self) -> Vec<(String, f64, f64)> {
        let mut starts: Vec<(String, f64)> = Vec::new();
        if self.phases.first().is_none_or(|p| p.at_s > 0.0) {
            starts.push(("none".into(), 0.0));
        }
        starts.extend(self.phases.iter().map(|p| (p.faults.to_string(), p.at_s)));
        let end = self.plan.duration_s;
        (0..starts.len())
            .map(|i| {
                let to = starts.get(i + 1).map_or(end, |n| n.1);
                (starts[i].0.clone(), starts[i].1, to)
            })
            .collect()
    }
}

/// The login of person `user` of a load run, with the run's tag if it has one.
fn login(tag: Option<&str>, user: u32) -> String {
    match tag {
        Some(tag) => format!("load-{tag}-{user:07}@load.scimlab.test"),
        None => format!("load-{user:07}@load.scimlab.test"),
    }
}

/// The IdP side of the run: its endpoint, the apps, the groups and the people's ids.
struct Idp {
    client: reqwest::Client,
    end: Endpoint,
    group_ids: Vec<String>,
    /// Shared with whoever must clean up after the run, even when it fails half-way.
    user_ids: Arc<Mutex<HashMap<u32, String>>>,
    tag: Option<String>,
}

impl Idp {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        idp_call(
            &self.client,
            &self.end.url,
            &self.end.token,
            method,
            path,
            body,
        )
        .await
    }

    fn user_id(&self, user: u32) -> Result<String, String> {
        self.user_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "{}: the IdP has not answered its hire yet",
                    self.login(user)
                )
            })
    }

    /// The login of person `user`, with the run's tag if it has one.
    fn login(&self, user: u32) -> String {
        login(self.tag.as_deref(), user)
    }

    async fn hire(&self, user: u32, group: u8) -> Result<(), String> {
        let login = self.login(user);
        let u = self
            .call(
                Method::POST,
                "/api/v1/users?activate=true",
                Some(json!({
                    "profile": {"login": login, "email": login, "firstName": format!("U{user}"), "lastName": "Load"},
                    "groupIds": [self.group_ids[group as usize]],
                    "credentials": {"password": {"value": "Load-pass-1"}},
                })),
            )
            .await?;
        let id = u["id"]
            .as_str()
            .ok_or_else(|| format!("the IdP gave {login} no id"))?;
        self.user_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user, id.to_owned());
        Ok(())
    }

    /// The IdP calls of one planned event.
    async fn send(&self, e: &Planned) -> Result<(), String> {
        let group = |g: Option<u8>| {
            g.and_then(|g| self.group_ids.get(g as usize))
                .ok_or_else(|| format!("event {}: no group", e.seq))
        };
        match e.kind {
            Kind::Joiner => self.hire(e.user, e.to.unwrap_or_default()).await,
            Kind::Mover => {
                let id = self.user_id(e.user)?;
                // Into the new group first, so the person never drops out of the apps.
                let path = |g: &str| format!("/api/v1/groups/{g}/users/{id}");
                self.call(Method::PUT, &path(group(e.to)?), None).await?;
                self.call(Method::DELETE, &path(group(e.from)?), None)
                    .await
                    .map(drop)
            }
            Kind::Leaver => {
                let id = self.user_id(e.user)?;
                let path = format!("/api/v1/users/{id}/lifecycle/deactivate");
                self.call(Method::POST, &path, None).await.map(drop)
            }
        }
    }
}

fn outcome(e: &Planned) -> Outcome {
    let name = |g: Option<u8>| GROUPS[g.unwrap_or_default() as usize % GROUPS.len()].to_owned();
    match e.kind {
        Kind::Joiner => Outcome::Joined(name(e.to)),
        Kind::Mover => Outcome::Moved {
            from: name(e.from),
            to: name(e.to),
        },
        Kind::Leaver => Outcome::Left,
    }
}

/// Puts `faults` on every target's native API.
async fn put_faults(
    client: &reqwest::Client,
    ends: &Ends,
    faults: &FaultSpec,
) -> Result<(), String> {
    let body = serde_json::to_value(&faults.faults).map_err(|e| e.to_string())?;
    for end in ends.targets.values() {
        put_control(client, end, "/_sim/faults", &body).await?;
    }
    Ok(())
}

/// Runs the phases' faults at their times; a kill stops the target and starts it again.
async fn run_phases(
    phases: Vec<Phase>,
    start: Instant,
    client: reqwest::Client,
    ends: Ends,
    targets: Option<Arc<tokio::sync::Mutex<Targets>>>,
    problems: Arc<Mutex<Vec<String>>>,
) {
    let note = |p: String| problems.lock().unwrap_or_else(|e| e.into_inner()).push(p);
    for phase in phases {
        tokio::time::sleep_until((start + Duration::from_secs_f64(phase.at_s)).into()).await;
        if let Err(e) = put_faults(&client, &ends, &phase.faults).await {
            note(format!("phase {phase}: {e}"));
        }
        if let Some((server, pause)) = phase.faults.kill {
            let Some(targets) = &targets else {
                note(format!("phase {phase}: a kill needs the embedded servers"));
                continue;
            };
            let mut t = targets.lock().await;
            if let Err(e) = t.down(server).await {
                note(format!("phase {phase}: {e}"));
                continue;
            }
            tokio::time::sleep(pause).await;
            if let Err(e) = t.up(server).await {
                note(format!("phase {phase}: cannot start the target again: {e}"));
            }
        }
    }
}

/// One progress line a second on stderr while `stop` is false.
async fn progress(tracker: Arc<Tracker>, start: Instant, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_sent = 0usize;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let (sent, in_flight, p99) = tracker.progress();
        eprint!(
            "\r{:>5.0} s  {:>6} sent ({:>5}/s)  {:>6} in flight  p99 so far {:>8.1} ms   ",
            start.elapsed().as_secs_f64(),
            sent,
            sent.saturating_sub(last_sent),
            in_flight,
            p99
        );
        let _ = std::io::stderr().flush();
        last_sent = sent;
    }
    eprintln!();
}

/// Waits until every followed event is done and the IdP's outboxes are empty (work still
/// queued, such as the retry of a request a target rolled back, can change a target yet), or
/// `within` passes, or nothing more can come: no event completed for a second and the
/// outboxes are empty. The outboxes are read only when no event completed for a second, or
/// every event is done, so a backlog draining is not slowed by listing it. Returns whether
/// every event was done with the outboxes empty.
async fn settle(tracker: &Tracker, within: Duration, idp: &Idp, apps: &[String]) -> bool {
    let deadline = Instant::now() + within;
    let mut last = (Instant::now(), tracker.in_flight());
    loop {
        let in_flight = tracker.in_flight();
        if Instant::now() >= deadline {
            return false;
        }
        if in_flight != last.1 {
            last = (Instant::now(), in_flight);
        } else if in_flight == 0 || last.0.elapsed() >= Duration::from_secs(1) {
            let drained = outbox_users(idp, apps)
                .await
                .is_ok_and(|(pending, parked)| pending.is_empty() && parked.is_empty());
            if drained {
                return in_flight == 0;
            }
            last.0 = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Users with work in either app's outbox, and which of those entries are parked.
async fn outbox_users(
    idp: &Idp,
    apps: &[String],
) -> Result<(BTreeSet<String>, BTreeSet<String>), String> {
    let (mut pending, mut parked) = (BTreeSet::new(), BTreeSet::new());
    for app in apps {
        let entries = idp
            .call(Method::GET, &format!("/api/v1/apps/{app}/outbox"), None)
            .await?;
        for e in entries.as_array().into_iter().flatten() {
            let into = if e["status"] == "PARKED" {
                &mut parked
            } else {
                &mut pending
            };
            into.extend(
                e["subjects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned),
            );
        }
    }
    Ok((pending, parked))
}

/// Runs the load on fresh embedded servers, or on the servers `o.remote` names, and reports it.
pub async fn run(o: &LoadOptions) -> Result<LoadReport, LoadError> {
    o.check_remote()?;
    let started = chrono::Utc::now();
    let policies = idp_policies(&o.policies).map_err(|(path, e)| LoadError::Policy(path, e))?;
    let data = tempfile::tempdir()?;
    let dialect = o.dialect;
    let (ends, targets) = match &o.remote {
        Some(r) => {
            let client = r.http().map_err(LoadError::Setup)?;
            let ends = Ends::remote(&client, r).await.map_err(LoadError::Setup)?;
            (ends, None)
        }
        None => {
            let targets = Targets::start_with_policies(
                Some(data.path().to_owned()),
                TOKEN,
                o.durable,
                dialect,
                policies.clone(),
                Default::default(),
            )
            .await?;
            let ends = Ends::embedded(&targets);
            (ends, Some(Arc::new(tokio::sync::Mutex::new(targets))))
        }
    };
    let outcome = drive(o, &ends, targets.clone(), &policies).await;
    if let Some(Ok(t)) = targets.map(Arc::try_unwrap) {
        t.into_inner().stop().await;
    }
    let recorded = outcome?;
    Ok(LoadReport::new(
        o.config(),
        vec![o.shard],
        recorded,
        started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    ))
}

async fn drive(
    o: &LoadOptions,
    ends: &Ends,
    targets: Option<Arc<tokio::sync::Mutex<Targets>>>,
    policies: &PolicyTexts,
) -> Result<Recorded, LoadError> {
    let setup_started = Instant::now();
    let tls = o.remote.as_ref().map(|r| r.tls.clone()).unwrap_or_default();
    let client = tls
        .builder()
        .map_err(|e| LoadError::Setup(e.to_string()))?
        .pool_max_idle_per_host(256)
        .build()
        .map_err(|e| LoadError::Setup(e.to_string()))?;
    let mut oracle = ends
        .oracle(&client, policies, o.dialect)
        .await
        .map_err(LoadError::Setup)?;

    let mut group_ids = Vec::new();
    for name in GROUPS {
        let id = group_named(&client, &ends.idp.url, &ends.idp.token, name, true)
            .await
            .map_err(LoadError::Setup)?;
        for app in ends.apps.values() {
            assign_and_push(&client, &ends.idp.url, &ends.idp.token, app, &id)
                .await
                .map_err(LoadError::Setup)?;
        }
        group_ids.push(id);
    }
    let idp = Arc::new(Idp {
        client: client.clone(),
        end: ends.idp.clone(),
        group_ids,
        user_ids: Arc::default(),
        tag: o.tag.clone(),
    });

    for target in TargetName::all() {
        let names: Vec<&String> = o
            .quirks
            .iter()
            .filter(|(t, _)| *t == target)
            .map(|(_, q)| q)
            .collect();
        if names.is_empty() {
            continue;
        }
        let end = ends.target(target);
        put_control(&client, end, "/_sim/quirks", &json!(names))
            .await
            .map_err(LoadError::Setup)?;
    }
    let tracker = Arc::new(Tracker::new(match (o.poll, &o.remote) {
        (Some(_), _) => Watch::Poll,
        (None, Some(_)) => Watch::StreamOnReceipt,
        (None, None) => Watch::Stream,
    }));
    let (stop_tx, stop_rx) = watch::channel(false);
    let followers = follow_targets(o, ends, &client, &tracker, &stop_rx).await?;

    let apps = ends.app_ids();
    if let Err(e) = hire_population(o, &idp, &tracker, &apps).await {
        let _ = stop_tx.send(true);
        return Err(e);
    }
    let setup_s = setup_started.elapsed().as_secs_f64();

    // The measured part: the plan at its own pace, the fault phases beside it.
    let planned: Vec<Planned> = plan::plan(&o.plan)
        .into_iter()
        .filter(|e| o.shard.owns(e.user))
        .collect();
    let spans = o.phase_spans();
    let phase_of = |due_s: f64| {
        spans
            .iter()
            .rposition(|(_, from, _)| due_s >= *from)
            .unwrap_or(0)
    };
    let problems = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let cpu_clock = cpu::CpuClock::start();
    let start_wall = now_micros();
    let phases = tokio::spawn(run_phases(
        o.phases.clone(),
        start,
        client.clone(),
        ends.clone(),
        targets.clone(),
        problems.clone(),
    ));
    let show = o.progress && std::io::stderr().is_terminal();
    let progress_task =
        show.then(|| tokio::spawn(progress(tracker.clone(), start, stop_rx.clone())));
    let lag = Arc::new(Mutex::new(Hist::new()));
    let accept = Arc::new(Mutex::new(Hist::new()));
    let mut sends = tokio::task::JoinSet::new();
    for e in planned {
        let due = start + Duration::from_micros(e.at_micros);
        tokio::time::sleep_until(due.into()).await;
        let late = Instant::now().saturating_duration_since(due);
        lag.lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(late.as_micros() as u64);
        let phase = phase_of(e.at_micros as f64 / 1e6);
        let id = tracker.expect(
            e.kind,
            Some(phase),
            &idp.login(e.user),
            e.at_micros,
            outcome(&e),
        );
        let (idp, tracker, problems, accept) = (
            idp.clone(),
            tracker.clone(),
            problems.clone(),
            accept.clone(),
        );
        sends.spawn(async move {
            let sent = Instant::now();
            match idp.send(&e).await {
                Ok(()) => {
                    tracker.accepted(id, now_micros());
                    accept
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .record(sent.elapsed().as_micros() as u64);
                }
                Err(why) => {
                    tracker.refused(id);
                    problems
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(format!("refused: {why}"));
                }
            }
        });
    }
    let sending_s = start.elapsed().as_secs_f64();
    while sends.join_next().await.is_some() {}
    let settled = settle(&tracker, o.settle, &idp, &apps).await;
    let measured_s = start.elapsed().as_secs_f64();
    let cpu = cpu_clock.share();
    let _ = phases.await;
    // Reads for the verdict go through the native APIs' fault layer: clear it first.
    let cleared = put_faults(&client, ends, &FaultSpec::default()).await;
    let _ = stop_tx.send(true);
    for f in followers {
        let _ = f.await;
    }
    if let Some(p) = progress_task {
        let _ = p.await;
    }

    let mut problems = std::mem::take(&mut *problems.lock().unwrap_or_else(|p| p.into_inner()));
    if let Err(e) = cleared {
        problems.push(format!("clearing the faults: {e}"));
    }
    let events = tracker.snapshot();
    let login_to_id: HashMap<String, String> = idp
        .user_ids
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(u, id)| (idp.login(*u), id.clone()))
        .collect();
    let (pending_ids, parked_ids) = if settled {
        (BTreeSet::new(), BTreeSet::new())
    } else {
        outbox_users(&idp, &apps).await.map_err(LoadError::Setup)?
    };
    if events.iter().all(Tracked::done) && !(pending_ids.is_empty() && parked_ids.is_empty()) {
        problems.push(format!(
            "every event was applied, but the IdP still had work queued for {} people at the end \
             ({} parked): a later delivery could still change a target",
            pending_ids.union(&parked_ids).count(),
            parked_ids.len()
        ));
    }
    let mut recorded = Recorded {
        setup_s,
        measured_s,
        sending_s,
        cpu,
        lag: lag.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        accept: accept.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        phases: spans
            .iter()
            .map(|(name, from, to)| PhaseReport {
                name: name.clone(),
                from_s: *from,
                to_s: *to,
                ..PhaseReport::default()
            })
            .collect(),
        ..Recorded::default()
    };
    for t in TargetName::all() {
        recorded
            .per_target
            .insert(t.as_str().to_owned(), Hist::new());
    }
    tally(
        &mut recorded,
        &events,
        start_wall,
        &login_to_id,
        &pending_ids,
        &parked_ids,
    );

    let mut users: Vec<(String, String)> = login_to_id.into_iter().collect();
    users.sort();
    check_final(
        ends,
        &client,
        &mut oracle,
        &users,
        &mut recorded,
        &mut problems,
    )
    .await?;
    let unreadable = tracker.unreadable();
    if unreadable > 0 {
        problems.push(format!("{unreadable} audit events had no readable time"));
    }
    let total = problems.len();
    problems.truncate(KEPT);
    if total > KEPT {
        problems.push(format!("... and {} more", total - KEPT));
    }
    recorded.problems = problems;
    Ok(recorded)
}

/// Follows every target: its audit stream, or with `--poll-ms` its SCIM connector (checked
/// readable first: a connector that refuses the reads would leave every event open).
async fn follow_targets(
    o: &LoadOptions,
    ends: &Ends,
    client: &reqwest::Client,
    tracker: &Arc<Tracker>,
    stop_rx: &watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, LoadError> {
    let bearer = |end: &Endpoint| match o.remote.as_ref().and_then(|r| r.scim_oauth.clone()) {
        Some(source) => crate::client::Bearer::OAuth(source),
        None => crate::client::Bearer::Token(end.token.clone()),
    };
    if o.poll.is_some() {
        for t in TargetName::all() {
            if let Some(scim) = &ends.target(t).scim {
                track::can_read(client, scim, &bearer(ends.target(t)))
                    .await
                    .map_err(LoadError::Setup)?;
            }
        }
    }
    let mut followers = Vec::new();
    for t in TargetName::all() {
        let end = ends.target(t);
        let (tracker, client, token) = (tracker.clone(), client.clone(), end.token.clone());
        // Embedded targets always have their connector's URL; `check_remote` saw to the rest.
        followers.push(match (o.poll, &end.scim) {
            (Some(every), Some(scim)) => tokio::spawn(track::poll(
                tracker,
                client,
                t,
                scim.clone(),
                bearer(end),
                every,
                stop_rx.clone(),
            )),
            _ => tokio::spawn(track::follow(
                tracker,
                client,
                t,
                end.url.clone(),
                token,
                stop_rx.clone(),
            )),
        });
    }
    Ok(followers)
}

/// Hires this shard's starting population and waits until every target has applied it,
/// before the clock starts.
async fn hire_population(
    o: &LoadOptions,
    idp: &Arc<Idp>,
    tracker: &Arc<Tracker>,
    apps: &[String],
) -> Result<(), LoadError> {
    let population: Vec<u32> = (0..o.plan.users).filter(|u| o.shard.owns(*u)).collect();
    let hires = futures::stream::iter(population.iter().map(|&u| {
        let (idp, tracker) = (idp.clone(), tracker.clone());
        async move {
            let group = plan::first_group(u);
            let name = GROUPS[group as usize].to_owned();
            let id = tracker.expect(Kind::Joiner, None, &idp.login(u), 0, Outcome::Joined(name));
            idp.hire(u, group)
                .await
                .map(|()| tracker.accepted(id, now_micros()))
        }
    }))
    .buffer_unordered(SETUP_CONCURRENCY)
    .collect::<Vec<Result<(), String>>>()
    .await;
    if let Some(Err(e)) = hires.into_iter().find(Result::is_err) {
        return Err(LoadError::Setup(format!(
            "hiring the starting population: {e}"
        )));
    }
    let setup_window =
        Duration::from_secs(60) + Duration::from_millis(20 * u64::from(o.plan.users));
    if !settle(tracker, setup_window, idp, apps).await {
        return Err(LoadError::Setup(format!(
            "{} of the starting population were not provisioned within {} s",
            tracker.in_flight(),
            setup_window.as_secs()
        )));
    }
    Ok(())
}

/// The final state of every person this shard touched (`users`: login, IdP id) against the
/// oracle, and every audit chain, into `recorded` and `problems`.
async fn check_final(
    ends: &Ends,
    client: &reqwest::Client,
    oracle: &mut crate::scenario::oracle::Oracle,
    users: &[(String, String)],
    recorded: &mut Recorded,
    problems: &mut Vec<String>,
) -> Result<(), LoadError> {
    let checked = ends
        .final_check(client, oracle, users)
        .await
        .map_err(LoadError::Setup)?;
    problems.extend(checked.unreadable);
    let differing: BTreeSet<&String> = checked.findings.iter().map(|f| &f.user).collect();
    recorded.oracle_mismatches = differing.len() as u64;
    recorded.oracle_checked = users.len() as u64;
    recorded.findings = checked
        .findings
        .iter()
        .take(KEPT)
        .map(ToString::to_string)
        .collect();
    recorded.broken_chains = checked.broken_chains;
    Ok(())
}

/// Counts and histograms from the followed events; set-up events are left out.
fn tally(
    r: &mut Recorded,
    events: &[Tracked],
    start_wall: i64,
    ids: &HashMap<String, String>,
    pending_ids: &BTreeSet<String>,
    parked_ids: &BTreeSet<String>,
) {
    let mut seconds: BTreeMap<u64, Second> = BTreeMap::new();
    fn at(seconds: &mut BTreeMap<u64, Second>, s: u64) -> &mut Second {
        seconds.entry(s).or_insert_with(|| Second {
            second: s,
            ..Second::default()
        })
    }
    let e = &mut r.events;
    for t in events.iter().filter(|t| t.phase.is_some()) {
        e.sent += 1;
        let due_second = t.due_micros / 1_000_000;
        at(&mut seconds, due_second).sent += 1;
        if t.refused {
            e.refused += 1;
            continue;
        }
        if let Some(p) = t.phase.and_then(|p| r.phases.get_mut(p)) {
            p.sent += 1;
        }
        match t.overall_micros() {
            Some(m) => {
                e.applied += 1;
                if t.superseded_anywhere() {
                    e.superseded += 1;
                }
                r.overall.record(m);
                for target in TargetName::all() {
                    if let (Some(l), Some(h)) = (
                        t.latency_micros(target),
                        r.per_target.get_mut(target.as_str()),
                    ) {
                        h.record(l);
                    }
                }
                if let Some(p) = t.phase.and_then(|p| r.phases.get_mut(p)) {
                    p.applied += 1;
                    p.latency.record(m);
                }
                at(&mut seconds, due_second).latency.record(m);
                let done_at = t
                    .applied
                    .iter()
                    .flatten()
                    .max()
                    .copied()
                    .unwrap_or(start_wall);
                at(
                    &mut seconds,
                    ((done_at - start_wall).max(0) / 1_000_000) as u64,
                )
                .applied += 1;
            }
            None => {
                let id = ids.get(&t.user);
                if id.is_some_and(|i| pending_ids.contains(i)) {
                    e.pending += 1;
                } else {
                    e.lost += 1;
                    if id.is_some_and(|i| parked_ids.contains(i)) {
                        e.parked += 1;
                    }
                }
            }
        }
    }
    // Every second from the first, empty ones included, so plots and merges line up.
    let last = seconds.keys().next_back().copied().unwrap_or(0);
    r.seconds = (0..=last)
        .map(|s| {
            seconds.remove(&s).unwrap_or(Second {
                second: s,
                ..Second::default()
            })
        })
        .collect();
}

/// Writes `report.json`, `summary.md`, `junit.xml`, `latency.hgrm`, `index.html` and the SVG plots.
pub fn write(report: &LoadReport, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("report.json"), json)?;
    std::fs::write(dir.join("summary.md"), report.to_markdown())?;
    std::fs::write(
        dir.join("junit.xml"),
        report.to_junit().map_err(std::io::Error::other)?,
    )?;
    std::fs::write(dir.join("latency.hgrm"), report.to_hgrm())?;
    for (name, svg) in html::plots(report) {
        std::fs::write(dir.join(name), svg)?;
    }
    std::fs::write(dir.join("index.html"), html::page(report))
}

/// Reads a `report.json` written by `write`.
pub fn read(path: &Path) -> Result<LoadReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a load report: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_parse_print_and_refuse_nonsense() {
        let f: FaultSpec = "5xx=5%,429=2%,latency=20ms,drop=1%,kill=teamcity:2s"
            .parse()
            .unwrap();
        assert_eq!(f.faults.rate_5xx, 5.0);
        assert_eq!(f.faults.latency_ms, 20);
        assert_eq!(
            f.kill,
            Some((
                crate::mock_target::teamcity::TEAMCITY.server(),
                Duration::from_secs(2)
            ))
        );
        assert_eq!(
            f.to_string(),
            "5xx=5%,429=2%,drop=1%,latency=20ms,kill=teamcity:2s"
        );
        assert_eq!("none".parse::<FaultSpec>().unwrap(), FaultSpec::default());
        for bad in [
            "5xx=120%",
            "teapot=1%",
            "kill=idp",
            "5xx=60%,429=50%",
            "latency=forever",
        ] {
            assert!(bad.parse::<FaultSpec>().is_err(), "{bad}");
        }
        let p: Phase = "10s:5xx=5%".parse().unwrap();
        assert_eq!((p.at_s, p.faults.faults.rate_5xx), (10.0, 5.0));
        assert!("5xx=5%".parse::<Phase>().is_err());
    }
}
