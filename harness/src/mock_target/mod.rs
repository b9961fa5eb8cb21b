//! The products scimlab runs as mocks behind their SCIM connectors. Everything the harness
//! knows of one (how it starts, its audit vocabulary, its tokens, its permission view, how the
//! oracle evaluates its policy, the expectations a scenario states in its words) is one
//! [`MockTarget`] in a module of its own, registered once in [`REGISTRY`]; `up`, `scenario`,
//! `load`, `ci` and the oracle work over the registry. A vendor's SCIM endpoint is the other
//! kind of target: `scim_target` reads it through SCIM alone.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::scenario::model::Tokens;
use crate::scenario::oracle::Holding;
use crate::scenario::run::Endpoint;

pub mod space;
pub mod teamcity;

/// Every mock target, in report order. A new one is a module implementing [`MockTarget`] and
/// one entry here.
const REGISTRY: &[&dyn MockTarget] = &[&space::Space, &teamcity::TeamCity];

/// What the harness knows of one mocked product.
pub trait MockTarget: Send + Sync {
    /// Its name in scenario files, flags and reports (`space`).
    fn name(&self) -> &'static str;
    /// Its name for people, and the label of its app in the IdP (`Space`).
    fn label(&self) -> &'static str;

    /// The policy (TOML) its connector maps pushed groups by when none is given.
    fn default_policy(&self) -> &'static str;
    /// Whether `policy` (TOML) is one its connector can use; why not.
    fn check_policy(&self, policy: &str) -> Result<(), String>;
    /// Starts the mock and its SCIM connector.
    fn launch(&self, how: Launch) -> BoxFuture<'_, Result<Box<dyn RunningMock>, String>>;

    /// Whether an account has an active flag. Without one (TeamCity) a leaver is an account
    /// that is still there with nothing.
    fn has_active_flag(&self) -> bool;
    /// What an audit event of this `kind` did to people, if anything.
    fn audit_change(&self, kind: &str) -> Option<AuditChange>;
    /// The audit event kinds that record a leaver; `None` when this product records nothing
    /// for a leaver who had nothing (`had_something`: grants or tokens).
    fn leaver_kinds(&self, had_something: bool) -> Option<&'static [&'static str]>;

    /// Where to POST `{name}` to make a personal token for the user at `locator`
    /// (`username:NAME`, encoded), and the answer's field holding its secret.
    fn token_maker(&self, base: &str, locator: &str) -> (String, &'static str);
    /// Where a token reads its own user.
    fn own_user(&self, base: &str, locator: &str) -> String;

    /// One expectation a scenario states under this target's name, read once: whose it is,
    /// what it says of tokens, and how to judge it.
    fn expectation(&self, e: &Value) -> Result<Expectation, String>;

    /// What `scimlab ci`'s smoke test reads in the product after a SCIM joiner and leaver.
    fn smoke(&self) -> NativeSmoke;

    /// The oracle's own evaluation of this target under `policy` (TOML), from the target's
    /// fixed configuration read through its API at `end`; `by_group_id` when the IdP's dialect
    /// sends its group id as `externalId` (`Speech::sends_group_external_id`).
    fn judge<'a>(
        &'a self,
        client: &'a reqwest::Client,
        end: &'a Endpoint,
        policy: &'a str,
        by_group_id: bool,
    ) -> BoxFuture<'a, Result<Box<dyn Judge>, String>>;
}

/// The oracle's reading of one target: what a member of pushed groups holds there, and what
/// its permission view shows.
pub trait Judge: Send + Sync + std::fmt::Debug {
    /// The items an active member of `groups` (IdP id, name) holds.
    fn grants(&self, groups: &[(&String, &String)]) -> BTreeSet<String>;
    /// A permission view (`/_sim/permissions/{user}`) as items, with the route of each item
    /// where the view names one.
    fn holding(&self, seen: &Value) -> (Holding, BTreeMap<String, String>);
    /// Which of the user's holdings grants `item`, read from the target when its view does
    /// not say.
    fn excess_route<'a>(
        &'a self,
        _client: &'a reqwest::Client,
        _end: &'a Endpoint,
        _locator: &'a str,
        _item: &'a str,
    ) -> BoxFuture<'a, Option<String>> {
        Box::pin(async { None })
    }
}

