//! `scimlab conformance`: RFC 7643 / RFC 7644 checks against any SCIM base URL.
//!
//! Each check has a stable id from `shared/reference/rfc7644-checklist.md`, the RFC section it
//! tests, a level and the profile it belongs to. Sections run concurrently; within a section,
//! checks run in order and a failed prerequisite marks its dependants blocked, not failed.
//! Every finding keeps the exchanges that prove it, with credentials masked.

mod checks;
pub mod html;
pub mod report;
mod target;

use std::sync::Mutex;
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

pub use checks::definitions;
pub use target::{is_loopback, Auth, Exchange, Target, TargetError, DEFAULT_MAX_BODY};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Must,
    Should,
    May,
    Info,
}

/// Whose rules a check tests. Every run tests the RFC; `--profile` adds an IdP's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Rfc,
    Okta,
    Entra,
    /// The OpenID IPSIE AL1 SCIM 2.0 profile (draft-ipsie-scim-al1-profile).
    Ipsie,
}

/// Whose obligation the sentence a check tests is. A check of how the server takes a request
/// that breaks the client's obligation tests robustness: it is at most SHOULD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Binds {
    Provider,
    Client,
}

/// What a check is: everything but its code.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CheckDef {
    pub id: &'static str,
    pub section: &'static str,
    pub level: Level,
    pub binds: Binds,
    pub title: &'static str,
    /// What the RFC asks, in a sentence a vendor can act on.
    pub requirement: &'static str,
    /// The sentence of the RFC (or profile) the check tests, word for word; empty where none
    /// has been checked against the text yet.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub quote: &'static str,
    pub profile: Profile,
    /// True when the check writes nothing to the server.
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
    Blocked(String),
    Waived(String),
    /// An informational check's observation: recorded, never a failure.
    Noted(String),
}

/// The result of one check, with the wire log that supports it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    #[serde(flatten)]
    pub def: CheckDef,
    pub outcome: Outcome,
    pub exchanges: Vec<Exchange>,
    pub millis: f64,
}

impl CheckResult {
    /// Whether this result fails the run: a failed MUST, or a failed SHOULD under `strict`.
    pub fn fails_run(&self, strict: bool) -> bool {
        matches!(self.outcome, Outcome::Failed(_))
            && (self.def.level == Level::Must || (strict && self.def.level == Level::Should))
    }
}

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Profiles whose checks run besides the RFC's (naming `Rfc` adds nothing).
    pub profiles: Vec<Profile>,
    /// Run only the checks that write nothing.
    pub read_only: bool,
    /// Only checks whose id, section or title contains one of these (case-insensitive).
    pub select: Vec<String>,
    /// Check id -> reason: failures of these are reported as waived.
    pub waivers: Vec<(String, String)>,
    /// A credential that authenticates but lacks permission (for P-AUTH-04).
    pub limited_auth: Option<Auth>,
    /// Longest the whole run may take; checks not finished by then are reported blocked.
    pub deadline: Option<std::time::Duration>,
    /// Members of the large group P-GROUP-03/04 build; 0 skips them.
    pub large_group: usize,
    /// Most requests I-IPSIE-06 sends to meet the server's rate limit; 0 skips it.
    pub rate_limit_burst: usize,
}

impl Options {
    /// Whether the run may send the check's requests: read-only runs write nothing, and a
    /// profile's checks run only when it was asked for.
    pub fn allowed(&self, def: &CheckDef) -> bool {
        (!self.read_only || def.read_only)
            && (def.profile == Profile::Rfc || self.profiles.contains(&def.profile))
    }

    /// Whether the run reports the check.
    pub fn selected(&self, def: &CheckDef) -> bool {
        self.allowed(def)
            && (self.select.is_empty()
                || self.select.iter().any(|s| {
                    let s = s.to_ascii_lowercase();
                    def.id.to_ascii_lowercase().contains(&s)
                        || def.section.to_ascii_lowercase().contains(&s)
                        || def.title.to_ascii_lowercase().contains(&s)
                }))
    }
}

/// A run with more than this share of its checks blocked is `incomplete`, never a pass.
pub const INCOMPLETE_SHARE: f64 = 0.10;

/// How long the clean-up may take after the checks, on top of the run's time limit, besides
/// `CLEANUP_PER_RESOURCE` for each resource to delete.
pub const CLEANUP_BUDGET: std::time::Duration = std::time::Duration::from_secs(15);
pub const CLEANUP_PER_RESOURCE: std::time::Duration = std::time::Duration::from_millis(50);

