//! `scimlab load --scim URL`: the load plan pushed by the embedded IdP to a SCIM endpoint the
//! run did not start. The IdP pushes through the metering proxy (`crate::wiretap`), which
//! counts the endpoint's answers by operation and status and holds the caps. Latency per
//! operation kind is the IdP's own: from accepting a change to the endpoint acknowledging its
//! last request, as its System Log records each delivery. At the end every person the run
//! touched is compared with the SCIM-level oracle, and what the run made is deleted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use scim::tls::ClientTls;
use serde::Serialize;

use super::cpu::{CpuClock, CpuShare};
use super::plan::{self, Kind, Planned, GROUPS};
use super::report::{saturation, Hist, Latency};
use super::{Idp, LoadError, LoadOptions, SETUP_CONCURRENCY};
use crate::conformance::Target;
use crate::scenario::run::{Endpoint, TOKEN};
use crate::scim_target::{
    compare, due, read_idp, Cleanup, Difference, EndpointAuth, IdpFacts, ScimSpec, ScimTarget,
};
use crate::targets::{assign_and_push, group_named, wire_app};
use crate::wiretap::{Caps, Traffic, Wiretap};
use reqwest::Method;

/// Differences kept verbatim in the report; the rest are counted.
const KEPT: usize = 50;

/// The endpoint and how the run treats it.
#[derive(Debug, Clone)]
pub struct ScimLoad {
    pub spec: ScimSpec,
    pub auth: EndpointAuth,
    pub tls: ClientTls,
    pub caps: Caps,
    pub keep: bool,
    /// Groups besides the plan's, each holding the first `group_size` people of the starting
    /// population, pushed before the clock starts: an IdP's first sync with large groups.
    pub large_groups: usize,
    pub group_size: u32,
}

impl ScimLoad {
    /// Every group name the run makes on the endpoint, without the tag.
    fn group_names(&self) -> Vec<String> {
        GROUPS
            .iter()
            .map(|g| (*g).to_owned())
            .chain((0..self.large_groups).map(|k| format!("Large-{k}")))
            .collect()
    }
}

/// An event waiting to show: when the IdP accepted it, its kind, and the group it must show
/// the person in.
type Waiting = (Instant, Kind, Option<String>);

/// `--poll-ms`: each person with an open event is read back from the endpoint until it shows
/// the outcome, and the time from the IdP accepting the event to that read is kept per kind.
#[derive(Default)]
struct Readback {
    /// By login; a later event of the same person replaces an earlier one.
    open: Mutex<HashMap<String, Waiting>>,
    seen: Mutex<BTreeMap<&'static str, Hist>>,
    /// The endpoint lists a user's groups on the user (RFC 7643 §4.1.2 `groups`, read-only):
    /// seen on a person of the starting population, who is in a group. Without it,
    /// membership is not judged and an event shows once the person is active.
    lists_groups: AtomicBool,
}

impl Readback {
    fn opened(&self, login: String, kind: Kind, group: Option<String>) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.insert(login, (Instant::now(), kind, group));
    }

    /// Whether `resource` (or its absence) shows the outcome of an event of `kind`.
    fn shows(&self, resource: Option<&serde_json::Value>, kind: Kind, group: Option<&str>) -> bool {
        let Some(r) = resource else { return false };
        let active = crate::scim_target::value_at(r, "active");
        if kind == Kind::Leaver {
            return active.as_deref() == Some("false");
        }
        if active.as_deref() != Some("true") {
            return false;
        }
        if !self.lists_groups.load(Ordering::Relaxed) {
            return true;
        }
        let groups = r.get("groups").and_then(|g| g.as_array());
        group.is_none_or(|g| groups.into_iter().flatten().any(|m| m["display"] == g))
    }

    /// Reads every open person once; those that show their outcome are closed.
    async fn poll(&self, target: &ScimTarget) {
        let open: Vec<(String, Waiting)> = {
            let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            open.iter().map(|(l, v)| (l.clone(), v.clone())).collect()
        };
        let reads = futures::stream::iter(open.into_iter().map(|(login, v)| async move {
            let found = target.find("Users", "userName", &login).await;
            (login, v, found)
        }))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
        for (login, (at, kind, group), found) in reads {
            let Ok(found) = found else { continue };
            if !self.shows(found.first(), kind, group.as_deref()) {
                continue;
            }
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            // Only if no later event of this person replaced it meanwhile.
            if open.get(&login).is_some_and(|(a, _, _)| *a == at) {
                open.remove(&login);
                let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                seen.entry(kind.as_str())
                    .or_default()
                    .record(at.elapsed().as_micros() as u64);
            }
        }
    }
}

