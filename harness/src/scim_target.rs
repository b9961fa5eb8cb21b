//! Any SCIM endpoint as a target: a vendor's server, reached with the same authentication as
//! `scimlab conformance`, provisioned by the embedded mock-idp in Okta's or Entra's dialect.
//!
//! Its oracle works at the SCIM level. From the IdP's state (who exists, their status, their
//! profile, which groups hold them) and the default Okta SCIM app mapping, computed here and
//! not by the IdP's own code, it derives what the endpoint must show, as flat facts
//! (`user ann` / `active` = `true`); it reads the same facts back from the endpoint (by
//! `userName eq`, by `externalId eq`, and by the id the IdP linked) and names each
//! difference with the step since which it has been due.
//!
//! A run is safe on a real server: every name carries the run's tag, a read-only preflight
//! must pass before the IdP writes anything, and the clean-up deletes only resources whose
//! name carries the tag.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};

use crate::conformance::{Auth, Target};
use crate::encode;
use crate::targets::Dialect;

pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const WORK_EMAIL: &str = "emails[type eq \"work\"].value";

/// `--scim [NAME=]URL`: a SCIM endpoint's base URL, and the name reports give it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimSpec {
    pub name: String,
    pub url: String,
}

impl FromStr for ScimSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<ScimSpec, String> {
        let (name, url) = match text.split_once('=') {
            Some((name, url)) if !name.contains('/') => (name.trim(), url.trim()),
            _ => ("scim", text.trim()),
        };
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_name {
            return Err(format!(
                "'{name}': a target name is letters, digits, '-' and '_'"
            ));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("'{url}' is not an http:// or https:// URL"));
        }
        Ok(ScimSpec {
            name: name.to_owned(),
            url: url.trim_end_matches('/').to_owned(),
        })
    }
}

/// How the IdP authenticates its pushes to the endpoint (the harness reads back the same way).
#[derive(Clone)]
pub enum PushAuth {
    Bearer(String),
    /// OAuth 2.0 client credentials with a client secret, as Entra's and Okta's SCIM apps do.
    OAuth {
        token_url: String,
        client_id: String,
        client_secret: String,
    },
}

/// How a run reaches an endpoint: the IdP pushes with `push`, the harness reads back (and
/// cleans up) with `read`, the user's own credentials as given.
#[derive(Debug, Clone)]
pub struct EndpointAuth {
    pub push: PushAuth,
    pub read: Auth,
}

/// Names the scheme, never the secret.
impl std::fmt::Debug for PushAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushAuth::Bearer(_) => f.write_str("Bearer(****)"),
            PushAuth::OAuth {
                token_url,
                client_id,
                ..
            } => {
                write!(f, "OAuth({client_id} at {token_url})")
            }
        }
    }
}

impl PushAuth {
    /// The IdP app connection's `profile` for this authentication.
    pub fn connection(&self) -> Value {
        match self {
            PushAuth::Bearer(token) => json!({"authScheme": "TOKEN", "token": token}),
            PushAuth::OAuth {
                token_url,
                client_id,
                client_secret,
            } => json!({"authScheme": "OAUTH2", "tokenUrl": token_url,
                        "clientId": client_id, "clientSecret": client_secret}),
        }
    }
}

/// One fact the oracle checks: (subject, attribute), e.g. ("user ann", "active").
pub type Key = (String, String);
/// Facts: what is due, or what the endpoint shows.
pub type Facts = BTreeMap<Key, String>;

/// Shown where the endpoint has nothing for a fact.
pub const NOTHING: &str = "(nothing)";

/// What the IdP knows of one person the run hired.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Person {
    /// The IdP's id (the mapping sends it as externalId).
    pub id: String,
    /// `None` once deleted in the IdP.
    pub status: Option<String>,
    pub profile: serde_json::Map<String, Value>,
    /// The scenario groups that hold the person (all are assigned and pushed to the app).
    pub groups: BTreeSet<String>,
    /// The endpoint's id of the person, as the IdP linked it after creating them.
    pub linked: Option<String>,
}