/// Before any check: one discovery read and one authenticated read. A server that cannot be
/// reached, refuses the credentials, redirects (a login page) or answers HTML is not tested;
/// the error says which, in one line.
pub async fn preflight(target: &Target) -> Result<(), String> {
    if let Auth::OAuth(source) = &target.auth {
        source
            .bearer()
            .await
            .map_err(|e| format!("could not get an access token: {e}"))?;
    }
    let spc = target
        .get("/ServiceProviderConfig")
        .await
        .map_err(|e| format!("could not reach the server: {e}"))?;
    not_scim(&spc)?;
    let users = target
        .get("/Users?count=1")
        .await
        .map_err(|e| format!("could not read /Users: {e}"))?;
    not_scim(&users)?;
    match users.status {
        401 | 403 => Err(format!(
            "the credentials were refused: GET /Users answered {}: {}",
            users.status,
            users.response_body.chars().take(200).collect::<String>()
        )),
        _ => Ok(()),
    }
}

/// An answer that shows the URL is no SCIM endpoint: a redirect, or HTML.
fn not_scim(e: &Exchange) -> Result<(), String> {
    if (300..400).contains(&e.status) {
        return Err(format!(
            "{} {} answered {} and redirects to {}: a login page or another base URL; give the SCIM base URL itself",
            e.method,
            e.url,
            e.status,
            e.header("location").unwrap_or("nowhere")
        ));
    }
    let html = e.header("content-type").is_some_and(|c| c.contains("html"))
        || e.response_body.trim_start().starts_with('<');
    if html {
        return Err(format!(
            "{} {} answered HTML, not SCIM JSON (status {}): is this the SCIM base URL?",
            e.method, e.url, e.status
        ));
    }
    Ok(())
}

/// Members of the large group when `--large-group` is not given.
pub const DEFAULT_LARGE_GROUP: usize = 1000;

/// Requests I-IPSIE-06 sends at most when not told.
pub const DEFAULT_RATE_LIMIT_BURST: usize = 1000;

/// The run's time limit when none is given.
pub const DEFAULT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

/// The state shared by the checks of one run.
#[derive(Debug)]
pub struct Cx {
    pub target: Target,
    pub options: Options,
    /// Prefix of every resource this run creates, so it can find and remove them.
    pub prefix: String,
    /// The server's ServiceProviderConfig, when it could be read.
    pub spc: Option<Value>,
    /// The schemas /Schemas lists (empty when it could not be read); test data is drawn from them.
    pub schemas: Vec<Value>,
    deadline: Instant,
    created: Mutex<Vec<String>>,
}

impl Cx {
    /// Remembers a resource location to delete at the end.
    pub fn created(&self, location: String) {
        self.created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(location);
    }

    /// The discovered schema with this URN.
    pub fn schema(&self, urn: &str) -> Option<&Value> {
        self.schemas.iter().find(|s| {
            s["id"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(urn))
        })
    }

    pub fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// `filter.maxResults`, when advertised.
    pub fn max_results(&self) -> Option<u64> {
        self.spc
            .as_ref()?
            .get("filter")?
            .get("maxResults")?
            .as_u64()
    }

    pub fn supports(&self, feature: &str) -> bool {
        self.spc
            .as_ref()
            .and_then(|s| s.get(feature))
            .and_then(|f| f.get("supported"))
            .and_then(Value::as_bool)
            == Some(true)
    }
}

/// Collects the results of one section, running each check only when it is selected.
///
/// A section's checks run in order and later ones build on what earlier ones wrote, so when
/// any check of a section is selected, the checks before it run too (unreported): a subset gets
/// the verdicts the full run gives. Checks of a profile not asked for never run.
#[derive(Debug)]
pub struct Section<'a> {
    cx: &'a Cx,
    ids: &'a [&'static [&'static str]],
    /// True when the run reports some check of this section.
    needed: bool,
    results: Vec<CheckResult>,
}

