//! What every mock's control plane (`/_sim/...`) shares: the hash-chained audit log and its
//! event stream, fault injection, named quirks, and request metrics in Prometheus text format.
//! A mock keeps its records and its audit events in one sled tree, so a change and the event
//! that records it are written together, atomically (`store::TreeWrites`).

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{SecondsFormat, Utc};
use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use scim::error::{Result, ScimError};
use scim::provider::BoxFuture;
use scim::store::TreeWrites;

/// One audit event: what changed, when it was applied, and the hash of the event before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: u64,
    /// When the change was applied (UTC, microseconds, the mock's wall clock).
    pub applied: String,
    pub kind: String,
    pub subject: String,
    pub data: Value,
    pub prev: String,
    pub hash: String,
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl AuditEvent {
    fn digest(&self) -> String {
        // A tuple is written as the JSON array the chain has always hashed, without copying
        // `data` into a new Value first.
        let body = (
            self.seq,
            &self.applied,
            &self.kind,
            &self.subject,
            &self.data,
            &self.prev,
        );
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        format!("{:x}", Sha256::digest(&bytes))
    }
}

/// The audit log inside a mock's sled tree, under keys `event/<seq>`.
#[derive(Debug)]
pub struct AuditLog {
    tree: sled::Tree,
    head: Mutex<(u64, String)>,
    live: broadcast::Sender<AuditEvent>,
}

const EVENT_PREFIX: &str = "event/";

fn event_key(seq: u64) -> String {
    format!("{EVENT_PREFIX}{seq:020}")
}

impl AuditLog {
    pub fn open(tree: sled::Tree) -> Result<AuditLog> {
        let head = match tree.scan_prefix(EVENT_PREFIX).next_back() {
            Some(entry) => {
                let (_, raw) = entry?;
                let last: AuditEvent = serde_json::from_slice(&raw).map_err(|e| {
                    ScimError::internal(format!("the last audit event is unreadable: {e}"))
                })?;
                (last.seq, last.hash)
            }
            None => (0, GENESIS.to_owned()),
        };
        Ok(AuditLog {
            tree,
            head: Mutex::new(head),
            live: broadcast::channel(4096).0,
        })
    }

    /// Appends an event to `writes` after `before` (their previous event, if any); call
    /// `published` once they are applied. The caller serialises writers, so events are
    /// chained in the order their changes were applied.
    pub fn append(
        &self,
        writes: &mut TreeWrites,
        before: Option<&AuditEvent>,
        kind: &str,
        subject: &str,
        data: Value,
    ) -> Result<AuditEvent> {
        let (seq, prev) = match before {
            Some(e) => (e.seq, e.hash.clone()),
            None => self.head.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        };
        let mut event = AuditEvent {
            seq: seq + 1,
            applied: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
            kind: kind.to_owned(),
            subject: subject.to_owned(),
            data,
            prev,
            hash: String::new(),
        };
        event.hash = event.digest();
        let raw = serde_json::to_vec(&event)
            .map_err(|e| ScimError::internal(format!("cannot encode an audit event: {e}")))?;
        writes.insert(event_key(event.seq), raw);
        Ok(event)
    }

