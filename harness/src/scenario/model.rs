//! Scenario files (`scenarios/*.yaml`): steps in the IdP's vocabulary, expectations in each
//! target's own. Parsing checks the shape (serde) and then the meaning (users hired before they
//! are used, groups declared, durations readable); every error names the file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

pub use mock_idp::Dialect;

fn both_dialects() -> Vec<Dialect> {
    vec![Dialect::Okta, Dialect::Entra]
}

/// The policy files (in `scenarios/policies/`, without `.toml`) the targets run with.
/// A target not named runs with `TARGET-idp`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Policies(BTreeMap<TargetName, String>);

impl Policies {
    /// The policy file (without `.toml`) `target` runs with.
    pub fn file(&self, target: TargetName) -> String {
        self.0
            .get(&target)
            .cloned()
            .unwrap_or_else(|| format!("{target}-idp"))
    }
}

/// What a scenario is written for: scimlab's mocks (expectations in Space's and TeamCity's
/// permission vocabulary, outages, quirks, tokens) or any SCIM endpoint (expectations on the
/// SCIM resources themselves).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Written {
    #[default]
    Mocks,
    Scim,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `scim`: runs against `scimlab scenario --scim URL` (or the embedded SCIM engine).
    #[serde(default, rename = "for", skip_serializing_if = "is_mocks")]
    pub written_for: Written,
    /// The dialects the IdP runs the scenario in (both unless narrowed).
    #[serde(default = "both_dialects")]
    pub dialects: Vec<Dialect>,
    #[serde(default)]
    pub policies: Policies,
    /// IdP groups created up front, assigned and pushed to both apps.
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(deserialize_with = "one_key_maps")]
    pub steps: Vec<Step>,
    /// How long the final oracle check waits for the targets to converge (default 20s, long
    /// enough for the IdP's retry backoff after an outage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<String>,
}

fn is_mocks(w: &Written) -> bool {
    *w == Written::Mocks
}

impl Scenario {
    /// The scenario as a file `parse` reads back: steps as one-key maps.
    pub fn to_yaml(&self) -> Result<String, String> {
        let value = serde_json::to_value(self).map_err(|e| e.to_string())?;
        serde_yaml_ng::to_string(&value).map_err(|e| e.to_string())
    }
}