/// The IdP's state as the oracle reads it: people by scenario name, and each scenario
/// group's current name with the endpoint's id of it, once pushed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IdpFacts {
    pub people: BTreeMap<String, Person>,
    pub groups: BTreeMap<String, (String, Option<String>)>,
}

/// Reads the IdP's state of `people` and `groups` (each: the run's name, the IdP's id) for
/// `app` through its management API (`url`, `SSWS token`). A person deleted in the IdP keeps
/// the profile `before` last saw, so that they can still be looked up by login; a link the IdP
/// dropped with them, likewise.
pub async fn read_idp(
    client: &reqwest::Client,
    (url, token): (&str, &str),
    app: &str,
    groups: &[(String, String)],
    people: &[(String, String)],
    before: &IdpFacts,
) -> Result<IdpFacts, String> {
    use futures::StreamExt;
    let get =
        |path: String| async move { crate::targets::idp_find(client, url, token, &path).await };
    let group_of: BTreeMap<&str, &str> = groups
        .iter()
        .map(|(name, id)| (id.as_str(), name.as_str()))
        .collect();
    let mappings = get(format!("/api/v1/apps/{app}/group-push/mappings"))
        .await?
        .unwrap_or(Value::Null);
    let mut facts = IdpFacts::default();
    for (name, id) in groups {
        let shown = get(format!("/api/v1/groups/{id}"))
            .await?
            .and_then(|g| g["profile"]["name"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let linked = mappings
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["sourceGroupId"] == id.as_str())
            .and_then(|m| m["targetGroupId"].as_str())
            .map(str::to_owned);
        facts.groups.insert(name.clone(), (shown, linked));
    }
    let reads = futures::stream::iter(people.iter().map(|(name, id)| {
        let (get, group_of) = (&get, &group_of);
        async move {
            let earlier = before.people.get(name);
            let user = get(format!("/api/v1/users/{id}")).await?;
            let groups = match &user {
                Some(_) => get(format!("/api/v1/users/{id}/groups"))
                    .await?
                    .and_then(|g| g.as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|g| g["id"].as_str().and_then(|g| group_of.get(g)))
                    .map(|g| (*g).to_owned())
                    .collect(),
                None => BTreeSet::new(),
            };
            let linked = get(format!("/api/v1/apps/{app}/users/{id}"))
                .await?
                .and_then(|u| u["externalId"].as_str().map(str::to_owned))
                .or_else(|| earlier.and_then(|p| p.linked.clone()));
            let profile = match &user {
                Some(u) => u["profile"].as_object().cloned().unwrap_or_default(),
                None => earlier.map(|p| p.profile.clone()).unwrap_or_default(),
            };
            let status = user.and_then(|u| u["status"].as_str().map(str::to_owned));
            Ok::<_, String>((
                name.clone(),
                Person {
                    id: id.clone(),
                    status,
                    profile,
                    groups,
                    linked,
                },
            ))
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    for read in reads {
        let (name, person) = read?;
        facts.people.insert(name, person);
    }
    Ok(facts)
}

/// Statuses in which Okta provisions an assigned user (mock-idp's docs, dialects.md §1).
const PROVISIONED: &[&str] = &[
    "ACTIVE",
    "PROVISIONED",
    "RECOVERY",
    "PASSWORD_EXPIRED",
    "LOCKED_OUT",
];

fn user_subject(name: &str) -> String {
    format!("user {name}")
}

fn group_subject(name: &str) -> String {
    format!("group {name}")
}

/// The attributes the default mapping sends for a profile (Okta's SCIM 2.0 app profile,
/// dialects.md §5.1): SCIM path and value, only where the profile has a value.
pub fn mapped(id: &str, profile: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
    let text = |k: &str| {
        profile
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let display = [text("firstName"), text("lastName")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = BTreeMap::new();
    let mut put = |path: String, value: Option<String>| {
        if let Some(v) = value {
            out.insert(path, v);
        }
    };
    put("userName".into(), text("login"));
    put("externalId".into(), Some(id.to_owned()));
    put("name.givenName".into(), text("firstName"));
    put("name.familyName".into(), text("lastName"));
    put(
        "displayName".into(),
        (!display.is_empty()).then_some(display),
    );
    put(WORK_EMAIL.into(), text("email"));
    put("title".into(), text("title"));
    put(format!("{ENTERPRISE_USER}:department"), text("department"));
    put(
        format!("{ENTERPRISE_USER}:employeeNumber"),
        text("employeeNumber"),
    );
    out
}

/// What the endpoint must show now, from the IdP's state. `known` holds everyone the
/// endpoint has been due to hold at some point (it grows): a leaver who was provisioned stays,
/// deactivated, except that Entra deletes a user deleted in the IdP.
pub fn due(idp: &IdpFacts, known: &mut BTreeSet<String>, dialect: Dialect) -> Facts {
    let mut out = Facts::new();
    let mut active_members: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, p) in &idp.people {
        let s = user_subject(name);
        let wanted = p
            .status
            .as_deref()
            .is_some_and(|st| PROVISIONED.contains(&st))
            && !p.groups.is_empty();
        let (exists, active) = if wanted {
            known.insert(name.clone());
            (true, Some(true))
        } else if !known.contains(name)
            || (p.status.is_none() && mock_idp::dialect::speech(dialect).deletes_users())
        {
            (false, None)
        } else {
            (true, Some(false))
        };
        out.insert((s.clone(), "exists".into()), exists.to_string());
        if let Some(linked) = p.linked.as_ref().filter(|_| exists) {
            out.insert((s.clone(), "id".into()), linked.clone());
        }
        if let Some(active) = active {
            out.insert((s.clone(), "active".into()), active.to_string());
        }
        if wanted {
            for (path, value) in mapped(&p.id, &p.profile) {
                out.insert((s.clone(), path), value);
            }
            for g in &p.groups {
                active_members.entry(g).or_default().insert(name);
            }
        }
    }
    for (group, (shown, linked)) in &idp.groups {
        let s = group_subject(group);
        out.insert((s.clone(), "displayName".into()), shown.clone());
        if let Some(linked) = linked {
            out.insert((s.clone(), "id".into()), linked.clone());
        }
        let members = active_members.remove(group.as_str()).unwrap_or_default();
        out.insert(
            (s, "members".into()),
            members.into_iter().collect::<Vec<_>>().join(", "),
        );
    }
    out
}

/// A difference between what is due and what the endpoint shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    pub target: String,
    pub subject: String,
    pub attribute: String,
    pub expected: String,
    pub actual: String,
    /// The step since which the expected value has been due (0: set-up); `None` where no
    /// steps were recorded (a load run is judged once, at its end).
    pub since_step: Option<usize>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: ", self.target, self.subject)?;
        if self.attribute == "members" {
            // Member lists are long: name who is missing and who should not be there.
            let set = |t: &str| -> BTreeSet<String> {
                t.split(", ")
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            let (due, seen) = (set(&self.expected), set(&self.actual));
            let missing: Vec<&String> = due.difference(&seen).collect();
            let extra: Vec<&String> = seen.difference(&due).collect();
            write!(f, "members miss {missing:?} and wrongly hold {extra:?}")?;
        } else {
            write!(
                f,
                "{} is {:?}, due {:?}",
                self.attribute, self.actual, self.expected
            )?;
        }
        match self.since_step {
            Some(step) => write!(f, " since step {step}"),
            None => Ok(()),
        }
    }
}

/// Whether two values are the same for this attribute: userName and emails are
/// case-insensitive in SCIM (RFC 7643 §4.1.1, §4.1.2).
fn same(attribute: &str, expected: &str, actual: &str) -> bool {
    if attribute == "userName" || attribute.starts_with("emails") {
        expected.eq_ignore_ascii_case(actual)
    } else {
        expected == actual
    }
}

/// Every due fact the endpoint does not show. `history` holds the due facts after set-up and
/// after each step (the last is now). A user who does not exist is one difference, not one
/// per attribute.
pub fn compare(target: &str, history: &[Facts], seen: &Facts) -> Vec<Difference> {
    let Some(now) = history.last() else {
        return Vec::new();
    };
    let missing: BTreeSet<&str> = now
        .iter()
        .filter(|((_, a), v)| a == "exists" && *v == "true")
        .filter(|(k, _)| seen.get(*k).map(String::as_str) == Some("false"))
        .map(|((s, _), _)| s.as_str())
        .collect();
    let mut out = Vec::new();
    for (key, expected) in now {
        let (subject, attribute) = key;
        if attribute != "exists" && missing.contains(subject.as_str()) {
            continue;
        }
        let actual = seen.get(key).map_or(NOTHING, String::as_str);
        if same(attribute, expected, actual) {
            continue;
        }
        let since_step = (history.len() > 1).then(|| {
            history
                .iter()
                .rposition(|facts| facts.get(key) != Some(expected))
                .map_or(0, |i| i + 1)
        });
        out.push(Difference {
            target: target.to_owned(),
            subject: subject.clone(),
            attribute: attribute.clone(),
            expected: expected.clone(),
            actual: actual.to_owned(),
            since_step,
        });
    }
    out
}

/// The value at a mapped SCIM path in a resource, as text; attribute names match without
/// regard to case (RFC 7643 §2.1).
pub fn value_at(resource: &Value, path: &str) -> Option<String> {
    fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
        v.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
    fn text(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
            _ => None,
        }
    }
    if let Some((urn, attr)) = path.rsplit_once(':').filter(|_| path.starts_with("urn:")) {
        return field(field(resource, urn)?, attr).and_then(text);
    }
    if path == WORK_EMAIL {
        let emails = field(resource, "emails")?.as_array()?;
        let work = emails
            .iter()
            .find(|e| field(e, "type").and_then(Value::as_str) == Some("work"))?;
        return field(work, "value").and_then(text);
    }
    let mut at = resource;
    for part in path.split('.') {
        at = field(at, part)?;
    }
    text(at)
}

/// The endpoint, its client, and the run's tag.
#[derive(Debug)]
pub struct ScimTarget {
    pub name: String,
    pub url: String,
    pub push: PushAuth,
    reader: Target,
    /// Every login and group name this run makes carries it.
    pub tag: String,
}

/// What the clean-up did: resources deleted, and those it could not (left behind).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cleanup {
    pub deleted: usize,
    pub left: Vec<String>,
}

impl ScimTarget {
    pub fn new(spec: &ScimSpec, push: PushAuth, reader: Target, tag: &str) -> ScimTarget {
        ScimTarget {
            name: spec.name.clone(),
            url: spec.url.clone(),
            push,
            reader,
            tag: tag.to_owned(),
        }
    }

    async fn json(&self, path: &str) -> Result<(u16, Value), String> {
        let ex = self.reader.get(path).await?;
        Ok((ex.status, ex.json().unwrap_or(Value::Null)))
    }

    /// Resources of `kind` (`Users`, `Groups`) whose `attribute` equals `value`.
    pub(crate) async fn find(
        &self,
        kind: &str,
        attribute: &str,
        value: &str,
    ) -> Result<Vec<Value>, String> {
        let filter = encode(&format!("{attribute} eq \"{value}\""));
        let path = format!("/{kind}?filter={filter}");
        match self.json(&path).await? {
            (200, body) => Ok(body["Resources"].as_array().cloned().unwrap_or_default()),
            (status, body) => Err(format!(
                "{}: GET {path} answered {status} {}",
                self.name,
                excerpt(&body)
            )),
        }
    }

    /// Read-only checks before anything is written: the endpoint answers with the run's
    /// credentials and filters users and groups by name, as the IdP's look-ups need.
    pub async fn preflight(&self) -> Result<(), String> {
        let (status, body) = self.json("/ServiceProviderConfig").await?;
        if status != 200 {
            return Err(format!(
                "{}: GET /ServiceProviderConfig answered {status} {}: check the URL and the credentials",
                self.name,
                excerpt(&body)
            ));
        }
        let probe = format!("preflight.{}@scimlab.test", self.tag);
        let users = self.find("Users", "userName", &probe).await?;
        if !users.is_empty() {
            return Err(format!(
                "{}: userName eq \"{probe}\" matched {} users, but none has that name: the filter is not applied",
                self.name,
                users.len()
            ));
        }
        self.find("Groups", "displayName", &format!("{}-preflight", self.tag))
            .await?;
        Ok(())
    }

    /// What the endpoint shows for the people and groups the IdP knows (each looked up by
    /// its name; a group also by the id the IdP linked), as the facts [`due`] produces, and
    /// each person's resource as read.
    pub async fn read_back(
        &self,
        idp: &IdpFacts,
    ) -> Result<(Facts, BTreeMap<String, Value>), String> {
        let mut seen = Facts::new();
        let mut resources = BTreeMap::new();
        let paths = mapped_paths();
        let mut names_by_id: BTreeMap<String, String> = BTreeMap::new();
        for (name, person) in &idp.people {
            let s = user_subject(name);
            let login = person
                .profile
                .get("login")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let idp_id = &person.id;
            let found = self.find("Users", "userName", login).await?;
            let mut put = |attribute: &str, value: String| {
                seen.insert((s.clone(), attribute.to_owned()), value);
            };
            put("exists", (!found.is_empty()).to_string());
            let Some(resource) = found.first() else {
                continue;
            };
            resources.insert(name.clone(), resource.clone());
            if found.len() > 1 {
                put("userName", format!("{} resources have it", found.len()));
            }
            let id = resource["id"].as_str().unwrap_or_default().to_owned();
            names_by_id.insert(id.clone(), name.clone());
            put("id", id.clone());
            if let Some(active) = value_at(resource, "active") {
                put("active", active);
            }
            for path in &paths {
                if let Some(v) = value_at(resource, path) {
                    put(path, v);
                }
            }
            let by_external = self.find("Users", "externalId", idp_id).await?;
            if !by_external.iter().any(|r| r["id"] == json!(id)) {
                put(
                    "externalId",
                    format!(
                        "{} (externalId eq finds {} other resources)",
                        value_at(resource, "externalId").unwrap_or_else(|| NOTHING.into()),
                        by_external.len()
                    ),
                );
            }
        }
        for (name, (shown, linked)) in &idp.groups {
            let s = group_subject(name);
            let found = self.find("Groups", "displayName", shown).await?;
            if let Some(id) = found.first().and_then(|g| g["id"].as_str()) {
                seen.insert((s.clone(), "id".into()), id.to_owned());
            }
            let resource = match linked {
                Some(id) => match self.json(&format!("/Groups/{}", encode(id))).await? {
                    (200, g) => Some(g),
                    _ => None,
                },
                None => None,
            }
            .or_else(|| found.first().cloned());
            let Some(group) = resource else {
                continue;
            };
            if let Some(v) = value_at(&group, "displayName") {
                seen.insert((s.clone(), "displayName".into()), v);
            }
            let members: BTreeSet<String> = group["members"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["value"].as_str())
                .map(|id| {
                    names_by_id
                        .get(id)
                        .cloned()
                        .unwrap_or_else(|| format!("unknown id {id}"))
                })
                .collect();
            seen.insert(
                (s, "members".into()),
                members.into_iter().collect::<Vec<_>>().join(", "),
            );
        }
        Ok((seen, resources))
    }

    /// Deletes what the run made: users by login and groups by name, each only when the
    /// name it has on the endpoint carries the run's tag; then looks again for leftovers.
    pub async fn clean_up(&self, logins: &[String], group_names: &[String]) -> Cleanup {
        let mut done = Cleanup::default();
        let wanted = [
            ("Users", "userName", logins),
            ("Groups", "displayName", group_names),
        ];
        for (kind, attribute, names) in wanted {
            for name in names.iter().filter(|n| n.contains(&self.tag)) {
                let found = match self.find(kind, attribute, name).await {
                    Ok(found) => found,
                    Err(why) => {
                        done.left.push(why);
                        continue;
                    }
                };
                for r in found {
                    let (Some(id), Some(shown)) = (r["id"].as_str(), value_at(&r, attribute))
                    else {
                        continue;
                    };
                    if !shown.contains(&self.tag) {
                        continue;
                    }
                    let path = format!("/{kind}/{}", encode(id));
                    match self.reader.send(Method::DELETE, &path, None, &[]).await {
                        Ok(ex) if ex.status == 204 || ex.status == 200 || ex.status == 404 => {
                            done.deleted += 1;
                        }
                        Ok(ex) => done
                            .left
                            .push(format!("{shown}: DELETE {path} answered {}", ex.status)),
                        Err(why) => done.left.push(format!("{shown}: {why}")),
                    }
                }
                if let Ok(still) = self.find(kind, attribute, name).await {
                    if !still.is_empty() {
                        done.left.push(format!("{kind} {name} is still there"));
                    }
                }
            }
        }
        done
    }
}

/// Every path the mapping can send (the profile attributes it reads may be absent).
fn mapped_paths() -> Vec<String> {
    let full: serde_json::Map<String, Value> = [
        "login",
        "firstName",
        "lastName",
        "email",
        "title",
        "department",
        "employeeNumber",
    ]
    .iter()
    .map(|k| ((*k).to_owned(), json!("x")))
    .collect();
    mapped("x", &full).into_keys().collect()
}

fn excerpt(body: &Value) -> String {
    let text = body.to_string();
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn person(id: &str, status: Option<&str>, groups: &[&str]) -> Person {
        Person {
            id: id.into(),
            status: status.map(str::to_owned),
            profile: json!({"login": format!("{id}@x.test"), "firstName": "A", "lastName": "B"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            linked: None,
        }
    }

    fn key(s: &str, a: &str) -> Key {
        (s.to_owned(), a.to_owned())
    }

    #[test]
    fn specs_parse_with_and_without_a_name() {
        assert_eq!(
            "http://127.0.0.1:8080/v2/".parse::<ScimSpec>(),
            Ok(ScimSpec {
                name: "scim".into(),
                url: "http://127.0.0.1:8080/v2".into()
            })
        );
        let named: ScimSpec = "vendor=https://x.test/scim/v2".parse().expect("parses");
        assert_eq!(
            (named.name.as_str(), named.url.as_str()),
            ("vendor", "https://x.test/scim/v2")
        );
        assert!("ftp://x".parse::<ScimSpec>().is_err());
        assert!("bad name=http://x".parse::<ScimSpec>().is_err());
    }

    #[test]
    fn leavers_stay_deactivated_but_entra_deletes_the_deleted() {
        let mut idp = IdpFacts::default();
        idp.groups.insert("Eng".into(), ("t-Eng".into(), None));
        idp.people
            .insert("ann".into(), person("1", Some("ACTIVE"), &["Eng"]));
        idp.people
            .insert("bob".into(), person("2", Some("ACTIVE"), &[]));
        let mut known = BTreeSet::new();
        let first = due(&idp, &mut known, Dialect::Okta);
        assert_eq!(first[&key("user ann", "active")], "true");
        assert_eq!(first[&key("user ann", "externalId")], "1");
        assert_eq!(first[&key("user bob", "exists")], "false", "never assigned");
        assert_eq!(first[&key("group Eng", "members")], "ann");

        idp.people
            .insert("ann".into(), person("1", Some("DEPROVISIONED"), &["Eng"]));
        let okta = due(&idp, &mut known.clone(), Dialect::Okta);
        assert_eq!(okta[&key("user ann", "active")], "false");
        assert_eq!(
            okta[&key("group Eng", "members")],
            "",
            "a leaver leaves pushed groups"
        );
        idp.people.insert("ann".into(), person("1", None, &[]));
        let entra = due(&idp, &mut known.clone(), Dialect::Entra);
        assert_eq!(entra[&key("user ann", "exists")], "false");
        let okta = due(&idp, &mut known, Dialect::Okta);
        assert_eq!(
            okta[&key("user ann", "exists")],
            "true",
            "Okta never deletes"
        );
    }

    #[test]
    fn a_difference_names_the_step_since_which_it_is_due() {
        let mut before = Facts::new();
        before.insert(key("user ann", "exists"), "true".into());
        before.insert(key("user ann", "title"), "Dev".into());
        let mut after = before.clone();
        after.insert(key("user ann", "title"), "Lead".into());
        let history = vec![before.clone(), before.clone(), after.clone(), after];
        let mut seen = before;
        let found = compare("v", &history, &seen);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (
                found[0].attribute.as_str(),
                found[0].expected.as_str(),
                found[0].actual.as_str(),
                found[0].since_step
            ),
            ("title", "Lead", "Dev", Some(2))
        );
        seen.insert(key("user ann", "exists"), "false".into());
        let found = compare("v", &history, &seen);
        assert_eq!(
            found.len(),
            1,
            "a missing user is one difference: {found:?}"
        );
        assert_eq!(found[0].attribute, "exists");
    }

    #[test]
    fn values_are_read_at_mapped_paths_whatever_the_case() {
        let r = json!({"UserName": "Ann@X.test", "name": {"familyName": "Lee"}, "active": false,
            "emails": [{"type": "home", "value": "h@x"}, {"type": "work", "value": "w@x"}],
            ENTERPRISE_USER: {"department": "R&D"}});
        assert_eq!(value_at(&r, "userName").as_deref(), Some("Ann@X.test"));
        assert_eq!(value_at(&r, "name.familyName").as_deref(), Some("Lee"));
        assert_eq!(value_at(&r, "active").as_deref(), Some("false"));
        assert_eq!(value_at(&r, WORK_EMAIL).as_deref(), Some("w@x"));
        let dept = format!("{ENTERPRISE_USER}:department");
        assert_eq!(value_at(&r, &dept).as_deref(), Some("R&D"));
        assert!(same("userName", "ann@x.test", "Ann@X.test"));
        assert!(!same("title", "dev", "Dev"));
    }

    proptest! {
        /// What the endpoint shows exactly as due is never a difference; changing any one
        /// fact is exactly one difference, about that fact.
        #[test]
        fn comparison_finds_exactly_what_differs(
            facts in proptest::collection::btree_map(("[a-c]", "[a-e]"), "[a-z]{0,4}", 1..12),
            pick in any::<prop::sample::Index>(),
        ) {
            let facts: Facts = facts.into_iter()
                .map(|((s, a), v)| ((format!("group {s}"), a), v)).collect();
            let history = vec![facts.clone()];
            prop_assert!(compare("t", &history, &facts).is_empty());
            let (k, v) = facts.iter().nth(pick.index(facts.len())).map(|(k, v)| (k.clone(), v.clone())).expect("non-empty");
            let mut seen = facts.clone();
            seen.insert(k.clone(), format!("{v}!"));
            let found = compare("t", &history, &seen);
            prop_assert_eq!(found.len(), 1);
            prop_assert_eq!(&(found[0].subject.clone(), found[0].attribute.clone()), &k);
            prop_assert_eq!(found[0].since_step, None, "one view: no step to name");
        }
    }
}