    /// Moves the head past events whose writes were applied and streams them to subscribers.
    pub fn published(&self, events: Vec<AuditEvent>) {
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        for e in events {
            *head = (e.seq, e.hash.clone());
            let _ = self.live.send(e);
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<AuditEvent> {
        self.live.subscribe()
    }

    /// Events with `seq > after`, at most `limit` of them.
    pub fn since(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>> {
        let mut out = Vec::new();
        for entry in self.tree.range(event_key(after + 1)..) {
            let (k, raw) = entry?;
            if !k.starts_with(EVENT_PREFIX.as_bytes()) || out.len() >= limit {
                break;
            }
            out.push(
                serde_json::from_slice(&raw).map_err(|e| {
                    ScimError::internal(format!("an audit event is unreadable: {e}"))
                })?,
            );
        }
        Ok(out)
    }

    /// Re-computes every hash and link of the chain.
    pub fn verify(&self) -> Result<Value> {
        let mut prev = GENESIS.to_owned();
        let mut expected_seq = 1;
        for entry in self.tree.scan_prefix(EVENT_PREFIX) {
            let (_, raw) = entry?;
            let event: AuditEvent = serde_json::from_slice(&raw)
                .map_err(|e| ScimError::internal(format!("an audit event is unreadable: {e}")))?;
            let problem = if event.seq != expected_seq {
                Some(format!(
                    "expected event {expected_seq}, found {}",
                    event.seq
                ))
            } else if event.prev != prev {
                Some("its `prev` is not the hash of the event before it".to_owned())
            } else if event.digest() != event.hash {
                Some("its content does not match its hash".to_owned())
            } else {
                None
            };
            if let Some(problem) = problem {
                return Ok(json!({"valid": false, "events": expected_seq - 1,
                    "brokenAt": event.seq, "problem": problem}));
            }
            prev = event.hash;
            expected_seq += 1;
        }
        Ok(json!({"valid": true, "events": expected_seq - 1, "head": prev}))
    }
}

/// A mock's in-memory state, rebuilt from its stored records at open.
pub trait RecordState: Default + Send + Sync + 'static {
    type Record: Serialize + serde::de::DeserializeOwned;
    /// The mock's own error type, which a storage failure converts into.
    type Error: From<ScimError>;
    /// The record's sled key; it never starts with `event/`.
    fn key(record: &Self::Record) -> String;
    fn put(&mut self, record: Self::Record);
    fn remove(&mut self, record: &Self::Record);
    /// Every record, for a reset.
    fn records(&self) -> Vec<Self::Record>;
}

/// What one change writes: records to put or remove, and the audit events describing it.
#[derive(Debug)]
pub struct Changes<R> {
    puts: Vec<R>,
    removes: Vec<R>,
    events: Vec<(String, String, Value)>,
}

impl<R> Changes<R> {
    pub fn put(&mut self, r: R) {
        self.puts.push(r);
    }

    pub fn remove(&mut self, r: R) {
        self.removes.push(r);
    }

    pub fn event(&mut self, kind: &str, subject: &str, data: Value) {
        self.events.push((kind.into(), subject.into(), data));
    }
}

/// A mock's records and audit log in one sled tree, its state in memory for reads.
///
/// A change is decided against the current state, then its records and audit events are
/// written as one atomic sled batch, applied to memory, and flushed (group commit, when
/// durable) before `change` returns.
#[derive(Debug)]
pub struct RecordStore<S> {
    tree: sled::Tree,
    state: RwLock<S>,
    writer: Mutex<()>,
    audit: AuditLog,
    commit: Option<scim::store::GroupCommit>,
    _db: sled::Db,
}

impl<S: RecordState> RecordStore<S> {
    /// Opens the store in `dir`; `durable` acknowledges a change only after a flush.
    pub fn open(dir: &std::path::Path, durable: bool) -> Result<RecordStore<S>> {
        Self::with_db(scim::store::open_folder(dir)?, durable)
    }

    pub fn temporary() -> Result<RecordStore<S>> {
        Self::with_db(sled::Config::new().temporary(true).open()?, false)
    }

    fn with_db(db: sled::Db, durable: bool) -> Result<RecordStore<S>> {
        let tree = db.open_tree("records")?;
        TreeWrites::recover(&tree)?;
        let mut state = S::default();
        // Every key but the audit log's: those before `event/` and after `event/\xff...`.
        let records = tree
            .range(..EVENT_PREFIX.as_bytes())
            .chain(tree.range(&b"event0"[..]..));
        for entry in records {
            let (_, raw) = entry?;
            state.put(
                serde_json::from_slice(&raw).map_err(|e| {
                    ScimError::internal(format!("a stored record is unreadable: {e}"))
                })?,
            );
        }
        let commit = if durable {
            Some(scim::store::GroupCommit::start(db.clone())?)
        } else {
            None
        };
        Ok(RecordStore {
            audit: AuditLog::open(tree.clone())?,
            tree,
            state: RwLock::new(state),
            writer: Mutex::new(()),
            commit,
            _db: db,
        })
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// A consistent read of the state.
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, S> {
        // Memory changes only after sled accepted the batch, so a panicked writer left it whole.
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one change: `decide` reads the state and says what to write; nothing is written
    /// when it fails. Returns once the change is on disk, when durable.
    pub async fn change<T>(
        &self,
        decide: impl FnOnce(&S, &mut Changes<S::Record>) -> std::result::Result<T, S::Error>,
    ) -> std::result::Result<T, S::Error> {
        let out = self.change_replayable(decide)?;
        if let Some(commit) = &self.commit {
            commit.wait().await?;
        }
        Ok(out)
    }

    /// Runs one change and returns without waiting for the disk: only for a change that a
    /// crash may lose because it is done again on restart (an outbox's delivery outcome: the
    /// delivery is replayed, and replays are harmless). sled keeps a prefix of its log, so a
    /// later durable change makes this one durable too.
    pub fn change_replayable<T>(
        &self,
        decide: impl FnOnce(&S, &mut Changes<S::Record>) -> std::result::Result<T, S::Error>,
    ) -> std::result::Result<T, S::Error> {
        let out = {
            let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let mut changes = Changes {
                puts: Vec::new(),
                removes: Vec::new(),
                events: Vec::new(),
            };
            let out = decide(&self.read(), &mut changes)?;
            let mut writes = TreeWrites::default();
            for r in &changes.removes {
                writes.remove(S::key(r));
            }
            for r in &changes.puts {
                let raw = serde_json::to_vec(r)
                    .map_err(|e| ScimError::internal(format!("cannot encode a record: {e}")))?;
                writes.insert(S::key(r), raw);
            }
            let mut events = Vec::with_capacity(changes.events.len());
            for (kind, subject, data) in changes.events {
                let event = self
                    .audit
                    .append(&mut writes, events.last(), &kind, &subject, data)?;
                events.push(event);
            }
            writes.apply(&self.tree).map_err(S::Error::from)?;
            {
                let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
                for r in &changes.removes {
                    state.remove(r);
                }
                for r in changes.puts {
                    state.put(r);
                }
            }
            self.audit.published(events);
            out
        };
        Ok(out)
    }

    /// Removes every record; the audit log records the reset and goes on.
    pub async fn reset(&self) -> std::result::Result<(), S::Error> {
        self.change(|state, c| {
            let all = state.records();
            c.event("reset", "all", json!({"records": all.len()}));
            for r in all {
                c.remove(r);
            }
            Ok(())
        })
        .await
    }
}

/// Injected faults, applied before a request reaches the mock's handlers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Faults {
    /// Added to every request.
    pub latency_ms: u64,
    /// Share of requests answered 429 with `Retry-After: 1`, in percent.
    pub rate_429: f64,
    /// Share answered 503, in percent.
    pub rate_5xx: f64,
    /// Share whose connection is cut after the headers, in percent.
    pub drop: f64,
}

/// One kind of fault: its name in the harness's flags (`5xx=5%`) and in the control plane's
/// JSON, and the field it sets. A new kind is a field of [`Faults`], its effect in
/// [`faults_and_metrics`] and a row of [`FAULT_KINDS`].
#[derive(Debug)]
pub struct FaultKind {
    pub flag: &'static str,
    pub json: &'static str,
    pub unit: FaultUnit,
    get: fn(&Faults) -> f64,
    set: fn(&mut Faults, f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultUnit {
    /// A share of requests, 0 to 100 (`5%`); the shares together at most 100.
    Percent,
    /// A delay of up to a minute (`20ms`, `1s`).
    Millis,
}

pub const FAULT_KINDS: &[FaultKind] = &[
    FaultKind {
        flag: "5xx",
        json: "rate5xx",
        unit: FaultUnit::Percent,
        get: |f| f.rate_5xx,
        set: |f, v| f.rate_5xx = v,
    },
    FaultKind {
        flag: "429",
        json: "rate429",
        unit: FaultUnit::Percent,
        get: |f| f.rate_429,
        set: |f, v| f.rate_429 = v,
    },
    FaultKind {
        flag: "drop",
        json: "drop",
        unit: FaultUnit::Percent,
        get: |f| f.drop,
        set: |f, v| f.drop = v,
    },
    FaultKind {
        flag: "latency",
        json: "latencyMs",
        unit: FaultUnit::Millis,
        get: |f| f.latency_ms as f64,
        set: |f, v| f.latency_ms = v as u64,
    },
];

/// `2s`, `500ms` or plain seconds, up to an hour.
pub fn parse_duration(v: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("`{v}` is not a duration (2s, 500ms)");
    let (n, scale) = match v.strip_suffix("ms") {
        Some(ms) => (ms, 0.001),
        None => (v.strip_suffix('s').unwrap_or(v), 1.0),
    };
    let n: f64 = n.parse().map_err(|_| bad())?;
    if !(0.0..=3600.0).contains(&(n * scale)) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(n * scale))
}

impl Faults {
    /// Why these faults cannot be injected, if they cannot.
    pub fn problem(&self) -> Option<String> {
        for k in FAULT_KINDS {
            let (v, max) = ((k.get)(self), k.unit.max());
            if !(0.0..=max).contains(&v) {
                return Some(format!("{} is {v}, not within 0..={max}", k.json));
            }
        }
        let shares: f64 = FAULT_KINDS
            .iter()
            .filter(|k| k.unit == FaultUnit::Percent)
            .map(|k| (k.get)(self))
            .sum();
        (shares > 100.0).then(|| format!("the shares add up to {shares}%, more than 100%"))
    }

    fn check(&self) -> Result<()> {
        match self.problem() {
            Some(why) => Err(ScimError::bad_request(scim::ScimType::InvalidValue, why)),
            None => Ok(()),
        }
    }

    /// Sets the kind whose flag is `flag` from its text (`5%`, `20ms`); `Ok(false)` when no
    /// kind has that flag.
    pub fn set_flag(&mut self, flag: &str, text: &str) -> std::result::Result<bool, String> {
        let Some(kind) = FAULT_KINDS.iter().find(|k| k.flag == flag) else {
            return Ok(false);
        };
        let value = match kind.unit {
            FaultUnit::Percent => text
                .trim_end_matches('%')
                .parse::<f64>()
                .map_err(|_| format!("`{text}` is not a percentage"))?,
            FaultUnit::Millis => parse_duration(text)?.as_secs_f64() * 1000.0,
        };
        if !(0.0..=kind.unit.max()).contains(&value) {
            return Err(format!(
                "{flag}: `{text}` is not within 0..{}{}",
                kind.unit.max(),
                kind.unit.suffix()
            ));
        }
        (kind.set)(self, value);
        Ok(true)
    }

    /// Each fault that is on, as its flag writes it (`5xx=5%`).
    pub fn flags(&self) -> Vec<String> {
        FAULT_KINDS
            .iter()
            .filter(|k| (k.get)(self) > 0.0)
            .map(|k| format!("{}={}{}", k.flag, (k.get)(self), k.unit.suffix()))
            .collect()
    }
}

impl FaultUnit {
    /// How a value's unit is written after it.
    fn suffix(self) -> &'static str {
        match self {
            FaultUnit::Percent => "%",
            FaultUnit::Millis => "ms",
        }
    }

    fn max(self) -> f64 {
        match self {
            FaultUnit::Percent => 100.0,
            FaultUnit::Millis => 60_000.0,
        }
    }
}

/// A mock's switchable misbehaviours: each known quirk breaks one behaviour on purpose.
#[derive(Debug)]
pub struct Quirks {
    known: Vec<(&'static str, &'static str)>,
    on: RwLock<BTreeSet<String>>,
    /// What a stateful quirk remembers between requests; forgotten when the quirks are set.
    memory: Mutex<Value>,
}

impl Quirks {
    /// The quirks a mock knows, by name and what each breaks: its own and, when it serves
    /// SCIM, `quirks::named()`.
    pub fn new(known: impl IntoIterator<Item = (&'static str, &'static str)>) -> Quirks {
        Quirks {
            known: known.into_iter().collect(),
            on: RwLock::new(BTreeSet::new()),
            memory: Mutex::new(Value::Null),
        }
    }

    /// What a stateful quirk remembers between requests (`null` until it writes).
    pub fn memory(&self) -> std::sync::MutexGuard<'_, Value> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The quirks switched on now: one read of the lock for a whole request.
    pub fn active(&self) -> BTreeSet<String> {
        self.on.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn is_on(&self, name: &str) -> bool {
        self.on
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(name)
    }

    /// Switches exactly `names` on; an unknown name changes nothing and is refused.
    pub fn set(&self, names: &[String]) -> Result<()> {
        if let Some(bad) = names
            .iter()
            .find(|n| !self.known.iter().any(|(k, _)| k == n))
        {
            let known: Vec<&str> = self.known.iter().map(|(k, _)| *k).collect();
            return Err(ScimError::bad_request(
                scim::ScimType::InvalidValue,
                format!("unknown quirk '{bad}'; known: {}", known.join(", ")),
            ));
        }
        *self.on.write().unwrap_or_else(|p| p.into_inner()) = names.iter().cloned().collect();
        *self.memory() = Value::Null;
        Ok(())
    }

    fn describe(&self) -> Value {
        let on = self.on.read().unwrap_or_else(|p| p.into_inner());
        json!({
            "on": on.iter().collect::<Vec<_>>(),
            "known": self.known.iter().map(|(k, d)| json!({"name": k, "breaks": d})).collect::<Vec<_>>(),
        })
    }
}

/// (method, route, status) -> (requests, seconds spent).
type RequestTotals = BTreeMap<(String, String, u16), (u64, f64)>;

/// Request counts and latency sums by method, route and status.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<RequestTotals>,
}

/// Label sets kept; past them a new route counts as `other`, so that requests to made-up paths
/// cannot grow the metrics without bound.
const MAX_SERIES: usize = 500;

impl Metrics {
    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = (method.to_owned(), route.to_owned(), status);
        if m.len() >= MAX_SERIES && !m.contains_key(&key) {
            key.1 = "other".into();
        }
        let e = m.entry(key).or_default();
        e.0 += 1;
        e.1 += seconds;
    }

    /// Prometheus text exposition format, version 0.0.4. Written here rather than through
    /// prometheus-client, whose text is OpenMetrics: two counters and a few gauges, read back
    /// by a Prometheus parser in the tests.
    pub fn render(&self, prefix: &str, extra: &[(&str, &str, f64)]) -> String {
        use std::fmt::Write;
        let m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let labels = |method: &str, route: &str, status: u16| {
            format!(
                "method=\"{}\",route=\"{}\",status=\"{status}\"",
                label_value(method),
                label_value(route)
            )
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP {prefix}_http_requests_total Requests answered.\n# TYPE {prefix}_http_requests_total counter"
        );
        for ((method, route, status), (n, _)) in m.iter() {
            let labels = labels(method, route, *status);
            let _ = writeln!(out, "{prefix}_http_requests_total{{{labels}}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP {prefix}_http_request_seconds_sum Time spent answering.\n# TYPE {prefix}_http_request_seconds_sum counter"
        );
        for ((method, route, status), (_, s)) in m.iter() {
            let labels = labels(method, route, *status);
            let _ = writeln!(out, "{prefix}_http_request_seconds_sum{{{labels}}} {s}");
        }
        for (name, help, value) in extra {
            let _ = writeln!(
                out,
                "# HELP {prefix}_{name} {help}\n# TYPE {prefix}_{name} gauge\n{prefix}_{name} {value}"
            );
        }
        out
    }
}

/// A label value as the exposition format writes it: backslash, quote and line feed escaped.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The switches and counters every mock carries for its control plane.
#[derive(Debug)]
pub struct Controls {
    pub faults: RwLock<Faults>,
    pub quirks: Quirks,
    pub metrics: Metrics,
    /// Who may use `/_sim`: the mock's admin tokens and its `--sim-token`, if any.
    tokens: Vec<String>,
    /// Turns true when the mock stops: event-stream followers are let go, so no open stream
    /// keeps the store (and its folder lock) alive after the servers stopped.
    closing: tokio::sync::watch::Sender<bool>,
}

impl Controls {
    /// No faults, no quirk on; `quirks` are the names the mock knows; `tokens` open `/_sim`.
    pub fn new(quirks: Quirks, tokens: Vec<String>) -> Controls {
        Controls {
            faults: RwLock::new(Faults::default()),
            quirks,
            metrics: Metrics::default(),
            tokens,
            closing: tokio::sync::watch::channel(false).0,
        }
    }

    /// Ends every event stream; call before stopping the servers.
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }
}

/// What a mock provides to the shared control plane.
pub trait Simulated: Send + Sync + std::fmt::Debug {
    /// Metric name prefix, e.g. `mock_space`.
    fn name(&self) -> &'static str;
    /// The prefix every path of the product's API starts with (`/api/http` for Space), left
    /// out of the metrics' route labels.
    fn api_prefix(&self) -> &'static str;
    fn audit(&self) -> &AuditLog;
    /// The mock's faults, quirks and metrics.
    fn controls(&self) -> &Controls;
    /// Gauges for `/metrics`: (name, help, value).
    fn gauges(&self) -> Vec<(&'static str, &'static str, f64)>;
    /// Removes every record (the audit log keeps going, with a `reset` event).
    fn reset(&self) -> BoxFuture<'_, Result<()>>;
    /// The answer to a request the `rate_429` fault refuses, in the product's own shape (the
    /// headers its clients' retry logic reads).
    fn rate_limited(&self) -> Response {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::RETRY_AFTER, "1")],
            Json(json!({"error": "rate-limited", "description": "injected fault: 429"})),
        )
            .into_response()
    }
}