/// The YAML reader wants tags (`!hire`) for enums; scenarios write steps as one-key maps
/// (`- hire: {...}`), which the JSON reading of the same values understands.
fn one_key_maps<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Step>, D::Error> {
    let raw: Vec<Value> = Vec::deserialize(d)?;
    raw.into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value(v)
                .map_err(|e| serde::de::Error::custom(format!("step {}: {e}", i + 1)))
        })
        .collect()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Hire {
    pub user: String,
    /// Hires this many people at once (`<user>-01` ...): a team, for reorganisations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub profile: Map<String, Value>,
    /// A contract end: this long after the hire, HR's automation deactivates the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// The most people one bulk hire may name.
pub const MAX_COUNT: usize = 1000;

impl Hire {
    /// The users this step hires: `user`, or `user-01` .. `user-NN` with `count`.
    pub fn names(&self) -> Vec<String> {
        match self.count {
            None => vec![self.user.clone()],
            Some(n) => {
                let width = n.to_string().len().max(2);
                (1..=n)
                    .map(|i| format!("{}-{i:0width$}", self.user))
                    .collect()
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserRef {
    pub user: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    pub user: String,
    pub group: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Move {
    pub user: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    pub group: String,
    pub to: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    pub user: String,
    pub profile: Map<String, Value>,
}

/// Moves every member of one group to another: a reorganisation.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Reorg {
    pub from: String,
    pub to: String,
}

/// A server the scenario can stop and start: the IdP or a target (its native API and its SCIM
/// connector together).
pub use crate::targets::Server;

pub use crate::mock_target::TargetName;

/// A personal access token the user creates in a target's own API (not through the IdP).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenStep {
    pub user: String,
    pub on: TargetName,
}

/// Switches a target's named quirks (see each mock's `/_sim/quirks`), to show a misbehaving
/// target being caught.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuirkStep {
    pub on: TargetName,
    pub quirks: Vec<String>,
}

/// One step, in the IdP's vocabulary: a map with one key, the step's name (`- hire: {...}`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    Hire(Hire),
    Update(Update),
    Join(Membership),
    Leave(Membership),
    Move(Move),
    Rename(Rename),
    Suspend(UserRef),
    Unsuspend(UserRef),
    /// Deactivate: the leaver.
    Terminate(UserRef),
    /// Activate a terminated user again.
    Rehire(UserRef),
    Delete(UserRef),
    /// A pause, e.g. `wait: 500ms`.
    Wait(String),
    /// The user creates a personal token on a target.
    Token(TokenStep),
    Quirks(QuirkStep),
    Reorg(Reorg),
    /// The server stops (an outage): its state stays on disk, the IdP's changes wait.
    Down(Server),
    /// The server starts again on the same ports and data.
    Up(Server),
    /// Down and up again at once.
    Restart(Server),
    Expect(Expect),
}

impl Step {
    /// The servers the step talks to, which must be up.
    pub fn needs(&self) -> Vec<Server> {
        match self {
            Step::Wait(_) | Step::Down(_) | Step::Up(_) | Step::Restart(_) => Vec::new(),
            Step::Token(t) => vec![Server::Idp, t.on.server()],
            Step::Quirks(q) => vec![q.on.server()],
            Step::Expect(_) => std::iter::once(Server::Idp)
                .chain(TargetName::all().map(TargetName::server))
                .collect(),
            _ => vec![Server::Idp],
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Step::Hire(_) => "hire",
            Step::Update(_) => "update",
            Step::Join(_) => "join",
            Step::Leave(_) => "leave",
            Step::Move(_) => "move",
            Step::Rename(_) => "rename",
            Step::Suspend(_) => "suspend",
            Step::Unsuspend(_) => "unsuspend",
            Step::Terminate(_) => "terminate",
            Step::Rehire(_) => "rehire",
            Step::Delete(_) => "delete",
            Step::Wait(_) => "wait",
            Step::Token(_) => "token",
            Step::Quirks(_) => "quirks",
            Step::Reorg(_) => "reorg",
            Step::Down(_) => "down",
            Step::Up(_) => "up",
            Step::Restart(_) => "restart",
            Step::Expect(_) => "expect",
        }
    }
}

/// What must hold on each target by the deadline.
/// A key other than these names a mock target, whose own module reads the expectations under
/// it (`space: [...]`); an unknown key is an error there.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Expect {
    #[serde(default = "Expect::default_within")]
    pub within: String,
    /// On a SCIM endpoint (scenarios `for: scim`).
    #[serde(default)]
    pub scim: Vec<ScimExpect>,
    #[serde(flatten)]
    pub on: BTreeMap<TargetName, Vec<Value>>,
}

impl Expect {
    fn default_within() -> String {
        "5s".into()
    }
}

/// Whether the user's personal tokens on a target still work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tokens {
    Accepted,
    Refused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// No role or permission anywhere (an absent user has none either).
    None,
}

/// In SCIM's vocabulary: the user's resource on the endpoint, read back by `userName`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScimExpect {
    pub user: String,
    /// The resource exists (`false`: no resource has the user's userName).
    pub exists: Option<bool>,
    pub active: Option<bool>,
    /// Exactly these of the scenario's pushed groups list the user as a member.
    pub groups: Option<Vec<String>>,
    /// SCIM path (`title`, `name.familyName`, `emails[type eq "work"].value`, an extension
    /// URN and attribute) and the value it must hold.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// `500ms`, `2s`, `1.5s`, `1m`.