impl<'a> Section<'a> {
    /// `ids`: every check the section's code runs.
    pub fn new(cx: &'a Cx, ids: &'a [&'static [&'static str]]) -> Section<'a> {
        let needed = ids
            .iter()
            .flat_map(|part| part.iter())
            .filter_map(|id| checks::def(id))
            .any(|d| cx.options.selected(&d));
        Section {
            cx,
            ids,
            needed,
            results: Vec::new(),
        }
    }

    /// Whether the run reports the check.
    pub fn reports(&self, id: &str) -> bool {
        checks::def(id).is_some_and(|d| self.cx.options.selected(&d))
    }

    /// Whether the check will run: the section is needed and the run allows the check.
    pub fn wants(&self, id: &str) -> bool {
        self.needed && checks::def(id).is_some_and(|d| self.cx.options.allowed(&d))
    }

    /// Records a check's outcome; a failure is turned into a waiver when one applies.
    pub fn record(
        &mut self,
        id: &'static str,
        started: Instant,
        result: Result<(), String>,
        exchanges: Vec<Exchange>,
    ) {
        let outcome = match result {
            Err(_) if self.cx.out_of_time() => {
                Outcome::Blocked("the run's time limit was reached".into())
            }
            Ok(()) => Outcome::Passed,
            Err(why) if why.starts_with(checks::NOT_SUPPORTED) => Outcome::Skipped(why),
            Err(why) if why.starts_with(checks::UNPREPARED) => Outcome::Blocked(why),
            Err(why) => match self.cx.options.waivers.iter().find(|(w, _)| w == id) {
                Some((_, reason)) => Outcome::Waived(format!("{why} (waived: {reason})")),
                None => Outcome::Failed(why),
            },
        };
        self.push(
            id,
            outcome,
            exchanges,
            started.elapsed().as_secs_f64() * 1000.0,
        );
    }

    /// Records what an informational check observed.
    pub fn note(
        &mut self,
        id: &'static str,
        started: Instant,
        observed: Result<String, String>,
        exchanges: Vec<Exchange>,
    ) {
        let outcome = match observed {
            Ok(seen) => Outcome::Noted(seen),
            Err(why) => Outcome::Blocked(why),
        };
        self.push(
            id,
            outcome,
            exchanges,
            started.elapsed().as_secs_f64() * 1000.0,
        );
    }

    pub fn skip(&mut self, ids: &[&'static str], reason: &str) {
        for id in ids {
            self.push(id, Outcome::Skipped(reason.to_owned()), Vec::new(), 0.0);
        }
    }

    pub fn block(&mut self, ids: &[&'static str], reason: &str) {
        for id in ids {
            self.push(id, Outcome::Blocked(reason.to_owned()), Vec::new(), 0.0);
        }
    }

    /// Adds a check's result; a check the run did not select records nothing.
    fn push(&mut self, id: &str, outcome: Outcome, exchanges: Vec<Exchange>, millis: f64) {
        debug_assert!(
            self.ids.iter().any(|part| part.contains(&id)),
            "{id} is missing from its section's ids"
        );
        if let Some(def) = checks::def(id).filter(|d| self.cx.options.selected(d)) {
            self.results.push(CheckResult {
                def,
                outcome,
                exchanges,
                millis,
            });
        }
    }

    pub fn passed(&self, id: &str) -> bool {
        self.results
            .iter()
            .any(|r| r.def.id == id && r.outcome == Outcome::Passed)
    }

    pub fn finish(self) -> Vec<CheckResult> {
        self.results
    }
}

/// The outcome of a whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub target: String,
    pub started: String,
    pub finished: String,
    pub seconds: f64,
    pub results: Vec<CheckResult>,
    /// Resources the run created and could not delete (location -> why).
    pub left_behind: Vec<(String, String)>,
    /// How the run was made that bears on its results (`--insecure`), shown first in reports.
    pub notices: Vec<String>,
}

impl Run {
    pub fn count(&self, level: Option<Level>, what: fn(&Outcome) -> bool) -> usize {
        self.results
            .iter()
            .filter(|r| level.is_none_or(|l| r.def.level == l) && what(&r.outcome))
            .count()
    }

    /// True when too little of the run could run to call it a pass: no check ran to a verdict,
    /// or more than `INCOMPLETE_SHARE` of those that should have were blocked.
    pub fn incomplete(&self) -> bool {
        let decided = self.count(None, |o| matches!(o, Outcome::Passed | Outcome::Failed(_)));
        let blocked = self.count(None, |o| matches!(o, Outcome::Blocked(_)));
        decided == 0 || blocked as f64 > INCOMPLETE_SHARE * (decided + blocked) as f64
    }

    /// True when a MUST failed (or a SHOULD, when `strict`).
    pub fn fails(&self, strict: bool) -> bool {
        self.results.iter().any(|r| r.fails_run(strict))
    }
}