/// The read-back latency of one kind of event (`--poll-ms`).
#[derive(Debug, Clone, Serialize)]
pub struct Visible {
    pub kind: String,
    pub latency: Latency,
}

/// The IdP's delivery latency of one kind of change (accepted to acknowledged).
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub kind: String,
    pub latency: Latency,
    /// Changes of this kind the IdP gave up on (parked).
    pub failed: u64,
}

/// One second of the measured part.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Second {
    pub second: u64,
    pub sent: u64,
    /// Changes the endpoint acknowledged (the IdP's deliveries).
    pub delivered: u64,
    /// The IdP's outbox at the end of the second.
    pub backlog: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScimLoadReport {
    pub tool: &'static str,
    pub version: &'static str,
    pub command: &'static str,
    pub target: String,
    pub url: String,
    pub dialect: String,
    pub rate: f64,
    pub duration_s: f64,
    pub users: u32,
    pub large_groups: usize,
    pub group_size: u32,
    pub tag: String,
    pub verdict: &'static str,
    /// One line: why the run passed or failed.
    pub verdict_line: String,
    pub setup_s: f64,
    pub measured_s: f64,
    pub events_planned: u64,
    pub events_accepted: u64,
    pub events_refused: u64,
    /// How late the generator sent events (its own lateness, not the target's).
    pub lag: Latency,
    pub delivery: Vec<Delivery>,
    /// `--poll-ms`: from the IdP accepting an event to the first read that shows it, per
    /// kind of event; empty without `--poll-ms`.
    pub visible: Vec<Visible>,
    /// With `--poll-ms`: events whose outcome no read showed by the end.
    pub never_visible: u64,
    /// With `--poll-ms`: whether the endpoint lists a user's groups on the user; when it does
    /// not, a joiner's or mover's membership is not judged (it shows once active).
    pub membership_judged: bool,
    pub traffic: Traffic,
    pub seconds: Vec<Second>,
    pub saturated: Option<String>,
    /// scimlab's own CPU while measuring (the generator and the IdP: the endpoint is elsewhere).
    pub cpu: Option<CpuShare>,
    /// Changes still in the IdP's outbox at the end, and of those parked.
    pub undelivered: u64,
    pub parked: u64,
    /// When the endpoint answered 429: whether the IdP's retries, backing off as told, still
    /// delivered every change by the end (`None`: no 429).
    pub backoff_converged: Option<bool>,
    pub oracle_checked: u64,
    pub oracle_differences: u64,
    pub differences: Vec<Difference>,
    pub cleanup: Cleanup,
    pub kept: bool,
    pub problems: Vec<String>,
}