/// `scimlab ci`'s smoke test of a connector, in the product: `user` is created through SCIM
/// and put in the group `Engineering` (externalId `engineering`), then deactivated; after
/// each, the product's permission view of the user (`/_sim/permissions/username:USER`, plus
/// `joined_query` after the join) must pass the check.
#[derive(Debug, Clone, Copy)]
pub struct NativeSmoke {
    pub user: &'static str,
    /// What the joiner may do, in the step's name ("push to BACKEND").
    pub joined_may: &'static str,
    pub joined_query: &'static str,
    pub joined: fn(&Value) -> Result<(), String>,
    pub left: fn(&Value) -> Result<(), String>,
}

/// Whether the JSON at `pointer` in `v` is `expected`; what it is instead.
pub fn field_is(v: &Value, pointer: &str, expected: Value) -> Result<(), String> {
    match v.pointer(pointer) {
        Some(actual) if *actual == expected => Ok(()),
        actual => Err(format!(
            "{pointer}: expected {expected}, got {}",
            actual.cloned().unwrap_or(Value::Null)
        )),
    }
}

/// An expectation's subject, what it says of the user's tokens, and why it does not hold on
/// a permission view (`None`: no account), if it does not.
pub struct Expectation {
    pub user: String,
    pub tokens: Option<Tokens>,
    pub miss: Miss,
}

/// Why an expectation does not hold on a permission view, if it does not.
pub type Miss = Box<dyn Fn(Option<&Value>) -> Option<String> + Send + Sync>;

impl std::fmt::Debug for Expectation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Expectation")
            .field("user", &self.user)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

/// A change to people an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditChange {
    /// A group is made or renamed: subject its id, `data.name` its name.
    GroupNamed,
    /// A person is made: `data.username`.
    Created,
    Deleted,
    /// Activated (`true`) or deactivated.
    Active(bool),
    /// Joined (`true`) or left the group whose id is `data.team`.
    Membership(bool),
    /// Joined the groups whose keys are `data.added` and left those in `data.removed`.
    Groups,
}

/// How to start a mock: its port (0: any), token and policy, and how its connector is served.
#[derive(Debug, Clone)]
pub struct Launch {
    pub native_port: u16,
    /// The product's token, which its connector uses too.
    pub token: String,
    /// TOML, already checked by [`MockTarget::check_policy`].
    pub policy: String,
    /// The connector's port, data folder (the product's too), clients and transport.
    pub serving: mockkit::connector::Serving,
}

/// A mock and its connector, running.
pub trait RunningMock: Send + Sync + std::fmt::Debug {
    /// Its own API (and `/_sim` control plane).
    fn native_url(&self) -> &str;
    fn scim_url(&self) -> &str;
    /// Stops both after their open requests finish.
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// A registered mock target, by name: compared, ordered and written as its name.
#[derive(Clone, Copy)]
pub struct TargetName(&'static dyn MockTarget);

impl TargetName {
    /// Every mock target, in report order.
    pub fn all() -> impl Iterator<Item = TargetName> {
        REGISTRY.iter().map(|t| TargetName(*t))
    }

    /// How many there are: the length of per-target arrays.
    pub const COUNT: usize = REGISTRY.len();

    /// Its place in [`TargetName::all`], for per-target arrays.
    pub fn index(self) -> usize {
        // By name: the targets are zero-sized, so their addresses tell them apart nowhere.
        REGISTRY
            .iter()
            .position(|t| t.name() == self.as_str())
            .unwrap_or(0)
    }

    /// The name in files, flags and reports.
    pub fn as_str(self) -> &'static str {
        self.0.name()
    }

    pub fn mock(self) -> &'static dyn MockTarget {
        self.0
    }

