//! The provisioning engine: one dispatcher per app drains its outbox. Entries that share a user
//! or group go one at a time in outbox order, except membership changes of different users in
//! one group; the others go concurrently. An entry leaves the
//! outbox only when the target acknowledged it; failures are retried with exponential backoff
//! and jitter (or after the target's `Retry-After`), then parked. A restart finds the outbox
//! as it was and resumes; every operation can be replayed without harm (look-up before create,
//! 404 on delete counts as done, member removal by value).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use scim::oauth::TokenSource;
use scim::tls::ClientTls;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

use crate::dialect::{Delivered, Failure, Wire};
use crate::model::{
    app_target, group_target, now_micros, system_actor, user_target, Connection, Entry, Link,
    OAuthConnection, Op, Org, Record,
};
use crate::Idp;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Entries in flight per app.
    pub concurrency: usize,
    /// Attempts before an entry is parked.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub request_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            concurrency: 32,
            max_attempts: 10,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Outbox entries a dispatcher looks at per round: bounds the work per completion when a
/// backlog builds up. Entries further back wait until earlier ones finish.
const WINDOW: usize = 4096;

/// Counters since start, for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub parked: AtomicU64,
    pub requests: AtomicU64,
    pub latency_micros_sum: AtomicU64,
    pub latency_micros_max: AtomicU64,
}

#[derive(Debug)]
pub struct Engine {
    pub config: EngineConfig,
    client: reqwest::Client,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    pub stats: Stats,
    /// Per app with an OAuth connection: its client, and the tokens fetched for it.
    token_sources: Mutex<HashMap<String, (OAuthConnection, Arc<TokenSource>)>>,
}

impl Engine {
    pub fn new(config: EngineConfig, tls: &ClientTls) -> Result<Engine, crate::LaunchError> {
        let client = tls
            .builder()?
            .pool_max_idle_per_host(config.concurrency.max(1) * 2)
            .build()?;
        Ok(Engine {
            config,
            client,
            wakers: Mutex::new(HashMap::new()),
            stop: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
            stats: Stats::default(),
            token_sources: Mutex::new(HashMap::new()),
        })
    }

    /// The bearer token for `app`'s connection: its static token, or an OAuth access token
    /// (fetched when there is none yet or it is about to expire).
    async fn bearer(&self, app: &str, conn: &Connection) -> Result<String, Failure> {
        let Some(oauth) = &conn.oauth else {
            return Ok(conn.token.clone());
        };
        let source = {
            let mut sources = self.token_sources.lock().unwrap_or_else(|p| p.into_inner());
            match sources.get(app).filter(|(c, _)| c == oauth) {
                Some((_, s)) => s.clone(),
                None => {
                    let credentials = scim::oauth::Credentials {
                        token_url: oauth.token_url.clone(),
                        client_id: oauth.client_id.clone(),
                        auth: scim::oauth::ClientAuth::SecretBasic(oauth.client_secret.clone()),
                        scope: None,
                    };
                    let s = TokenSource::new(credentials, self.client.clone());
                    sources.insert(app.to_owned(), (oauth.clone(), s.clone()));
                    s
                }
            }
        };
        source.bearer().await.map_err(|e| Failure::Retry {
            reason: format!("OAuth: {e}"),
            after: None,
        })
    }

    async fn forget_token(&self, app: &str) {
        let source = {
            let sources = self.token_sources.lock().unwrap_or_else(|p| p.into_inner());
            sources.get(app).map(|(_, s)| s.clone())
        };
        if let Some(s) = source {
            s.forget().await;
        }
    }

    /// Stops every dispatcher; entries in flight stay in the outbox for the next start.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let exp = self
            .config
            .backoff_base
            .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1)))
            .min(self.config.backoff_cap);
        // Equal jitter: half fixed, half random, so retries of a burst spread out.
        exp / 2 + exp.mul_f64(rand::random::<f64>() / 2.0)
    }
}

/// Makes sure each app has a running dispatcher and tells it there is work.
pub fn wake(idp: &Arc<Idp>, apps: impl IntoIterator<Item = String>) {
    if *idp.engine.stop.borrow() {
        return;
    }
    let mut wakers = idp.engine.wakers.lock().unwrap_or_else(|p| p.into_inner());
    for app in apps {
        let waker = wakers.entry(app.clone()).or_insert_with(|| {
            let waker = Arc::new(Notify::new());
            let task = tokio::spawn(dispatch(idp.clone(), app, waker.clone()));
            idp.engine
                .tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(task);
            waker
        });
        waker.notify_one();
    }
}