/// Runs the plan of `o` against `t`.
pub async fn run(o: &LoadOptions, t: &ScimLoad) -> Result<ScimLoadReport, LoadError> {
    let setup = |e: &dyn std::fmt::Display| LoadError::Setup(e.to_string());
    let http = t.tls.client().map_err(|e| setup(&e))?;
    let tag = o
        .tag
        .clone()
        .unwrap_or_else(|| format!("sl{:08x}", rand::random::<u32>()));
    let reader =
        Target::with_tls(&t.spec.url, t.auth.read.clone(), &t.tls).map_err(|e| setup(&e))?;
    let target = ScimTarget::new(&t.spec, t.auth.push.clone(), reader, &tag);
    target
        .preflight()
        .await
        .map_err(|why| LoadError::Setup(format!("preflight: {why} (nothing was written)")))?;
    let tap = Wiretap::start(&t.spec.url, &t.tls, t.caps).await?;
    // The IdP pushes to the proxy in plain HTTP, but fetches OAuth tokens from the
    // user's authorization server, which may need the user's CA.
    let idp = crate::targets::embedded_idp(TOKEN, t.tls.clone()).await?;
    let hired: Arc<Mutex<HashMap<u32, String>>> = Arc::default();
    let stack = Stack {
        target: &target,
        tap: &tap,
        launched: &idp,
        http: &http,
        tag: &tag,
        hired: hired.clone(),
    };
    // Interrupted (Ctrl-C, SIGTERM): stop where it is, and still clean up below.
    let outcome = tokio::select! {
        outcome = drive(o, t, stack) => outcome,
        () = scim::serve::shutdown_signal() => Err(LoadError::Interrupted),
    };
    // The IdP stops first, so nothing it still retries lands after the clean-up.
    idp.stop().await;
    let traffic = tap.traffic();
    tap.stop().await;
    // Whatever happened, what the run made goes (a set-up that failed half-way included).
    let cleanup = if t.keep {
        Cleanup::default()
    } else {
        let logins: Vec<String> = {
            let hired = hired.lock().unwrap_or_else(|p| p.into_inner());
            hired.keys().map(|u| super::login(Some(&tag), *u)).collect()
        };
        let groups: Vec<String> = t
            .group_names()
            .iter()
            .map(|g| format!("{tag}-{g}"))
            .collect();
        target.clean_up(&logins, &groups).await
    };
    let mut report = match outcome {
        Ok(report) => report,
        Err(LoadError::Setup(why)) if !cleanup.left.is_empty() => {
            return Err(LoadError::Setup(format!(
                "{why}; and the clean-up left: {}",
                cleanup.left.join("; ")
            )))
        }
        Err(e) => return Err(e),
    };
    report.traffic = traffic;
    report.cleanup = cleanup;
    report.kept = t.keep;
    judge(&mut report, o.max_p99_ms);
    Ok(report)
}

/// What a run has started: the endpoint's client, the proxy, the IdP, the run's tag, and who
/// has been hired so far.
struct Stack<'a> {
    target: &'a ScimTarget,
    tap: &'a Wiretap,
    launched: &'a mock_idp::Launched,
    http: &'a reqwest::Client,
    tag: &'a str,
    hired: Arc<Mutex<HashMap<u32, String>>>,
}