type Sim = Arc<dyn Simulated>;

/// A mock's whole app: its own `api` with the control plane merged in, faults and metrics
/// around the API, and every path under `/_sim` (the mock's own `/_sim/permissions` too)
/// behind the control tokens, so no control route can be added without them.
pub fn native_app(api: Router, sim: Sim) -> Router {
    api.merge(control_router(sim.clone()))
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            faults_and_metrics,
        ))
        .layer(axum::middleware::from_fn_with_state(sim, control_access))
}

/// Whether a path is the control plane's. Routing matches the raw path exactly, so any other
/// spelling (`/_SIM`, `//_sim`, `/%5Fsim`) reaches no control route; refusing those too costs
/// nothing.
fn is_control_path(path: &str) -> bool {
    let path = path.trim_start_matches('/').to_ascii_lowercase();
    path == "_sim" || path.starts_with("_sim/") || path.starts_with("%5fsim")
}

/// Refuses a `/_sim` request without one of the control tokens (bearer, or SSWS as the IdP's
/// clients send it).
async fn control_access(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    if !is_control_path(req.uri().path()) {
        return next.run(req).await;
    }
    match scim::auth::credentials(req.headers(), &["Bearer", "SSWS"]) {
        Some(t) if scim::auth::is_one_of(&sim.controls().tokens, t) => next.run(req).await,
        presented => {
            let why = if presented.is_some() {
                "the control plane refused this token: use the server's admin token or its --sim-token"
            } else {
                "the control plane needs credentials: send 'Authorization: Bearer <admin token or --sim-token>'"
            };
            let mut resp = ScimError::new(401, None, why).into_response();
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"_sim\""),
            );
            resp
        }
    }
}