/// Starts a dispatcher for every app that provisions or has work left.
pub fn start(idp: &Arc<Idp>) {
    let apps: Vec<String> = {
        let org = idp.store.read();
        org.apps
            .values()
            .filter(|a| a.provisioning() || org.app_outbox(&a.id).next().is_some())
            .map(|a| a.id.clone())
            .collect()
    };
    wake(idp, apps);
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// What earlier or running entries hold: subjects held alone and those held shared.
#[derive(Default)]
struct Held<'a> {
    alone: HashSet<&'a str>,
    shared: HashSet<&'a str>,
}

impl<'a> Held<'a> {
    fn admits(&self, e: &Entry) -> bool {
        e.subjects
            .iter()
            .all(|s| !self.alone.contains(s.as_str()) && !self.shared.contains(s.as_str()))
            && e.shared.iter().all(|s| !self.alone.contains(s.as_str()))
    }

    fn hold(&mut self, e: &'a Entry) {
        self.alone.extend(e.subjects.iter().map(String::as_str));
        self.shared.extend(e.shared.iter().map(String::as_str));
    }
}

/// Entries that may start now, and when the next held-back one falls due. The scan stops once
/// every free slot is taken: a completion frees a slot and starts the next scan.
fn pick(
    org: &Org,
    app: &str,
    running: &HashMap<u64, Entry>,
    slots: usize,
) -> (Vec<Entry>, Option<i64>) {
    let now = now_ms();
    let mut held = Held::default();
    running.values().for_each(|e| held.hold(e));
    let mut picked = Vec::new();
    let mut next_due: Option<i64> = None;
    if slots == 0 {
        return (picked, next_due);
    }
    for e in org.app_outbox(app).take(WINDOW) {
        if running.contains_key(&e.seq) {
            continue;
        }
        if !e.parked && held.admits(e) {
            if e.not_before > now {
                next_due = Some(next_due.map_or(e.not_before, |d| d.min(e.not_before)));
            } else {
                picked.push(e.clone());
                if picked.len() == slots {
                    break;
                }
            }
        }
        held.hold(e);
    }
    (picked, next_due)
}