/// Set-up, the measured part, the settle and the final comparison; everyone hired is noted
/// in `hired` as soon as the IdP has them, for the clean-up.
async fn drive(
    o: &LoadOptions,
    t: &ScimLoad,
    stack: Stack<'_>,
) -> Result<ScimLoadReport, LoadError> {
    let Stack {
        target,
        tap,
        launched,
        http,
        tag,
        hired,
    } = stack;
    let setup_started = Instant::now();
    let fail = LoadError::Setup;
    let app = wire_app(
        http,
        &launched.url,
        TOKEN,
        t.auth.push.connection(),
        &format!("SCIM {}", t.spec.name),
        &tap.url,
        o.dialect,
    )
    .await?;
    let end = Endpoint {
        url: launched.url.clone(),
        token: TOKEN.to_owned(),
        app: None,
        scim: None,
    };
    let mut group_ids = Vec::new();
    for g in GROUPS {
        let id = group_named(http, &end.url, TOKEN, &format!("{tag}-{g}"), false)
            .await
            .map_err(fail)?;
        assign_and_push(http, &end.url, TOKEN, &app, &id)
            .await
            .map_err(fail)?;
        group_ids.push(id);
    }
    let idp = Arc::new(Idp {
        client: http.clone(),
        end,
        group_ids,
        user_ids: hired,
        tag: Some(tag.to_owned()),
    });
    let population: Vec<u32> = (0..o.plan.users).collect();
    let hires = futures::stream::iter(population.iter().map(|&u| {
        let idp = idp.clone();
        async move { idp.hire(u, plan::first_group(u)).await }
    }))
    .buffer_unordered(SETUP_CONCURRENCY)
    .collect::<Vec<Result<(), String>>>()
    .await;
    if let Some(Err(e)) = hires.into_iter().find(Result::is_err) {
        return Err(fail(format!("hiring the starting population: {e}")));
    }
    // The large groups, filled first and then pushed whole, as a first sync finds them.
    let mut groups: Vec<(String, String)> = GROUPS
        .iter()
        .map(|g| (*g).to_owned())
        .zip(idp.group_ids.iter().cloned())
        .collect();
    for name in t.group_names().into_iter().skip(GROUPS.len()) {
        let id = group_named(http, &idp.end.url, TOKEN, &format!("{tag}-{name}"), false)
            .await
            .map_err(fail)?;
        let adds = futures::stream::iter((0..t.group_size).map(|u| {
            let (idp, id) = (idp.clone(), id.clone());
            async move {
                let path = format!("/api/v1/groups/{id}/users/{}", idp.user_id(u)?);
                idp.call(Method::PUT, &path, None).await.map(drop)
            }
        }))
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect::<Vec<Result<(), String>>>()
        .await;
        if let Some(Err(e)) = adds.into_iter().find(Result::is_err) {
            return Err(fail(format!("filling {name}: {e}")));
        }
        assign_and_push(http, &idp.end.url, TOKEN, &app, &id)
            .await
            .map_err(fail)?;
        groups.push((name, id));
    }
    let engine = &launched.idp;
    let backlog = || engine.store.read().outbox.len() as u64;
    let parked = || {
        engine
            .store
            .read()
            .outbox
            .values()
            .filter(|e| e.parked)
            .count() as u64
    };
    let members = u64::from(o.plan.users) + t.large_groups as u64 * u64::from(t.group_size);
    let window = Duration::from_secs(60) + Duration::from_millis(20 * members);
    let deadline = Instant::now() + window;
    while backlog() > 0 && Instant::now() < deadline && !tap.capped() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if backlog() > 0 {
        return Err(fail(format!(
            "{} changes of the starting population were not delivered within {} s{}",
            backlog(),
            window.as_secs(),
            if tap.capped() {
                " (--max-requests reached)"
            } else {
                ""
            }
        )));
    }
    let setup_s = setup_started.elapsed().as_secs_f64();

    // The measured part: the plan at its own pace, a sample of the IdP every second.
    let planned: Vec<Planned> = plan::plan(&o.plan);
    let events_planned = planned.len() as u64;
    let start = Instant::now();
    let cpu_clock = CpuClock::start();
    let start_wall = chrono::Utc::now();
    let sent = Arc::new(Mutex::new(BTreeMap::<u64, u64>::new()));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let sampler = {
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop_rx.changed() => break,
                }
                let delivered = engine.engine.stats.delivered.load(Ordering::Relaxed);
                samples.push((delivered, engine.store.read().outbox.len() as u64));
            }
            samples
        })
    };
    let mut lag = Hist::new();
    let (mut accepted, mut refused) = (0u64, 0u64);
    let mut sends = tokio::task::JoinSet::new();
    let readback = Arc::new(Readback::default());
    if o.poll.is_some() && o.plan.users > 0 {
        let first = target.find("Users", "userName", &idp.login(0)).await;
        let lists = first
            .ok()
            .and_then(|f| f.into_iter().next())
            .is_some_and(|u| {
                u.get("groups")
                    .and_then(|g| g.as_array())
                    .is_some_and(|g| !g.is_empty())
            });
        readback.lists_groups.store(lists, Ordering::Relaxed);
    }
    let polling = AtomicBool::new(o.poll.is_some());
    let poller = async {
        while polling.load(Ordering::Relaxed) {
            readback.poll(target).await;
            tokio::time::sleep(o.poll.unwrap_or_default()).await;
        }
    };
    let measured = async {
        for e in planned {
            if tap.capped() {
                break;
            }
            let due = start + Duration::from_micros(e.at_micros);
            tokio::time::sleep_until(due.into()).await;
            lag.record(Instant::now().saturating_duration_since(due).as_micros() as u64);
            let idp = idp.clone();
            let sent = sent.clone();
            let readback = readback.clone();
            let watched = o.poll.is_some().then(|| {
                let group = e.to.map(|g| format!("{tag}-{}", GROUPS[g as usize]));
                (idp.login(e.user), e.kind, group)
            });
            sends.spawn(async move {
                let outcome = idp.send(&e).await;
                if let (Ok(()), Some((login, kind, group))) = (&outcome, watched) {
                    readback.opened(login, kind, group);
                }
                if outcome.is_ok() {
                    let second = (e.at_micros / 1_000_000) + 1;
                    *sent
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(second)
                        .or_default() += 1;
                }
                outcome
            });
        }
        let mut problems = Vec::new();
        while let Some(done) = sends.join_next().await {
            match done {
                Ok(Ok(())) => accepted += 1,
                Ok(Err(why)) => {
                    refused += 1;
                    if problems.len() < KEPT {
                        problems.push(format!("the IdP refused an event: {why}"));
                    }
                }
                Err(e) => problems.push(format!("a send task failed: {e}")),
            }
        }
        if tap.capped() {
            problems.push("--max-requests was reached: the run stopped sending".into());
        }
        // Settle: until the outbox is empty, or only parked entries remain, or time runs out.
        let deadline = Instant::now() + o.settle;
        while backlog() > parked() && Instant::now() < deadline && !tap.capped() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The last reads: until every outcome shows, or the settle time is over.
        while o.poll.is_some()
            && readback.open.lock().map_or(0, |o| o.len()) > 0
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        polling.store(false, Ordering::Relaxed);
        (problems, accepted, refused, lag)
    };
    let ((problems, accepted, refused, lag), ()) = tokio::join!(measured, poller);
    let measured_s = start.elapsed().as_secs_f64();
    let cpu = cpu_clock.share();
    let _ = stop_tx.send(true);
    let samples = sampler.await.unwrap_or_default();
    let sent = sent.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let seconds = per_second(&samples, &sent);
    // Parked changes stay in the outbox: a backlog of failures is not saturation.
    let series: Vec<(u64, u64)> = seconds.iter().map(|s| (s.backlog, s.delivered)).collect();
    let saturated = saturation(&series, "deliveries")
        .filter(|_| parked() == 0)
        .map(|said| {
            let limit = "the generator or the IdP may be the limit, not the endpoint";
            CpuShare::qualify(said, cpu, limit)
        });

    let delivery = deliveries(&idp, &start_wall).await.map_err(fail)?;
    let (undelivered, parked) = (backlog(), parked());
    let people: Vec<(String, String)> = {
        let ids = idp.user_ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.iter()
            .map(|(u, id)| (format!("load-{u:07}"), id.clone()))
            .collect()
    };
    let end = (idp.end.url.as_str(), idp.end.token.as_str());
    let facts = read_idp(http, end, &app, &groups, &people, &IdpFacts::default())
        .await
        .map_err(fail)?;
    let mut known: BTreeSet<String> = facts.people.keys().cloned().collect();
    let now = due(&facts, &mut known, o.dialect);
    let (seen, _) = target.read_back(&facts).await.map_err(fail)?;
    let mut differences = compare(&target.name, &[now], &seen);
    let total = differences.len() as u64;
    differences.truncate(KEPT);
    let traffic = tap.traffic();
    let report = ScimLoadReport {
        tool: "scimlab",
        version: env!("CARGO_PKG_VERSION"),
        command: "load",
        target: target.name.clone(),
        url: target.url.clone(),
        dialect: o.dialect.as_str().into(),
        rate: o.plan.rate,
        duration_s: o.plan.duration_s,
        users: o.plan.users,
        large_groups: t.large_groups,
        group_size: t.group_size,
        tag: tag.to_owned(),
        verdict: "fail",
        verdict_line: String::new(),
        setup_s,
        measured_s,
        events_planned,
        events_accepted: accepted,
        events_refused: refused,
        lag: lag.summary(),
        delivery,
        visible: readback
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(kind, hist)| Visible {
                kind: (*kind).to_owned(),
                latency: hist.summary(),
            })
            .collect(),
        never_visible: readback.open.lock().map_or(0, |o| o.len() as u64),
        membership_judged: readback.lists_groups.load(Ordering::Relaxed),
        backoff_converged: (traffic.throttled_with_retry_after
            + traffic.throttled_without_retry_after
            > 0)
        .then_some(undelivered == 0),
        traffic,
        seconds,
        saturated,
        cpu,
        undelivered,
        parked,
        oracle_checked: people.len() as u64,
        oracle_differences: total,
        differences,
        cleanup: Cleanup::default(),
        kept: false,
        problems,
    };
    Ok(report)
}