/// `/_sim/...`: health, reset, events (JSON page or server-sent events), verify, faults,
/// quirks and metrics. Serve it through [`native_app`], which locks it.
fn control_router<S: Clone + Send + Sync + 'static>(sim: Sim) -> Router<S> {
    Router::new()
        .route(
            "/_sim/health",
            get(|| async { Json(json!({"status": "ok"})) }),
        )
        .route("/_sim/reset", axum::routing::post(reset))
        .route("/_sim/events", get(events))
        .route("/_sim/events/verify", get(verify))
        .route("/_sim/faults", get(get_faults).put(put_faults))
        .route("/_sim/quirks", get(get_quirks).put(put_quirks))
        .route("/_sim/metrics", get(metrics))
        .with_state(sim)
}

async fn reset(State(sim): State<Sim>) -> Result<StatusCode> {
    sim.reset().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    #[serde(default)]
    after: u64,
    #[serde(default)]
    follow: bool,
    limit: Option<usize>,
}

/// Without `follow`: a JSON page of stored events. With it: server-sent events, stored ones
/// first, then live ones as they are applied.
async fn events(State(sim): State<Sim>, Query(q): Query<EventsQuery>) -> Result<Response> {
    let limit = q.limit.unwrap_or(1000).min(10_000);
    if !q.follow {
        let events = sim.audit().since(q.after, limit)?;
        return Ok(Json(json!({"events": events})).into_response());
    }
    // Subscribe before reading the backlog so nothing falls between the two.
    let live = sim.audit().subscribe();
    let backlog = sim.audit().since(q.after, usize::MAX)?;
    let last = backlog.last().map_or(q.after, |e| e.seq);
    let mut closing = sim.controls().closing.subscribe();
    let closed = async move {
        let _ = closing.wait_for(|c| *c).await;
    };
    let stream = futures::StreamExt::take_until(event_stream(backlog, live, last), closed);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn event_stream(
    backlog: Vec<AuditEvent>,
    live: broadcast::Receiver<AuditEvent>,
    last: u64,
) -> impl Stream<Item = std::result::Result<SseEvent, Infallible>> {
    let to_sse = |e: &AuditEvent| {
        SseEvent::default()
            .id(e.seq.to_string())
            .event(e.kind.clone())
            .data(serde_json::to_string(e).unwrap_or_default())
    };
    let stored = futures::stream::iter(backlog.iter().map(to_sse).map(Ok).collect::<Vec<_>>());
    let following = futures::stream::unfold((live, last), move |(mut rx, last)| async move {
        loop {
            match rx.recv().await {
                Ok(e) if e.seq <= last => continue,
                Ok(e) => {
                    let seq = e.seq;
                    return Some((Ok(to_sse(&e)), (rx, seq)));
                }
                // A subscriber too slow to keep up is told so and ends; it resumes with `after`.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let warn = SseEvent::default()
                        .event("lagged")
                        .data(format!("{{\"resumeAfter\":{last}}}"));
                    return Some((Ok(warn), (rx, u64::MAX)));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    futures::StreamExt::chain(stored, following)
}

async fn verify(State(sim): State<Sim>) -> Result<Json<Value>> {
    Ok(Json(sim.audit().verify()?))
}

async fn get_faults(State(sim): State<Sim>) -> Json<Faults> {
    Json(
        sim.controls()
            .faults
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
    )
}

async fn put_faults(State(sim): State<Sim>, body: axum::body::Bytes) -> Result<Json<Faults>> {
    let faults: Faults = serde_json::from_slice(&body).map_err(|e| {
        ScimError::bad_request(scim::ScimType::InvalidSyntax, format!("bad faults: {e}"))
    })?;
    faults.check()?;
    *sim.controls()
        .faults
        .write()
        .unwrap_or_else(|p| p.into_inner()) = faults.clone();
    Ok(Json(faults))
}

async fn get_quirks(State(sim): State<Sim>) -> Json<Value> {
    Json(sim.controls().quirks.describe())
}

async fn put_quirks(State(sim): State<Sim>, body: axum::body::Bytes) -> Result<Json<Value>> {
    let names: Vec<String> = serde_json::from_slice(&body).map_err(|e| {
        ScimError::bad_request(
            scim::ScimType::InvalidSyntax,
            format!("quirks are a JSON array of names: {e}"),
        )
    })?;
    sim.controls().quirks.set(&names)?;
    Ok(Json(sim.controls().quirks.describe()))
}

async fn metrics(State(sim): State<Sim>) -> impl IntoResponse {
    let gauges = sim.gauges();
    let extra: Vec<(&str, &str, f64)> = gauges.iter().map(|(a, b, c)| (*a, *b, *c)).collect();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        sim.controls().metrics.render(sim.name(), &extra),
    )
}

/// Middleware for everything outside `/_sim`: applies the injected faults and records metrics.
pub async fn faults_and_metrics(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = route_label(sim.api_prefix(), req.uri().path());
    if route == "/_sim" {
        return next.run(req).await;
    }
    let faults = sim
        .controls()
        .faults
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    let roll = rand::random::<f64>() * 100.0;
    let resp = if roll < faults.rate_429 {
        sim.rate_limited()
    } else if roll < faults.rate_429 + faults.rate_5xx {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "unavailable", "description": "injected fault: 503"})),
        )
            .into_response()
    } else if roll < faults.rate_429 + faults.rate_5xx + faults.drop {
        // Headers go out, then the body fails: the client sees the connection cut mid-answer.
        let cut = futures::stream::once(async {
            Err::<axum::body::Bytes, _>(std::io::Error::other("injected fault: dropped"))
        });
        Response::new(Body::from_stream(cut))
    } else {
        next.run(req).await
    };
    sim.controls().metrics.record(
        &method,
        &route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// A low-cardinality label for a path: its first segment after the API's `prefix`, never an
/// id.
fn route_label(prefix: &str, path: &str) -> String {
    let path = path.strip_prefix(prefix).unwrap_or(path);
    let mut parts = path.split('/').filter(|s| !s.is_empty());
    match parts.next() {
        Some("_sim") => "/_sim".into(),
        Some(first) => format!("/{first}"),
        None => "/".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> (sled::Db, AuditLog) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let log = AuditLog::open(tree).unwrap();
        (db, log)
    }

    fn append(db: &sled::Db, log: &AuditLog, n: usize) {
        let tree = db.open_tree("t").unwrap();
        for i in 0..n {
            let mut writes = TreeWrites::default();
            let e = log
                .append(
                    &mut writes,
                    None,
                    "thing.changed",
                    &format!("s{i}"),
                    json!({"i": i}),
                )
                .unwrap();
            writes.apply(&tree).unwrap();
            log.published(vec![e]);
        }
    }

    /// Logs written before the digest stopped copying `data` must still verify.
    #[test]
    fn the_digest_hashes_the_array_it_always_hashed() {
        let event = AuditEvent {
            seq: 7,
            applied: "2026-12-05T00:00:00.000000Z".into(),
            kind: "user.created".into(),
            subject: "u1".into(),
            data: json!({"b": [1, "two"], "a": {"c": null}}),
            prev: "00ab".into(),
            hash: String::new(),
        };
        let body = json!([
            event.seq,
            event.applied,
            event.kind,
            event.subject,
            event.data,
            event.prev
        ]);
        let old: String = Sha256::digest(body.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(event.digest(), old);
    }

    #[test]
    fn events_of_one_batch_chain_one_after_another() {
        let (db, log) = log();
        append(&db, &log, 1);
        let mut writes = TreeWrites::default();
        let first = log.append(&mut writes, None, "a", "s", json!({})).unwrap();
        let second = log
            .append(&mut writes, Some(&first), "b", "s", json!({}))
            .unwrap();
        writes.apply(&db.open_tree("t").unwrap()).unwrap();
        log.published(vec![first, second]);
        let kinds: Vec<String> = log
            .since(0, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["thing.changed", "a", "b"]);
        assert_eq!(log.verify().unwrap()["valid"], true);
    }

    #[test]
    fn chain_verifies_and_reopens_at_its_head() {
        let (db, log) = log();
        append(&db, &log, 5);
        assert_eq!(log.verify().unwrap()["valid"], true);
        assert_eq!(log.verify().unwrap()["events"], 5);
        let reopened = AuditLog::open(db.open_tree("t").unwrap()).unwrap();
        append(&db, &reopened, 1);
        let v = reopened.verify().unwrap();
        assert_eq!(
            (v["valid"].clone(), v["events"].clone()),
            (json!(true), json!(6))
        );
        assert_eq!(reopened.since(4, 10).unwrap().len(), 2);
    }

    #[test]
    fn tampering_is_found_at_the_changed_event() {
        let (db, log) = log();
        append(&db, &log, 4);
        let tree = db.open_tree("t").unwrap();
        let mut e: AuditEvent =
            serde_json::from_slice(&tree.get(event_key(3)).unwrap().unwrap()).unwrap();
        e.data = json!({"i": 99});
        tree.insert(event_key(3), serde_json::to_vec(&e).unwrap())
            .unwrap();
        let v = log.verify().unwrap();
        assert_eq!(v["valid"], false);
        assert_eq!(v["brokenAt"], 3);
        tree.remove(event_key(3)).unwrap();
        assert_eq!(log.verify().unwrap()["brokenAt"], 4);
    }

    #[test]
    fn faults_and_quirks_refuse_nonsense() {
        let bad = Faults {
            rate_5xx: 101.0,
            ..Default::default()
        };
        assert!(bad.check().is_err());
        let q = Quirks::new([("no-location", "Location header on create")]);
        assert!(q.set(&["nope".into()]).is_err());
        assert!(!q.is_on("no-location"));
        q.set(&["no-location".into()]).unwrap();
        assert!(q.is_on("no-location"));
    }

    #[test]
    fn metrics_parse_whatever_the_path_and_stop_growing() {
        let m = Metrics::default();
        m.record("GET", "/we\"ird\\\npath", 404, 0.5);
        for i in 0..MAX_SERIES + 50 {
            m.record("GET", &format!("/made-up-{i}"), 404, 0.001);
        }
        let text = m.render("mock_x", &[("up", "Up.", 1.0)]);
        let scrape =
            prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
        let routes: BTreeSet<&str> = scrape
            .samples
            .iter()
            .filter_map(|s| s.labels.get("route"))
            .collect();
        // Every line a sample (a raw quote or line feed would have cut one short); the
        // parser keeps the value as written.
        let lines = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(scrape.samples.len(), lines, "{text}");
        assert!(routes.contains(r#"/we\"ird\\\npath"#), "{text}");
        assert!(routes.contains("other"));
        assert_eq!(
            routes.len(),
            MAX_SERIES + 1,
            "the made-up paths past the cap share one label"
        );
    }

    #[test]
    fn route_labels_stay_coarse() {
        assert_eq!(
            route_label("/api/http", "/api/http/team-directory/profiles/id:1"),
            "/team-directory"
        );
        assert_eq!(route_label("/app/rest", "/app/rest/users/id:3"), "/users");
        assert_eq!(route_label("/api/v1", "/_sim/events"), "/_sim");
        assert_eq!(route_label("/api/v1", "/oauth2/v1/token"), "/oauth2");
    }
}