/// Runs the suite. Resources it creates carry a run-unique prefix and are deleted at the end.
pub async fn run(target: Target, options: Options) -> Run {
    let started_at = chrono::Utc::now();
    let clock = Instant::now();
    let prefix = format!("scimlab-{}-", &uuid_like());
    // The time limit bounds discovery too.
    let deadline = clock + options.deadline.unwrap_or(DEFAULT_DEADLINE);
    let read = |path: &'static str| {
        let target = &target;
        async move {
            tokio::time::timeout_at(deadline.into(), target.get(path))
                .await
                .ok()
                .and_then(Result::ok)
                .and_then(|e| e.json())
        }
    };
    let spc = read("/ServiceProviderConfig").await;
    let schemas = read("/Schemas")
        .await
        .and_then(|b| b["Resources"].as_array().cloned())
        .unwrap_or_default();
    let cx = Cx {
        target,
        options,
        prefix,
        spc,
        schemas,
        deadline,
        created: Mutex::new(Vec::new()),
    };
    let sections = futures::future::join_all(checks::sections(&cx)).await;
    let mut results: Vec<CheckResult> = sections.into_iter().flatten().collect();
    // Alone, once everything else is done: it spends the credential's rate limit.
    results.extend(checks::after_the_rest(&cx).await);
    results.sort_by_key(|r| checks::order(r.def.id));
    let registered = cx.created.lock().unwrap_or_else(|p| p.into_inner()).len();
    let budget =
        CLEANUP_BUDGET + CLEANUP_PER_RESOURCE * u32::try_from(registered).unwrap_or(u32::MAX);
    let left_behind = match tokio::time::timeout(budget, cleanup(&cx)).await {
        Ok(left) => left,
        Err(_) => vec![(
            format!("resources named {}*", cx.prefix),
            format!(
                "the clean-up budget of {} s ran out; some may remain",
                budget.as_secs()
            ),
        )],
    };
    Run {
        target: cx.target.base.clone(),
        started: started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        finished: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        seconds: clock.elapsed().as_secs_f64(),
        results,
        left_behind,
        notices: cx
            .target
            .insecure
            .then(|| crate::client::INSECURE_NOTICE.to_owned())
            .into_iter()
            .collect(),
    }
}

/// Deletes what the run created, newest first (groups before the users they hold), then
/// whatever still carries the run's prefix: a server that answered a create oddly (no
/// location, 200 for 201) must not be left holding the suite's test data.
async fn cleanup(cx: &Cx) -> Vec<(String, String)> {
    let mut created: Vec<String> = cx
        .created
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain(..)
        .rev()
        .collect();
    let extra = stragglers(cx, &created).await;
    created.extend(extra);
    // Eight at a time, in that order: a large group's thousand members fit the budget.
    let outcomes: Vec<Option<(String, String)>> = futures::stream::iter(created)
        .map(|location| async move {
            match cx
                .target
                .send(reqwest::Method::DELETE, &location, None, &[])
                .await
            {
                Ok(e) if e.status == 204 || e.status == 404 || e.status == 200 => None,
                Ok(e) => Some((location, format!("DELETE answered {}", e.status))),
                Err(e) => Some((location, e)),
            }
        })
        .buffered(8)
        .collect()
        .await;
    outcomes.into_iter().flatten().collect()
}

/// Paths of resources whose names start with the run prefix and that were not registered.
async fn stragglers(cx: &Cx, registered: &[String]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for (endpoint, attribute) in [
        ("/Groups", "displayName"),
        ("/Users", "userName"),
        ("/Users", "externalId"),
        ("/Users", "displayName"),
    ] {
        let filter = format!("{attribute} sw \"{}\"", cx.prefix);
        let query = crate::encode(&filter);
        let Ok(e) = cx
            .target
            .get(&format!("{endpoint}?count=1000&filter={query}"))
            .await
        else {
            continue;
        };
        let listed = e
            .json()
            .and_then(|b| b["Resources"].as_array().cloned())
            .unwrap_or_default();
        for id in listed.iter().filter_map(|r| r["id"].as_str()) {
            let path = format!("{endpoint}/{id}");
            if !found.contains(&path) && !registered.iter().any(|l| l.ends_with(&path)) {
                found.push(path);
            }
        }
    }
    found
}

fn uuid_like() -> String {
    let n: u64 = rand::random();
    format!("{n:016x}")[..10].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_of_the_clients_obligation_is_at_most_should() {
        let too_strict: Vec<&str> = definitions()
            .iter()
            .filter(|d| d.binds == Binds::Client && d.level == Level::Must)
            .map(|d| d.id)
            .collect();
        assert!(too_strict.is_empty(), "{too_strict:?}");
        assert!(definitions().iter().any(|d| d.binds == Binds::Client));
    }
}