pub fn duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (number, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number
        .trim()
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// The line (1-based) each step starts on: the list items of `steps:` at its first item's indent.
fn step_lines(text: &str) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|l| l.trim_end() == "steps:") else {
        return Vec::new();
    };
    let mut indent = None;
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let depth = line.len() - trimmed.len();
        if depth == 0 && !trimmed.starts_with('-') {
            break;
        }
        if trimmed.starts_with('-') && *indent.get_or_insert(depth) == depth {
            out.push(i + 1);
        }
    }
    out
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: path.to_owned(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let lines = step_lines(text);
        let scenario: Scenario = serde_yaml_ng::from_str(text).map_err(|e| {
            let message = e.to_string();
            // A step's own error comes from `one_key_maps`, which the YAML reader cannot place.
            let step = message
                .strip_prefix("steps: step ")
                .or_else(|| message.strip_prefix("step "))
                .and_then(|rest| rest.split(':').next())
                .and_then(|n| n.parse::<usize>().ok());
            ScenarioError {
                file: path.to_owned(),
                line: step
                    .and_then(|n| lines.get(n.checked_sub(1)?).copied())
                    .or_else(|| e.location().map(|l| l.line()))
                    .unwrap_or(0),
                message,
            }
        })?;
        scenario
            .validate()
            .map_err(|(step, message)| ScenarioError {
                file: path.to_owned(),
                line: step.and_then(|i| lines.get(i).copied()).unwrap_or(1),
                message,
            })?;
        Ok(scenario)
    }

    /// The meaning: who exists when, which groups there are. `Err` carries the step index.
    fn validate(&self) -> Result<(), (Option<usize>, String)> {
        if self.dialects.is_empty() {
            return Err((None, "dialects is empty".into()));
        }
        if let Some(settle) = self.settle.as_deref().filter(|t| duration(t).is_none()) {
            return Err((None, format!("settle {settle:?} is not a duration")));
        }
        let mut groups: Vec<String> = Vec::new();
        for g in &self.groups {
            if groups.contains(g) {
                return Err((None, format!("group {g:?} is declared twice")));
            }
            groups.push(g.clone());
        }
        let mut hired: Vec<String> = Vec::new();
        let mut tokens: Vec<(String, TargetName)> = Vec::new();
        let scim = self.written_for == Written::Scim;
        let mut down: Vec<Server> = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let fail = |message: String| {
                Err((
                    Some(i),
                    format!("step {} ({}): {message}", i + 1, step.kind()),
                ))
            };
            let known_group = |g: &str, groups: &[String]| groups.iter().any(|x| x == g);
            let mocks_only = match step {
                Step::Token(_)
                | Step::Quirks(_)
                | Step::Down(_)
                | Step::Up(_)
                | Step::Restart(_) => true,
                Step::Expect(e) => e.on.values().any(|list| !list.is_empty()),
                _ => false,
            };
            if scim && mocks_only {
                return fail("needs scimlab's mocks, and this scenario is `for: scim`".into());
            }
            if !scim && matches!(step, Step::Expect(e) if !e.scim.is_empty()) {
                return fail("scim expectations need `for: scim` at the top of the file".into());
            }
            if let Some(server) = step.needs().into_iter().find(|s| down.contains(s)) {
                return fail(format!("{server:?} is down (an `up` step must come first)"));
            }
            let users: Vec<String> = match step {
                Step::Hire(h) => {
                    if h.count.is_some_and(|n| n == 0 || n > MAX_COUNT) {
                        return fail(format!("count must be 1 to {MAX_COUNT}"));
                    }
                    if let Some(e) = h.expires.as_deref().filter(|e| duration(e).is_none()) {
                        return fail(format!("expires {e:?} is not a duration (500ms, 2s, 1m)"));
                    }
                    if let Some(g) = h.groups.iter().find(|g| !known_group(g, &groups)) {
                        return fail(format!("group {g:?} is not declared under groups"));
                    }
                    if !valid_user(&h.user) {
                        return fail(format!(
                            "user {:?}: use letters, digits, '.', '-' or '_'",
                            h.user
                        ));
                    }
                    for name in h.names() {
                        if hired.contains(&name) {
                            return fail(format!("{name} is already hired"));
                        }
                        hired.push(name);
                    }
                    Vec::new()
                }
                Step::Reorg(r) => {
                    if let Some(g) = [&r.from, &r.to]
                        .into_iter()
                        .find(|g| !known_group(g, &groups))
                    {
                        return fail(format!("group {g:?} is not declared under groups"));
                    }
                    Vec::new()
                }
                Step::Down(server) => {
                    down.push(*server);
                    Vec::new()
                }
                Step::Up(server) => {
                    if !down.contains(server) {
                        return fail(format!("{server:?} is not down"));
                    }
                    down.retain(|s| s != server);
                    Vec::new()
                }
                Step::Restart(_) => Vec::new(),
                Step::Join(m) | Step::Leave(m) => {
                    if !known_group(&m.group, &groups) {
                        return fail(format!("group {:?} is not declared under groups", m.group));
                    }
                    vec![m.user.clone()]
                }
                Step::Move(m) => {
                    if let Some(g) = [&m.from, &m.to]
                        .into_iter()
                        .find(|g| !known_group(g, &groups))
                    {
                        return fail(format!("group {g:?} is not declared under groups"));
                    }
                    vec![m.user.clone()]
                }
                Step::Rename(r) => {
                    let Some(at) = groups.iter().position(|g| *g == r.group) else {
                        return fail(format!("group {:?} is not declared under groups", r.group));
                    };
                    if known_group(&r.to, &groups) {
                        return fail(format!("a group is already called {:?}", r.to));
                    }
                    groups[at] = r.to.clone();
                    Vec::new()
                }
                Step::Update(u) => vec![u.user.clone()],
                Step::Token(t) => {
                    tokens.push((t.user.clone(), t.on));
                    vec![t.user.clone()]
                }
                Step::Quirks(_) => Vec::new(),
                Step::Suspend(u)
                | Step::Unsuspend(u)
                | Step::Terminate(u)
                | Step::Rehire(u)
                | Step::Delete(u) => vec![u.user.clone()],
                Step::Wait(w) => {
                    if duration(w).is_none() {
                        return fail(format!("{w:?} is not a duration (500ms, 2s, 1m)"));
                    }
                    Vec::new()
                }
                Step::Expect(e) => {
                    if duration(&e.within).is_none() {
                        return fail(format!("within {:?} is not a duration", e.within));
                    }
                    let mut users: Vec<String> = Vec::new();
                    for (on, list) in &e.on {
                        for x in list {
                            let said = match on.mock().expectation(x) {
                                Ok(said) => said,
                                Err(why) => return fail(format!("{on} expectation: {why}")),
                            };
                            if said.tokens.is_some() && !tokens.contains(&(said.user.clone(), *on))
                            {
                                return fail(format!("a tokens expectation for {} on {on:?} needs an earlier token step there (else it holds vacuously)", said.user));
                            }
                            users.push(said.user);
                        }
                    }
                    if let Some(x) = e.scim.iter().find(|x| {
                        x.exists.is_none()
                            && x.active.is_none()
                            && x.groups.is_none()
                            && x.attributes.is_empty()
                    }) {
                        return fail(format!(
                            "scim expectation for {} needs exists, active, groups or attributes",
                            x.user
                        ));
                    }
                    if let Some(g) = e
                        .scim
                        .iter()
                        .flat_map(|x| x.groups.iter().flatten())
                        .find(|g| !known_group(g, &groups))
                    {
                        return fail(format!("group {g:?} is not declared under groups"));
                    }
                    users.extend(e.scim.iter().map(|x| x.user.clone()));
                    users
                }
            };
            if let Some(u) = users.into_iter().find(|u| !hired.contains(u)) {
                return fail(format!("user {u:?} is not hired by an earlier step"));
            }
        }
        if let Some(server) = down.first() {
            return Err((
                None,
                format!("{server:?} is still down at the end: add an `up` step"),
            ));
        }
        Ok(())
    }
}

