//! Which lifecycle events each target has applied, and when, read from the targets' audit
//! event streams (`/_sim/events?follow=true`, server-sent events). Each target's stream is
//! folded into a small model of its people (account, active, groups); an event counts as
//! applied on a target at the `applied` stamp of the first audit event after which the model
//! shows the event's outcome. When a later event of the same person is applied first, the
//! earlier one is applied with it (superseded): the target then reflects both.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::DateTime;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;

use super::plan::Kind;
use crate::mock_target::{AuditChange, TargetName};

fn slot(t: TargetName) -> usize {
    t.index()
}

/// The outcome an event must show on a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Active and in the group.
    Joined(String),
    /// In `to` and no longer in `from`.
    Moved { from: String, to: String },
    /// Deactivated (Space); out of every group (TeamCity, which has no disabled flag).
    Left,
}

/// One event being followed. Times are microseconds since the Unix epoch, one clock for the
/// generator and the embedded servers.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub kind: Kind,
    /// The fault phase it was sent in; `None` for the set-up population.
    pub phase: Option<usize>,
    pub user: String,
    /// When the plan had it due, relative to the run's start.
    pub due_micros: u64,
    pub accepted: Option<i64>,
    /// Per target, in [`TargetName::all`] order.
    pub applied: [Option<i64>; TargetName::COUNT],
    pub superseded: [bool; TargetName::COUNT],
    /// The IdP refused it or could not be reached: it never entered the system.
    pub refused: bool,
    outcome: Outcome,
}

impl Tracked {
    pub fn done(&self) -> bool {
        self.refused || (self.accepted.is_some() && self.applied.iter().all(Option::is_some))
    }

    /// Microseconds from the IdP's acceptance to the target's apply (0 if the target's stamp
    /// came first: both stamps are read at microsecond resolution on one clock).
    pub fn latency_micros(&self, target: TargetName) -> Option<u64> {
        let (a, b) = (self.accepted?, self.applied[slot(target)]?);
        Some((b - a).max(0) as u64)
    }

    /// Until every target reflected it.
    pub fn overall_micros(&self) -> Option<u64> {
        TargetName::all()
            .map(|t| self.latency_micros(t))
            .collect::<Option<Vec<u64>>>()
            .and_then(|v| v.into_iter().max())
    }

    pub fn superseded_anywhere(&self) -> bool {
        self.superseded.iter().any(|s| *s)
    }
}

#[derive(Debug, Default, Clone)]
struct Person {
    active: bool,
    groups: BTreeSet<String>,
    /// Has been in a group: on TeamCity, only then does an empty list mean the person left.
    grouped: bool,
}

/// One target as its audit stream tells it.
#[derive(Debug, Default)]
struct Model {
    /// The target's subject id -> username.
    names: HashMap<String, String>,
    /// The target's group (team) id -> name.
    groups: HashMap<String, String>,
    people: HashMap<String, Person>,
    last_seq: u64,
}

impl Model {
    /// Folds one audit event in; returns the username it concerned, if it was about a person.
    fn apply(&mut self, target: TargetName, e: &Value) -> Option<String> {
        let kind = e["kind"].as_str()?;
        let subject = e["subject"].as_str()?;
        let data = &e["data"];
        let name_of = |v: &Value| v.as_str().map(str::to_owned);
        match target.mock().audit_change(kind)? {
            AuditChange::GroupNamed => {
                self.groups
                    .insert(subject.to_owned(), name_of(&data["name"])?);
                None
            }
            AuditChange::Created => {
                let user = name_of(&data["username"])?;
                self.names.insert(subject.to_owned(), user.clone());
                self.people.insert(
                    user.clone(),
                    Person {
                        active: true,
                        ..Person::default()
                    },
                );
                Some(user)
            }
            AuditChange::Deleted => {
                let user = self.names.get(subject)?.clone();
                self.people.remove(&user);
                Some(user)
            }
            AuditChange::Active(active) => {
                let user = self.names.get(subject)?.clone();
                self.people.get_mut(&user)?.active = active;
                Some(user)
            }
            AuditChange::Membership(joined) => {
                let user = self.names.get(subject)?.clone();
                let team = self.groups.get(data["team"].as_str()?)?.clone();
                let person = self.people.get_mut(&user)?;
                if joined {
                    person.groups.insert(team);
                    person.grouped = true;
                } else {
                    person.groups.remove(&team);
                }
                Some(user)
            }
            AuditChange::Groups => {
                let user = self.names.get(subject)?.clone();
                let keys = |field: &str| -> Vec<String> {
                    data[field]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .filter_map(|k| self.groups.get(k).cloned())
                        .collect()
                };
                let (added, removed) = (keys("added"), keys("removed"));
                let person = self.people.get_mut(&user)?;
                person.grouped |= !added.is_empty();
                person.groups.extend(added);
                for g in removed {
                    person.groups.remove(&g);
                }
                Some(user)
            }
        }
    }