/// The IdP's delivery latency per kind of change since `since`, from its System Log.
async fn deliveries(
    idp: &Idp,
    since: &chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Delivery>, String> {
    let fmt = |t: &chrono::DateTime<chrono::Utc>| {
        crate::encode(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    let until = chrono::Utc::now() + chrono::Duration::seconds(1);
    let path = format!(
        "/api/v1/logs?since={}&until={}&limit=1000",
        fmt(since),
        fmt(&until)
    );
    let events =
        crate::scenario::oracle::pages(&idp.client, &idp.end.url, &idp.end.token, &path).await?;
    let mut by: BTreeMap<String, (Hist, u64)> = BTreeMap::new();
    for e in &events {
        let Some(kind) = e["eventType"]
            .as_str()
            .and_then(|k| k.strip_prefix("application.provision."))
        else {
            continue;
        };
        let entry = by.entry(kind.to_owned()).or_default();
        match e["outcome"]["result"].as_str() {
            Some("SUCCESS") => {
                if let Some(ms) = e["debugContext"]["debugData"]["latencyMs"].as_f64() {
                    entry.0.record((ms * 1000.0) as u64);
                }
            }
            _ => entry.1 += 1,
        }
    }
    Ok(by
        .into_iter()
        .map(|(kind, (hist, failed))| Delivery {
            kind,
            latency: hist.summary(),
            failed,
        })
        .collect())
}

/// Each second of the measured part from the sampler's (delivered so far, backlog) pairs and
/// the events sent per second.
fn per_second(samples: &[(u64, u64)], sent: &BTreeMap<u64, u64>) -> Vec<Second> {
    let mut before = samples.first().map_or(0, |s| s.0);
    samples
        .iter()
        .enumerate()
        .map(|(i, &(delivered, backlog))| {
            let second = i as u64;
            let s = Second {
                second,
                sent: sent.get(&second).copied().unwrap_or(0),
                delivered: delivered.saturating_sub(before),
                backlog,
            };
            before = delivered;
            s
        })
        .collect()
}

/// The verdict and its one line.
fn judge(r: &mut ScimLoadReport, max_p99_ms: Option<f64>) {
    let mut why = Vec::new();
    if r.undelivered > 0 {
        why.push(format!(
            "{} changes undelivered ({} parked)",
            r.undelivered, r.parked
        ));
    }
    if r.never_visible > 0 {
        why.push(format!(
            "{} events never showed on the endpoint",
            r.never_visible
        ));
    }
    if r.oracle_differences > 0 {
        why.push(format!(
            "{} differences from the SCIM oracle",
            r.oracle_differences
        ));
    }
    if r.events_refused > 0 {
        why.push(format!("{} events refused by the IdP", r.events_refused));
    }
    if r.traffic.capped {
        why.push("--max-requests reached before the plan ended".into());
    }
    if let Some(s) = &r.saturated {
        why.push(s.clone());
    }
    if let Some(max) = max_p99_ms {
        for d in r.delivery.iter().filter(|d| d.latency.p99 > max) {
            why.push(format!(
                "{} p99 {:.1} ms over {max} ms",
                d.kind, d.latency.p99
            ));
        }
    }
    if !r.cleanup.left.is_empty() {
        why.push(format!("{} resources left behind", r.cleanup.left.len()));
    }
    let delivered: u64 = r.delivery.iter().map(|d| d.latency.count).sum();
    if why.is_empty() {
        r.verdict = "pass";
        r.verdict_line = format!(
            "PASS: {} events, {delivered} deliveries, {} requests, every person equal to the SCIM oracle",
            r.events_accepted, r.traffic.requests
        );
    } else {
        r.verdict = "fail";
        r.verdict_line = format!("FAIL: {}", why.join("; "));
    }
}

/// One rate of a `--find-max` climb.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub rate: f64,
    pub held: bool,
    pub verdict_line: String,
    /// The slowest kind of change's p99 delivery latency, ms.
    pub worst_p99_ms: f64,
    /// Answers of 400 or more, of all requests that reached the endpoint.
    pub error_rate: f64,
}

/// `--find-max`: the climb, and the highest rate that held.
#[derive(Debug, Clone, Serialize)]
pub struct FindMax {
    pub tool: &'static str,
    pub command: &'static str,
    pub target: String,
    pub url: String,
    pub max_p99_ms: Option<f64>,
    pub max_error_rate: f64,
    pub steps: Vec<Step>,
    /// `None`: not even the first rate held.
    pub highest_held: Option<f64>,
    pub verdict_line: String,
}

/// Climbs from `o`'s rate by `factor` for at most `steps` runs, each a whole run (set-up,
/// load, oracle, clean-up), until one fails: the verdict of a run (its oracle, saturation,
/// `--max-p99-ms`) or an error rate over `max_error_rate`.
pub async fn find_max(
    o: &LoadOptions,
    t: &ScimLoad,
    steps: usize,
    factor: f64,
    max_error_rate: f64,
) -> Result<(FindMax, ScimLoadReport), LoadError> {
    let mut climbed = Vec::new();
    let mut options = o.clone();
    let mut last = None;
    for _ in 0..steps.max(1) {
        let report = run(&options, t).await?;
        let errors: u64 = report
            .traffic
            .operations
            .iter()
            .filter(|op| op.status >= 400)
            .map(|op| op.latency.count)
            .sum();
        let error_rate = errors as f64 / report.traffic.requests.max(1) as f64;
        let held = report.passed() && error_rate <= max_error_rate;
        let worst_p99_ms = report
            .delivery
            .iter()
            .map(|d| d.latency.p99)
            .fold(0.0, f64::max);
        let mut line = report.verdict_line.clone();
        if report.passed() && !held {
            line = format!(
                "FAIL: error rate {:.2}% over {:.2}%",
                error_rate * 100.0,
                max_error_rate * 100.0
            );
        }
        climbed.push(Step {
            rate: options.plan.rate,
            held,
            verdict_line: line,
            worst_p99_ms,
            error_rate,
        });
        last = Some(report);
        if !held {
            break;
        }
        options.plan.rate *= factor;
    }
    let highest_held = climbed.iter().rev().find(|s| s.held).map(|s| s.rate);
    let verdict_line = match (highest_held, climbed.last()) {
        (Some(rate), Some(top)) if !top.held => format!(
            "held {rate:.0} events/s; at {:.0}: {}",
            top.rate, top.verdict_line
        ),
        (Some(rate), _) => {
            format!("held every rate tried, up to {rate:.0} events/s: climb further with --rate")
        }
        (None, Some(top)) => format!(
            "not even {:.0} events/s held: {}",
            top.rate, top.verdict_line
        ),
        (None, None) => "no run".into(),
    };
    let report = last.ok_or_else(|| LoadError::Setup("no run".into()))?;
    Ok((
        FindMax {
            tool: "scimlab",
            command: "load --find-max",
            target: report.target.clone(),
            url: report.url.clone(),
            max_p99_ms: o.max_p99_ms,
            max_error_rate,
            steps: climbed,
            highest_held,
            verdict_line,
        },
        report,
    ))
}

impl FindMax {
    pub fn to_markdown(&self) -> String {
        let mut md = format!(
            "# Highest rate on {} ({})\n\n**{}**\n\n| events/s | held | worst p99 ms | error rate | verdict |\n|---|---|---|---|---|\n",
            self.target, self.url, self.verdict_line
        );
        for s in &self.steps {
            md.push_str(&format!(
                "| {:.0} | {} | {:.1} | {:.2}% | {} |\n",
                s.rate,
                if s.held { "yes" } else { "**no**" },
                s.worst_p99_ms,
                s.error_rate * 100.0,
                s.verdict_line
            ));
        }
        md
    }

    /// Writes find-max.json, find-max.md, find-max.html and its plot into `dir` (beside the
    /// last run's report).
    pub fn write(&self, dir: &std::path::Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("find-max.json"), json)?;
        std::fs::write(dir.join("find-max.md"), self.to_markdown())?;
        let (name, svg) = super::html::find_max_plot(self);
        std::fs::write(dir.join(name), svg)?;
        std::fs::write(dir.join("find-max.html"), super::html::find_max_page(self))
    }
}

impl ScimLoadReport {
    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }

    pub fn to_markdown(&self) -> String {
        let mut md = format!(
            "# Load on {} ({})\n\n**{}**\n\n{} events/s for {} s, {} people, {} dialect, tag `{}`; set-up {:.1} s.\n\n",
            self.target, self.url, self.verdict_line, self.rate, self.duration_s, self.users,
            self.dialect, self.tag, self.setup_s
        );
        md.push_str(&format!(
            "Onboarding (before the clock starts): {} people pushed into {} groups, and {} more groups of {} members each, converged in {:.1} s, {:.0} people/s; the SCIM oracle below checks that every member of every group arrived.\n\n",
            self.users,
            GROUPS.len(),
            self.large_groups,
            self.group_size,
            self.setup_s,
            f64::from(self.users) / self.setup_s.max(1e-9)
        ));
        md.push_str(&format!(
            "Events: {} planned, {} accepted, {} refused. Generator lateness p99 {:.1} ms.{}\n\n",
            self.events_planned,
            self.events_accepted,
            self.events_refused,
            self.lag.p99,
            CpuShare::sentence(self.cpu)
        ));
        md.push_str("## Delivery (IdP accepted to endpoint acknowledged)\n\n| change | count | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | parked |\n|---|---|---|---|---|---|---|---|\n");
        for d in &self.delivery {
            let l = &d.latency;
            md.push_str(&format!(
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} |\n",
                d.kind, l.count, l.p50, l.p90, l.p99, l.p999, l.max, d.failed
            ));
        }
        if !self.visible.is_empty() || self.never_visible > 0 {
            md.push_str(&format!(
                "\n## Visible (IdP accepted to the first read that shows it, --poll-ms)\n\n{} events never shown by a read; membership judged from the user's `groups`: {}.\n\n| event | count | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n|---|---|---|---|---|---|---|\n",
                self.never_visible,
                if self.membership_judged { "yes" } else { "no (the endpoint does not list them)" }
            ));
            for v in &self.visible {
                let l = &v.latency;
                md.push_str(&format!(
                    "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
                    v.kind, l.count, l.p50, l.p90, l.p99, l.p999, l.max
                ));
            }
        }
        md.push_str(&format!(
            "\n## Requests to the endpoint ({} in all; 429 with Retry-After: {}, without: {})\n\n| operation | status | count | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n",
            self.traffic.requests,
            self.traffic.throttled_with_retry_after,
            self.traffic.throttled_without_retry_after
        ));
        for o in &self.traffic.operations {
            let l = &o.latency;
            md.push_str(&format!(
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} |\n",
                o.operation, o.status, l.count, l.p50, l.p99, l.max
            ));
        }
        match self.backoff_converged {
            Some(true) => md.push_str(
                "\nThe IdP's backoff converged: every change throttled with 429 was delivered later.\n",
            ),
            Some(false) => md.push_str(&format!(
                "\nThe IdP's backoff did not converge: {} changes still undelivered at the end ({} parked).\n",
                self.undelivered, self.parked
            )),
            None => {}
        }
        md.push_str(&format!(
            "\n## SCIM oracle\n\n{} people checked, {} differences.\n\n",
            self.oracle_checked, self.oracle_differences
        ));
        for d in &self.differences {
            md.push_str(&format!("- {d}\n"));
        }
        md.push_str(&format!(
            "\n## Clean-up\n\n{} deleted{}.\n",
            self.cleanup.deleted,
            if self.kept {
                " (--keep: nothing deleted)"
            } else {
                ""
            }
        ));
        for l in &self.cleanup.left {
            md.push_str(&format!("- left: {l}\n"));
        }
        for p in &self.problems {
            md.push_str(&format!("- problem: {p}\n"));
        }
        md
    }

    pub fn to_junit(&self) -> Result<String, quick_junit::SerializeError> {
        use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
        let mut report = Report::new("scimlab load");
        let mut suite = TestSuite::new(format!("load on {}", self.target));
        let status = if self.passed() {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(self.verdict_line.clone());
            s
        };
        suite.add_test_case(TestCase::new("verdict", status));
        report.add_test_suite(suite);
        report.to_string()
    }

    /// Writes report.json, summary.md, junit.xml, index.html and the SVG plots into `dir`.
    pub fn write(&self, dir: &std::path::Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("report.json"), json)?;
        std::fs::write(dir.join("summary.md"), self.to_markdown())?;
        std::fs::write(
            dir.join("junit.xml"),
            self.to_junit().map_err(std::io::Error::other)?,
        )?;
        for (name, svg) in super::html::scim_plots(self) {
            std::fs::write(dir.join(name), svg)?;
        }
        std::fs::write(dir.join("index.html"), super::html::scim_page(self))
    }
}