fn valid_user(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(Path::new("t.yaml"), text)
    }

    #[test]
    fn a_scenario_parses() {
        let s = parse(
            "name: joiner\ngroups: [Engineering]\nsteps:\n  - hire: {user: alice, groups: [Engineering]}\n  - wait: 100ms\n  - expect:\n      within: 2s\n      space: [{user: alice, project: BACKEND, roles: [member]}]\n",
        )
        .unwrap();
        assert_eq!(s.steps.len(), 3);
        assert_eq!(s.dialects, both_dialects());
        let space: TargetName = "space".parse().unwrap();
        assert_eq!(s.policies.file(space), "space-idp");
    }

    #[test]
    fn expectations_are_read_by_their_target_and_a_stranger_is_named() {
        let e = parse(
            "name: x\ngroups: [A]\nsteps:\n  - hire: {user: alice, groups: [A]}\n  - expect:\n      spaec: [{user: alice, access: none}]\n",
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("`spaec` is not a target: space or teamcity"),
            "{e}"
        );
        let e = parse(
            "name: x\ngroups: [A]\nsteps:\n  - hire: {user: alice, groups: [A]}\n  - expect:\n      teamcity: [{user: alice, project: Web}]\n",
        )
        .unwrap_err();
        assert!(
            e.message.contains("needs project with may / may_not"),
            "{e}"
        );
        assert_eq!(e.line, 5, "{e}");
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("name: x\nsteps:\n  - hire: {user: alice}\n  - fire: {user: alice}\n")
            .unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        let e = parse("name: x\ngroups: [A]\nsteps:\n  - hire: {user: alice}\n\n  - join: {user: bob, group: A}\n").unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        assert!(e.message.contains("\"bob\" is not hired"), "{e}");
        assert!(e.to_string().starts_with("t.yaml:6: step 2 (join)"), "{e}");
        let e = parse("name: x\nsteps:\n  - hire: {user: a, groups: [Nope]}\n").unwrap_err();
        assert!(e.message.contains("not declared"), "{e}");
        let e = parse("name: x\nsteps:\n  - hire: {user: a}\n  - expect: {space: [{user: a, tokens: refused}]}\n").unwrap_err();
        assert!(e.message.contains("needs an earlier token step"), "{e}");
        let e = parse("name: x\nsteps:\n  - wait: soon\n").unwrap_err();
        assert!(e.message.contains("not a duration"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(duration("2m"), Some(Duration::from_secs(120)));
        for bad in ["", "5", "s", "-1s", "1h", "NaNs"] {
            assert_eq!(duration(bad), None, "{bad}");
        }
    }

    proptest! {
        /// Whatever the text, parsing answers (an error or a scenario), never a panic.
        #[test]
        fn parsing_never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn durations_never_panic(text in "\\PC{0,12}") {
            let _ = duration(&text);
        }
    }
}