    /// Whether the model shows `outcome` for `user`; `polled` people are read from the SCIM
    /// connectors, where a leaver is inactive on both targets.
    fn shows(&self, target: TargetName, user: &str, outcome: &Outcome, polled: bool) -> bool {
        let Some(p) = self.people.get(user) else {
            return false;
        };
        match outcome {
            Outcome::Joined(g) => p.active && p.groups.contains(g),
            Outcome::Moved { from, to } => p.groups.contains(to) && !p.groups.contains(from),
            Outcome::Left if polled || target.mock().has_active_flag() => !p.active,
            Outcome::Left => p.grouped && p.groups.is_empty(),
        }
    }
}

/// Per target (in [`TargetName::all`] order): models, open and newest applied events.
#[derive(Debug, Default)]
struct Inner {
    models: [Model; TargetName::COUNT],
    events: Vec<Tracked>,
    /// Per target and user: the ids of events not yet applied there, oldest first.
    open: [HashMap<String, Vec<usize>>; TargetName::COUNT],
    /// Per target and user: the newest event applied there.
    newest_applied: [HashMap<String, usize>; TargetName::COUNT],
    /// Audit events that could not be read as JSON.
    unreadable: u64,
    watch: Watch,
}

/// How the targets are watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Watch {
    /// Their audit streams, at the targets' own stamps (the harness's clock too).
    #[default]
    Stream,
    /// Their audit streams, each event when it arrives (servers on another clock).
    StreamOnReceipt,
    /// Each person with an open event, read from the targets' SCIM connectors every so often:
    /// applied when a read first shows it.
    Poll,
}

/// The shared record of every followed event, fed by the streams (or polls) and the generator.
#[derive(Debug, Default)]
pub struct Tracker {
    inner: Mutex<Inner>,
}

pub fn micros_of(stamp: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(stamp)
        .ok()
        .map(|t| t.timestamp_micros())
}

pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl Tracker {
    pub fn new(watch: Watch) -> Tracker {
        Tracker {
            inner: Mutex::new(Inner {
                watch,
                ..Inner::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts following an event before it is sent, so an apply seen before the IdP's answer
    /// is not missed. Returns its id.
    pub fn expect(
        &self,
        kind: Kind,
        phase: Option<usize>,
        user: &str,
        due_micros: u64,
        outcome: Outcome,
    ) -> usize {
        let mut inner = self.lock();
        let id = inner.events.len();
        inner.events.push(Tracked {
            kind,
            phase,
            user: user.to_owned(),
            due_micros,
            accepted: None,
            applied: [None; TargetName::COUNT],
            superseded: [false; TargetName::COUNT],
            refused: false,
            outcome,
        });
        for open in inner.open.iter_mut() {
            open.entry(user.to_owned()).or_default().push(id);
        }
        id
    }

    pub fn accepted(&self, id: usize, at: i64) {
        if let Some(e) = self.lock().events.get_mut(id) {
            e.accepted = Some(at);
        }
    }

    /// The IdP did not take the event: stop waiting for it.
    pub fn refused(&self, id: usize) {
        let mut inner = self.lock();
        let Some(user) = inner.events.get(id).map(|e| e.user.clone()) else {
            return;
        };
        inner.events[id].refused = true;
        for open in inner.open.iter_mut() {
            if let Some(ids) = open.get_mut(&user) {
                ids.retain(|i| *i != id);
            }
        }
    }

    /// Folds one audit event of `target` in and marks what it completed.
    fn fold(&self, target: TargetName, event: &Value) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let s = slot(target);
        if let Some(seq) = event["seq"].as_u64() {
            inner.models[s].last_seq = inner.models[s].last_seq.max(seq);
        }
        let Some(user) = inner.models[s].apply(target, event) else {
            return;
        };
        let stamp = event["applied"].as_str().and_then(micros_of);
        let Some(at) = stamp.map(|at| match inner.watch {
            Watch::Stream => at,
            Watch::StreamOnReceipt | Watch::Poll => now_micros(),
        }) else {
            inner.unreadable += 1;
            return;
        };
        Self::mark(inner, target, &user, at);
    }

    /// A person as a poll of `target` read them at `at`: active, and the groups they are in.
    pub fn observe(&self, target: TargetName, user: &str, active: bool, groups: BTreeSet<String>) {
        let at = now_micros();
        let mut inner = self.lock();
        let person = inner.models[slot(target)]
            .people
            .entry(user.to_owned())
            .or_default();
        person.grouped |= !groups.is_empty();
        person.active = active;
        person.groups = groups;
        Self::mark(&mut inner, target, user, at);
    }

    /// The people with events not yet applied on `target`.
    pub fn open_users(&self, target: TargetName) -> Vec<String> {
        self.lock().open[slot(target)]
            .iter()
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(user, _)| user.clone())
            .collect()
    }

    /// Marks what `user`'s state on `target` now completes, or takes back, at `at`.
    fn mark(inner: &mut Inner, target: TargetName, user: &str, at: i64) {
        let s = slot(target);
        let Some(ids) = inner.open[s].get_mut(user) else {
            return;
        };
        let model = &inner.models[s];
        let events = &mut inner.events;
        let newest_applied = &mut inner.newest_applied[s];
        let shows = |outcome| model.shows(target, user, outcome, inner.watch == Watch::Poll);
        match ids.iter().rposition(|id| shows(&events[*id].outcome)) {
            Some(newest) => {
                newest_applied.insert(user.to_owned(), ids[newest]);
                for (i, id) in ids.drain(..=newest).enumerate() {
                    events[id].applied[s] = Some(at);
                    events[id].superseded[s] = i < newest;
                }
            }
            // A target can take back what it showed (a request that failed half-way rolled
            // back): the event is applied only once its outcome shows again, and stays.
            None if ids.is_empty() => {
                let Some(&id) = newest_applied.get(user) else {
                    return;
                };
                if !shows(&events[id].outcome) {
                    events[id].applied[s] = None;
                    newest_applied.remove(user);
                    ids.push(id);
                }
            }
            None => {}
        }
    }

    fn last_seq(&self, target: TargetName) -> u64 {
        self.lock().models[slot(target)].last_seq
    }

    pub fn snapshot(&self) -> Vec<Tracked> {
        self.lock().events.clone()
    }

    pub fn unreadable(&self) -> u64 {
        self.lock().unreadable
    }

    /// Events sent and not yet applied everywhere.
    pub fn in_flight(&self) -> usize {
        self.lock().events.iter().filter(|e| !e.done()).count()
    }

    /// For the progress line, over the measured events (the set-up population left out):
    /// how many were sent, how many are in flight, and the p99 (ms) of those applied.
    pub fn progress(&self) -> (usize, usize, f64) {
        let inner = self.lock();
        let mut h = super::report::Hist::new();
        let (mut sent, mut in_flight) = (0, 0);
        for e in inner.events.iter().filter(|e| e.phase.is_some()) {
            sent += 1;
            match e.overall_micros() {
                Some(m) => h.record(m),
                None if !e.done() => in_flight += 1,
                None => {}
            }
        }
        (sent, in_flight, h.summary().p99)
    }
}

/// Follows one target's audit stream until `stop` turns true, resuming after the last event
/// seen whenever the stream ends (a restarted target, a lagging subscriber).
pub async fn follow(
    tracker: Arc<Tracker>,
    client: reqwest::Client,
    target: TargetName,
    base: String,
    token: String,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let after = tracker.last_seq(target);
        let url = format!("{base}/_sim/events?follow=true&after={after}");
        let request = client.get(&url).bearer_auth(&token).send();
        let response = tokio::select! {
            r = request => r,
            _ = stop.changed() => return,
        };
        if let Ok(resp) = response {
            let mut events = std::pin::pin!(audit_events(resp));
            loop {
                let event = tokio::select! {
                    e = events.next() => e,
                    _ = stop.changed() => return,
                };
                let Some(event) = event else { break };
                tracker.fold(target, &event);
            }
        }
        // Down or restarting: try again shortly, from where the stream stopped.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Reads every person with an open event on `target` from its SCIM connector (`scim`, the
/// base URL) every `every`, until `stop` turns true. A read that fails (the target down) is
/// tried again at the next round.
pub async fn poll(
    tracker: Arc<Tracker>,
    client: reqwest::Client,
    target: TargetName,
    scim: String,
    bearer: crate::client::Bearer,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let users = tracker.open_users(target);
        let round = futures::stream::iter(users).for_each_concurrent(POLL_READS, |user| {
            let (tracker, client, scim, bearer) = (&tracker, &client, &scim, &bearer);
            async move {
                let Ok(token) = bearer.token().await else {
                    return;
                };
                if let Some((active, groups)) = read_person(client, scim, &token, &user).await {
                    tracker.observe(target, &user, active, groups);
                }
            }
        });
        tokio::select! {
            _ = round => {}
            _ = stop.changed() => return,
        }
    }
}

/// Whether the SCIM connector at `scim` lets `bearer` read its Users; why not, in one line.
pub async fn can_read(
    client: &reqwest::Client,
    scim: &str,
    bearer: &crate::client::Bearer,
) -> Result<(), String> {
    let token = bearer
        .token()
        .await
        .map_err(|e| format!("no access token for {scim}: {e}"))?;
    let resp = client
        .get(format!("{scim}/Users?count=1"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("cannot read {scim}/Users: {e}"))?;
    match resp.status().as_u16() {
        401 | 403 => Err(format!(
            "{scim} refused the credentials ({}); if it takes OAuth, give --oauth-token-url, \
             --client-id and a secret or key",
            resp.status()
        )),
        _ => Ok(()),
    }
}

/// Reads in flight per target and round.
const POLL_READS: usize = 16;

/// A SCIM User by `userName`: active, and the display names of its groups; `None` when it is
/// not there (yet) or the read failed.
async fn read_person(
    client: &reqwest::Client,
    scim: &str,
    token: &str,
    user: &str,
) -> Option<(bool, BTreeSet<String>)> {
    let filter = format!("userName eq \"{user}\"");
    let url = format!(
        "{scim}/Users?attributes=active,groups&filter={}",
        crate::encode(&filter)
    );
    let resp = client.get(&url).bearer_auth(token).send().await.ok()?;
    let found: Value = resp.error_for_status().ok()?.json().await.ok()?;
    let person = found["Resources"].as_array()?.first()?;
    let groups = person["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["display"].as_str().map(str::to_owned))
        .collect();
    Some((person["active"].as_bool().unwrap_or(true), groups))
}

/// The JSON in an SSE frame's `data:` lines; `None` for keep-alives and notices.
/// The audit events of an `/_sim/events?follow=true` answer, until it ends or breaks.
fn audit_events(resp: reqwest::Response) -> impl futures::Stream<Item = Value> {
    let chunks = futures::stream::unfold(resp, |mut r| async move {
        r.chunk().await.transpose().map(|chunk| (chunk, r))
    });
    audit_events_of(chunks)
}

/// Parsed by eventsource-stream; a stream error ends it (the caller reconnects). Frames that
/// are not an audit event (keep-alives, `lagged`) are skipped.
fn audit_events_of<B, E>(
    chunks: impl futures::Stream<Item = Result<B, E>>,
) -> impl futures::Stream<Item = Value>
where
    B: AsRef<[u8]>,
{
    use eventsource_stream::Eventsource;
    chunks
        .eventsource()
        .take_while(|e| std::future::ready(e.is_ok()))
        .filter_map(|e| {
            let event = e
                .ok()
                .and_then(|e| serde_json::from_str::<Value>(&e.data).ok());
            std::future::ready(event.filter(|v| v.get("seq").is_some()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock_target::space::SPACE;
    use crate::mock_target::teamcity::TEAMCITY;
    use serde_json::json;

    fn event(seq: u64, kind: &str, subject: &str, data: Value, at: &str) -> Value {
        json!({"seq": seq, "kind": kind, "subject": subject, "data": data,
               "applied": format!("2026-01-01T00:00:{at}Z")})
    }

    #[tokio::test]
    async fn sse_frames_yield_events_and_skip_the_rest() {
        // A name of two-byte letters split between chunks, CRLF line ends, a keep-alive and a
        // `lagged` notice between events.
        let text =
            "id: 3\r\nevent: x\r\ndata: {\"seq\":3,\"subject\":\"Žofia\"}\r\n\r\n:keep-alive\n\n\
                    event: lagged\ndata: {\"resumeAfter\":4}\n\ndata: {\"seq\":\n\
                    data: 5}\n\n";
        let bytes = text.as_bytes();
        let split = text.find('Ž').unwrap() + 1;
        let chunks = [&bytes[..split], &bytes[split..]]
            .map(|c| Ok::<_, std::convert::Infallible>(c.to_vec()));
        let events: Vec<Value> = audit_events_of(futures::stream::iter(chunks))
            .collect()
            .await;
        assert_eq!(
            events,
            vec![json!({"seq": 3, "subject": "Žofia"}), json!({"seq": 5})]
        );
    }

    #[test]
    fn a_move_is_applied_when_the_old_group_is_gone_on_each_target() {
        let t = Tracker::default();
        let join = t.expect(
            Kind::Joiner,
            Some(0),
            "ann",
            0,
            Outcome::Joined("Eng".into()),
        );
        t.accepted(join, micros_of("2026-01-01T00:00:00Z").unwrap());
        t.fold(
            SPACE,
            &event(1, "team.created", "t1", json!({"name": "Eng"}), "00"),
        );
        t.fold(
            SPACE,
            &event(2, "team.created", "t2", json!({"name": "Ops"}), "00"),
        );
        t.fold(
            SPACE,
            &event(3, "profile.created", "p1", json!({"username": "ann"}), "01"),
        );
        assert_eq!(t.snapshot()[join].applied[0], None, "not in the team yet");
        t.fold(
            SPACE,
            &event(4, "membership.created", "p1", json!({"team": "t1"}), "02"),
        );
        assert_eq!(t.snapshot()[join].latency_micros(SPACE), Some(2_000_000));
        let mv = t.expect(
            Kind::Mover,
            Some(0),
            "ann",
            0,
            Outcome::Moved {
                from: "Eng".into(),
                to: "Ops".into(),
            },
        );
        t.accepted(mv, micros_of("2026-01-01T00:00:03Z").unwrap());
        t.fold(
            SPACE,
            &event(5, "membership.created", "p1", json!({"team": "t2"}), "04"),
        );
        assert_eq!(t.snapshot()[mv].applied[0], None, "still in Eng");
        t.fold(
            SPACE,
            &event(6, "membership.deleted", "p1", json!({"team": "t1"}), "05"),
        );
        assert_eq!(t.snapshot()[mv].latency_micros(SPACE), Some(2_000_000));
        assert!(!t.snapshot()[mv].done(), "TeamCity has not applied it");
    }

    #[test]
    fn a_later_event_applied_first_supersedes_the_earlier() {
        let t = Tracker::default();
        t.fold(
            SPACE,
            &event(1, "team.created", "t1", json!({"name": "Eng"}), "00"),
        );
        let join = t.expect(Kind::Joiner, None, "bo", 0, Outcome::Joined("Eng".into()));
        let leave = t.expect(Kind::Leaver, None, "bo", 0, Outcome::Left);
        t.fold(
            SPACE,
            &event(2, "profile.created", "p7", json!({"username": "bo"}), "01"),
        );
        t.fold(
            SPACE,
            &event(3, "profile.deactivated", "p7", json!({}), "02"),
        );
        let seen = t.snapshot();
        let at = micros_of("2026-01-01T00:00:02Z");
        assert_eq!((seen[join].applied[0], seen[leave].applied[0]), (at, at));
        assert!(seen[join].superseded[0] && !seen[leave].superseded[0]);
    }

    #[test]
    fn an_outcome_taken_back_reopens_the_event_until_it_shows_again() {
        let t = Tracker::default();
        let join = t.expect(Kind::Joiner, None, "bo", 0, Outcome::Joined("Eng".into()));
        for e in [
            event(1, "group.created", "SCIM_1", json!({"name": "Eng"}), "00"),
            event(2, "user.created", "7", json!({"username": "bo"}), "01"),
        ] {
            t.fold(TEAMCITY, &e);
        }
        let groups = |seq, added: &[&str], removed: &[&str], at| {
            event(
                seq,
                "user.groups.changed",
                "7",
                json!({"added": added, "removed": removed}),
                at,
            )
        };
        t.fold(TEAMCITY, &groups(3, &["SCIM_1"], &[], "02"));
        let leave = t.expect(Kind::Leaver, None, "bo", 0, Outcome::Left);
        // A leaver's first attempt strips the groups, then fails and puts them back.
        t.fold(TEAMCITY, &groups(4, &[], &["SCIM_1"], "03"));
        assert_eq!(
            t.snapshot()[leave].applied[1],
            micros_of("2026-01-01T00:00:03Z")
        );
        t.fold(TEAMCITY, &groups(5, &["SCIM_1"], &[], "04"));
        let seen = t.snapshot();
        assert_eq!(seen[leave].applied[1], None, "taken back");
        assert_eq!(seen[join].applied[1], micros_of("2026-01-01T00:00:02Z"));
        assert_eq!(t.in_flight(), 2, "neither is applied on Space");
        t.fold(TEAMCITY, &groups(6, &[], &["SCIM_1"], "09"));
        assert_eq!(
            t.snapshot()[leave].applied[1],
            micros_of("2026-01-01T00:00:09Z")
        );
    }

    #[test]
    fn a_poll_shows_a_leaver_inactive_on_either_target() {
        let t = Tracker::new(Watch::Poll);
        let join = t.expect(Kind::Joiner, None, "cy", 0, Outcome::Joined("Eng".into()));
        let leave = t.expect(Kind::Leaver, None, "cy", 0, Outcome::Left);
        assert_eq!(t.open_users(TEAMCITY), ["cy"]);
        let eng = BTreeSet::from(["Eng".to_owned()]);
        t.observe(TEAMCITY, "cy", true, eng.clone());
        assert!(t.snapshot()[join].applied[1].is_some());
        assert!(t.snapshot()[leave].applied[1].is_none(), "still active");
        // The SCIM view keeps the membership until the IdP removes it; inactive is enough.
        t.observe(TEAMCITY, "cy", false, eng);
        assert!(t.snapshot()[leave].applied[1].is_some());
        assert!(t.open_users(TEAMCITY).is_empty());
        assert_eq!(t.open_users(SPACE), ["cy"]);
    }

    #[test]
    fn on_teamcity_no_groups_means_left_only_after_some() {
        let t = Tracker::default();
        t.fold(
            TEAMCITY,
            &event(1, "group.created", "SCIM_1", json!({"name": "Eng"}), "00"),
        );
        let join = t.expect(Kind::Joiner, None, "bo", 0, Outcome::Joined("Eng".into()));
        let leave = t.expect(Kind::Leaver, None, "bo", 0, Outcome::Left);
        t.fold(
            TEAMCITY,
            &event(2, "user.created", "7", json!({"username": "bo"}), "01"),
        );
        let seen = t.snapshot();
        assert_eq!(
            (seen[join].applied[1], seen[leave].applied[1]),
            (None, None)
        );
        let changed =
            |added: &[&str], removed: &[&str]| json!({"added": added, "removed": removed});
        t.fold(
            TEAMCITY,
            &event(
                3,
                "user.groups.changed",
                "7",
                changed(&["SCIM_1"], &[]),
                "03",
            ),
        );
        t.fold(
            TEAMCITY,
            &event(
                4,
                "user.groups.changed",
                "7",
                changed(&[], &["SCIM_1"]),
                "04",
            ),
        );
        let seen = t.snapshot();
        assert_eq!(seen[join].applied[1], micros_of("2026-01-01T00:00:03Z"));
        assert_eq!(seen[leave].applied[1], micros_of("2026-01-01T00:00:04Z"));
        assert!(!seen[join].superseded[1]);
    }
}