async fn dispatch(idp: Arc<Idp>, app: String, waker: Arc<Notify>) {
    let mut stop = idp.engine.stop.subscribe();
    let mut tasks: JoinSet<Entry> = JoinSet::new();
    let mut running: HashMap<u64, Entry> = HashMap::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let (picked, next_due) = {
            let org = idp.store.read();
            let provisioning = org.apps.get(&app).is_some_and(|a| a.provisioning());
            if !org.apps.contains_key(&app) && tasks.is_empty() {
                // Deleted: forget the waker under its lock, so a later wake starts afresh.
                let mut wakers = idp.engine.wakers.lock().unwrap_or_else(|p| p.into_inner());
                wakers.remove(&app);
                return;
            }
            if provisioning {
                let slots = idp.engine.config.concurrency.saturating_sub(running.len());
                pick(&org, &app, &running, slots)
            } else {
                (Vec::new(), None)
            }
        };
        for entry in picked {
            running.insert(entry.seq, entry.clone());
            tasks.spawn(run_entry(idp.clone(), entry));
        }
        let sleep = match next_due {
            Some(at) => Duration::from_millis((at - now_ms()).max(0) as u64),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = waker.notified() => {}
            done = tasks.join_next(), if !tasks.is_empty() => {
                if let Some(Ok(entry)) = done {
                    running.remove(&entry.seq);
                } else {
                    // A delivery task panicked or was cancelled: start again from the outbox.
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    running.clear();
                }
            }
            _ = tokio::time::sleep(sleep) => {}
            _ = stop.changed() => break,
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

async fn run_entry(idp: Arc<Idp>, entry: Entry) -> Entry {
    let app = idp.store.read().apps.get(&entry.app).cloned();
    let result = match app
        .as_ref()
        .and_then(|a| a.connection.clone().map(|c| (a, c)))
    {
        None => Err(Failure::Retry {
            reason: "the app has no provisioning connection".into(),
            after: None,
        }),
        Some((app, conn)) => match idp.engine.bearer(&entry.app, &conn).await {
            Err(e) => Err(e),
            Ok(token) => {
                let mut wire = Wire {
                    client: &idp.engine.client,
                    base_url: &conn.base_url,
                    token: &token,
                    dialect: app.dialect,
                    timeout: idp.engine.config.request_timeout,
                    requests: 0,
                    unauthorized: false,
                };
                let link = |id: &str| idp.store.read().link(&entry.app, id).map(str::to_owned);
                let r = wire.deliver(&entry.op, &link).await;
                idp.engine
                    .stats
                    .requests
                    .fetch_add(u64::from(wire.requests), Ordering::Relaxed);
                match r {
                    // A refused OAuth token is fetched again on the retry, not parked.
                    Err(Failure::Permanent(reason))
                        if wire.unauthorized && conn.oauth.is_some() =>
                    {
                        idp.engine.forget_token(&entry.app).await;
                        Err(Failure::Retry {
                            reason,
                            after: None,
                        })
                    }
                    other => other,
                }
            }
        },
    };
    if let Err(e) = record(&idp, &entry, result) {
        tracing::warn!(
            "outbox entry {} of app {}: cannot record the outcome: {e}",
            entry.seq,
            entry.app
        );
    }
    entry
}

fn message(op: &Op) -> &'static str {
    match op {
        Op::CreateUser { .. } => "Push new user to external application",
        Op::UpdateUser { .. } => "Push user profile update to external application",
        Op::Deactivate { .. } => "Deactivate user in external application",
        Op::Reactivate { .. } => "Reactivate user in external application",
        Op::DeleteUser { .. } => "Delete user in external application",
        Op::PushGroup { .. } => "Push new group to external application",
        Op::RenameGroup { .. } => "Push group name update to external application",
        Op::Members { .. } => "Push group memberships to external application",
        Op::DeleteGroup { .. } => "Delete group in external application",
        Op::SetManager { .. } => "Push user manager to external application",
    }
}

fn elapsed_micros(accepted: &str, acknowledged: &str) -> u64 {
    match (
        DateTime::parse_from_rfc3339(accepted),
        DateTime::parse_from_rfc3339(acknowledged),
    ) {
        (Ok(a), Ok(b)) => b
            .signed_duration_since(a)
            .num_microseconds()
            .unwrap_or(0)
            .max(0) as u64,
        _ => 0,
    }
}

/// Writes a delivery's outcome: done entries leave the outbox with their links, failed ones
/// are rescheduled or parked. Every outcome but a retry goes to the System Log. Written without
/// waiting for the disk, even when durable: a crash that loses an outcome leaves its entry in the
/// outbox, and the entry is delivered again, which is harmless.
fn record(
    idp: &Idp,
    entry: &Entry,
    result: Result<Delivered, Failure>,
) -> Result<(), crate::error::OktaError> {
    let engine = &idp.engine;
    let acknowledged = now_micros();
    tracing::debug!(
        "app {} entry {}: {} -> {}",
        entry.app,
        entry.seq,
        serde_json::to_string(&entry.op).unwrap_or_default(),
        match &result {
            Ok(_) => "delivered".to_owned(),
            Err(Failure::Retry { reason, .. }) => format!("retry: {reason}"),
            Err(Failure::Permanent(reason)) => format!("permanent: {reason}"),
        }
    );
    let stats = &engine.stats;
    idp.store.change_replayable(|org, c| {
        // Gone: the app was deleted or an operator dropped the entry meanwhile.
        let Some(current) = org.outbox.get(&(entry.app.clone(), entry.seq)) else {
            return Ok(());
        };
        let app = org.apps.get(&entry.app);
        let subject = entry.op.subject();
        let mut targets: Vec<Value> = app.map(app_target).into_iter().collect();
        targets.extend(
            org.users
                .get(subject)
                .map(user_target)
                .or_else(|| org.groups.get(subject).map(group_target)),
        );
        let attempts = current.attempts + 1;
        let mut debug = json!({"seq": entry.seq, "accepted": entry.accepted,
                "attempts": attempts, "op": entry.op});
        let (outcome, reason) = match &result {
            Ok(done) => {
                c.remove(Record::Entry(current.clone()));
                // Most deliveries name links the IdP already has: rewriting them costs a write.
                let new = |(id, scim_id): &&(String, String)| {
                    org.link(&entry.app, id) != Some(scim_id.as_str())
                };
                for (id, scim_id) in done.links.iter().filter(new) {
                    c.put(Record::Link(Link {
                        app: entry.app.clone(),
                        id: id.clone(),
                        scim_id: scim_id.clone(),
                    }));
                }
                for id in &done.unlinks {
                    if let Some(scim_id) = org.link(&entry.app, id) {
                        c.remove(Record::Link(Link {
                            app: entry.app.clone(),
                            id: id.clone(),
                            scim_id: scim_id.to_owned(),
                        }));
                    }
                }
                let micros = elapsed_micros(&entry.accepted, &acknowledged);
                stats.delivered.fetch_add(1, Ordering::Relaxed);
                stats
                    .latency_micros_sum
                    .fetch_add(micros, Ordering::Relaxed);
                stats
                    .latency_micros_max
                    .fetch_max(micros, Ordering::Relaxed);
                debug["acknowledged"] = json!(acknowledged);
                debug["latencyMs"] = json!(micros as f64 / 1000.0);
                debug["requests"] = json!(done.requests);
                if let Some((_, scim_id)) = done.links.first() {
                    debug["scimId"] = json!(scim_id);
                }
                ("SUCCESS", None)
            }
            Err(failure) => {
                stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                let (reason, after, permanent) = match failure {
                    Failure::Retry { reason, after } => (reason, *after, false),
                    Failure::Permanent(reason) => (reason, None, true),
                };
                let mut next = current.clone();
                next.attempts = attempts;
                next.last_error = Some(reason.clone());
                if permanent || attempts >= engine.config.max_attempts {
                    next.parked = true;
                    stats.parked.fetch_add(1, Ordering::Relaxed);
                } else {
                    let wait = after.unwrap_or_else(|| engine.backoff(attempts));
                    next.not_before = now_ms() + wait.as_millis() as i64;
                }
                let parked = next.parked;
                c.put(Record::Entry(next));
                if !parked {
                    return Ok(());
                }
                ("FAILURE", Some(reason.clone()))
            }
        };
        c.event(
            entry.op.event_type(),
            subject,
            json!({"actor": system_actor(), "displayMessage": message(&entry.op),
                    "target": targets, "outcome": {"result": outcome, "reason": reason},
                    "debugContext": {"debugData": debug}}),
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, subjects: &[&str], shared: &[&str]) -> Entry {
        Entry {
            app: "app".into(),
            seq,
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            shared: shared.iter().map(|s| s.to_string()).collect(),
            op: Op::DeleteUser { user: "u".into() },
            accepted: String::new(),
            attempts: 0,
            not_before: 0,
            last_error: None,
            parked: false,
        }
    }

    fn picked(org: &Org, running: &[u64], slots: usize) -> Vec<u64> {
        let running: HashMap<u64, Entry> = running
            .iter()
            .filter_map(|s| org.outbox.get(&("app".to_owned(), *s)).cloned())
            .map(|e| (e.seq, e))
            .collect();
        pick(org, "app", &running, slots)
            .0
            .iter()
            .map(|e| e.seq)
            .collect()
    }

    #[test]
    fn members_of_one_group_go_together_but_wait_for_the_group_itself() {
        use mockkit::sim::RecordState;
        let mut org = Org::default();
        for e in [
            entry(1, &["g"], &[]),     // push the group
            entry(2, &["u1"], &["g"]), // u1 joins
            entry(3, &["u2"], &["g"]), // u2 joins
            entry(4, &["g"], &[]),     // rename
            entry(5, &["u3"], &["g"]), // u3 joins after the rename
            entry(6, &["u1"], &["g"]), // u1 leaves
            entry(7, &["u9"], &[]),    // unrelated
        ] {
            org.put(Record::Entry(e));
        }
        assert_eq!(picked(&org, &[], 8), vec![1, 7]);
        assert_eq!(picked(&org, &[1], 8), vec![7]);
        org.remove(&Record::Entry(entry(1, &["g"], &[])));
        assert_eq!(picked(&org, &[], 8), vec![2, 3, 7]);
        assert_eq!(
            picked(&org, &[], 2),
            vec![2, 3],
            "stops once the slots are full"
        );
        assert_eq!(picked(&org, &[2], 8), vec![3, 7]);
        org.remove(&Record::Entry(entry(2, &["u1"], &["g"])));
        org.remove(&Record::Entry(entry(3, &["u2"], &["g"])));
        assert_eq!(picked(&org, &[], 8), vec![4, 7]);
        org.remove(&Record::Entry(entry(4, &["g"], &[])));
        assert_eq!(picked(&org, &[], 8), vec![5, 6, 7]);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stops_at_the_cap() {
        let engine = Engine::new(
            EngineConfig {
                backoff_base: Duration::from_millis(100),
                backoff_cap: Duration::from_millis(1000),
                ..EngineConfig::default()
            },
            &ClientTls::default(),
        )
        .unwrap();
        for attempt in 1..12u32 {
            let full =
                Duration::from_millis(100 * 2u64.pow(attempt - 1)).min(Duration::from_millis(1000));
            let d = engine.backoff(attempt);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d:?} vs {full:?}"
            );
        }
    }
}