    /// The registered target called `name`.
    pub fn named(name: &str) -> Option<TargetName> {
        TargetName::all().find(|t| t.as_str() == name)
    }

    pub fn server(self) -> crate::targets::Server {
        crate::targets::Server::Target(self)
    }
}

impl PartialEq for TargetName {
    fn eq(&self, other: &TargetName) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for TargetName {}

impl PartialOrd for TargetName {
    fn partial_cmp(&self, other: &TargetName) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TargetName {
    fn cmp(&self, other: &TargetName) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for TargetName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl std::fmt::Debug for TargetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.label())
    }
}

impl std::fmt::Display for TargetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TargetName {
    type Err = String;

    fn from_str(s: &str) -> Result<TargetName, String> {
        TargetName::named(s).ok_or_else(|| {
            let names: Vec<&str> = TargetName::all().map(TargetName::as_str).collect();
            format!("`{s}` is not a target: {}", names.join(" or "))
        })
    }
}

impl Serialize for TargetName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TargetName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TargetName, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The grants of every rule of a policy that names the IdP group `id` called `name` as the
/// target sees it: by its name, or, `by_group_id` (the dialect sends the IdP's group id as
/// `externalId`), by that id. The oracle's own matching, not the connectors' `grants_for`.
pub(crate) fn matching<'a, G>(
    rules: &'a [mockkit::connector::Rule<G>],
    groups: &[(&String, &String)],
    by_group_id: bool,
) -> Vec<&'a G> {
    groups
        .iter()
        .flat_map(|(id, name)| {
            rules.iter().filter(move |r| {
                r.group.display_name.as_deref() == Some(name.as_str())
                    || (by_group_id && r.group.external_id.as_deref() == Some(id.as_str()))
            })
        })
        .flat_map(|r| r.grants.iter())
        .collect()
}

/// A policy the oracle can judge: no rule names a group by connector id, which the IdP cannot
/// know.
pub(crate) fn judgeable<G: mockkit::connector::PolicyGrant>(
    label: &str,
    policy: &str,
) -> Result<mockkit::connector::Policy<G>, String> {
    let policy = mockkit::connector::Policy::<G>::parse(policy).map_err(|e| e.to_string())?;
    match policy.rules.iter().position(|r| r.group.id.is_some()) {
        Some(i) => Err(format!(
            "policy rule {} of the {label} policy matches a group by connector id, which the IdP cannot know: the oracle cannot judge it",
            i + 1
        )),
        None => Ok(policy),
    }
}

/// A GET of a mock's own API (`path` from its base URL, already encoded) as JSON; `None` when
/// it answers 404, an error for any other answer but a JSON 200.
pub(crate) async fn native_find(
    client: &reqwest::Client,
    end: &Endpoint,
    path: &str,
) -> Result<Option<Value>, String> {
    let url = format!("{}{path}", end.url);
    let resp = client
        .get(&url)
        .bearer_auth(&end.token)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    match (status, serde_json::from_str::<Value>(&text)) {
        (404, _) => Ok(None),
        (200, Ok(found)) => Ok(Some(found)),
        _ => Err(format!("GET {url}: {status} {text}")),
    }
}

/// As [`native_find`], a 404 an error too.
pub(crate) async fn native_get(
    client: &reqwest::Client,
    end: &Endpoint,
    path: &str,
) -> Result<Value, String> {
    native_find(client, end, path)
        .await?
        .ok_or_else(|| format!("GET {}{path}: 404", end.url))
}

/// The strings of a JSON array, sorted.
pub(crate) fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_a_stranger_is_named_with_the_choices() {
        for t in TargetName::all() {
            assert_eq!(t.as_str().parse::<TargetName>(), Ok(t));
            assert_eq!(TargetName::all().nth(t.index()), Some(t));
            let json = serde_json::to_value(t).unwrap_or_default();
            assert_eq!(serde_json::from_value::<TargetName>(json).ok(), Some(t));
        }
        let e = "jira".parse::<TargetName>().unwrap_err();
        assert_eq!(e, "`jira` is not a target: space or teamcity");
    }
}
