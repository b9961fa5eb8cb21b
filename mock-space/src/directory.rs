//! The Space-like organisation on sled: profiles, teams, memberships, projects, repositories,
//! project access grants and personal tokens, and the permission rules that turn grants into
//! effective permissions.
//!
//! Persistence is `mockkit::sim::RecordStore`: records (`kind/id -> JSON`) and the audit log in
//! one sled tree, the state in memory for reads, one atomic batch per change.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{SecondsFormat, Utc};
use mockkit::sim::{RecordState, RecordStore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Name {
    pub first_name: String,
    pub last_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Email {
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub id: String,
    pub username: String,
    pub name: Name,
    pub emails: Vec<Email>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Deactivated: kept and readable, with no rights and no working tokens.
    pub archived: bool,
    pub joined: Option<String>,
    pub left_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub parent_id: Option<String>,
    pub external_id: Option<String>,
    pub archived: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub id: String,
    pub member: String,
    pub team_id: String,
    pub role_id: Option<String>,
    pub lead: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    pub key: String,
    pub name: String,
    /// Public projects also grant the `organization-member` role to every active member.
    pub private: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    pub project_id: String,
    pub name: String,
}

/// Who a project role is granted to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "lowercase")]
pub enum Grantee {
    Profile(String),
    Team(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    pub project_id: String,
    pub role: String,
    pub grantee: Grantee,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    pub id: String,
    pub profile_id: String,
    pub name: String,
    pub scope: String,
    pub expires: Option<String>,
    pub created: String,
    /// SHA-256 of the secret: the secret itself is shown once and never stored.
    pub digest: String,
    pub revoked: bool,
}

/// One stored record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Record {
    Profile(Profile),
    Team(Team),
    Membership(Membership),
    Project(Project),
    Repository(Repository),
    Grant(Grant),
    Token(Token),
}

impl Record {
    fn key(&self) -> String {
        match self {
            Record::Profile(p) => format!("profile/{}", p.id),
            Record::Team(t) => format!("team/{}", t.id),
            Record::Membership(m) => format!("membership/{}", m.id),
            Record::Project(p) => format!("project/{}", p.id),
            Record::Repository(r) => format!("repository/{}/{}", r.project_id, r.name),
            Record::Grant(g) => format!(
                "grant/{}/{}/{}",
                g.project_id,
                g.role,
                match &g.grantee {
                    Grantee::Profile(id) => format!("p:{id}"),
                    Grantee::Team(id) => format!("t:{id}"),
                }
            ),
            Record::Token(t) => format!("token/{}", t.id),
        }
    }
}

/// The permission rules: which project role grants which permission (`permissions.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct Rules {
    pub permissions: Vec<String>,
    pub roles: BTreeMap<String, BTreeSet<String>>,
}

pub const GRANTABLE_ROLES: [&str; 3] = ["admin", "member", "collaborator"];
const ORGANIZATION_MEMBER: &str = "organization-member";

impl Rules {
    pub fn builtin() -> Rules {
        // The file is part of the crate and checked by a test, so a parse failure is a build bug.
        serde_json::from_str(include_str!("../permissions.json")).unwrap_or_else(|_| Rules {
            permissions: Vec::new(),
            roles: BTreeMap::new(),
        })
    }
}

/// The whole organisation in memory.
#[derive(Debug, Default, Clone)]
pub struct Org {
    pub profiles: BTreeMap<String, Profile>,
    pub teams: BTreeMap<String, Team>,
    pub memberships: BTreeMap<String, Membership>,
    pub projects: BTreeMap<String, Project>,
    pub repositories: BTreeSet<Repository>,
    pub grants: BTreeSet<Grant>,
    pub tokens: BTreeMap<String, Token>,
    token_by_digest: HashMap<String, String>,
    /// Lower-cased username -> profile id (usernames are unique regardless of case).
    by_username: HashMap<String, String>,
    by_external_id: HashMap<String, String>,
    /// Profile id -> ids of its memberships.
    by_member: HashMap<String, BTreeSet<String>>,
}

impl Org {
    fn put(&mut self, r: Record) {
        match r {
            Record::Profile(p) => {
                if let Some(old) = self.profiles.get(&p.id).cloned() {
                    self.unindex(&old);
                }
                self.by_username
                    .insert(p.username.to_lowercase(), p.id.clone());
                if let Some(x) = &p.external_id {
                    self.by_external_id.insert(x.clone(), p.id.clone());
                }
                self.profiles.insert(p.id.clone(), p);
            }
            Record::Team(t) => {
                self.teams.insert(t.id.clone(), t);
            }
            Record::Membership(m) => {
                self.unlink_membership(&m.id);
                self.by_member
                    .entry(m.member.clone())
                    .or_default()
                    .insert(m.id.clone());
                self.memberships.insert(m.id.clone(), m);
            }
            Record::Project(p) => {
                self.projects.insert(p.id.clone(), p);
            }
            Record::Repository(r) => {
                self.repositories.insert(r);
            }
            Record::Grant(g) => {
                self.grants.insert(g);
            }
            Record::Token(t) => {
                self.token_by_digest.insert(t.digest.clone(), t.id.clone());
                self.tokens.insert(t.id.clone(), t);
            }
        }
    }

    fn remove(&mut self, r: &Record) {
        match r {
            Record::Profile(p) => {
                if let Some(old) = self.profiles.remove(&p.id) {
                    self.unindex(&old);
                }
            }
            Record::Team(t) => {
                self.teams.remove(&t.id);
            }
            Record::Membership(m) => {
                self.unlink_membership(&m.id);
                self.memberships.remove(&m.id);
            }
            Record::Project(p) => {
                self.projects.remove(&p.id);
            }
            Record::Repository(r) => {
                self.repositories.remove(r);
            }
            Record::Grant(g) => {
                self.grants.remove(g);
            }
            Record::Token(t) => {
                self.token_by_digest.remove(&t.digest);
                self.tokens.remove(&t.id);
            }
        }
    }

    fn unindex(&mut self, p: &Profile) {
        self.by_username.remove(&p.username.to_lowercase());
        if let Some(x) = &p.external_id {
            self.by_external_id.remove(x);
        }
    }

    /// The profile holding a username (in any case), if any.
    pub fn username_owner(&self, username: &str) -> Option<&String> {
        self.by_username.get(&username.to_lowercase())
    }

    pub fn external_id_owner(&self, external_id: &str) -> Option<&String> {
        self.by_external_id.get(external_id)
    }

    /// Finds a profile by `id:`, `username:`, `email:`, `externalId:` or a bare username.
    pub fn profile(&self, identifier: &str) -> Result<&Profile> {
        let by_username = |u: &str| {
            self.username_owner(u)
                .and_then(|id| self.profiles.get(id))
                .filter(|p| p.username == u)
        };
        let found = match identifier.split_once(':') {
            Some(("id", id)) => self.profiles.get(id),
            Some(("username", u)) => by_username(u),
            Some(("email", e)) => self
                .profiles
                .values()
                .find(|p| p.emails.iter().any(|m| m.email.eq_ignore_ascii_case(e))),
            Some(("externalId", x)) => self
                .external_id_owner(x)
                .and_then(|id| self.profiles.get(id)),
            Some((other, _)) => {
                return Err(ApiError::bad_request(format!(
                "unknown profile identifier '{other}:'; use id:, username:, email: or externalId:"
            )))
            }
            None => by_username(identifier),
        };
        found.ok_or_else(|| ApiError::not_found(format!("profile '{identifier}' not found")))
    }

    pub fn team(&self, id: &str) -> Result<&Team> {
        let id = id.strip_prefix("id:").unwrap_or(id);
        self.teams
            .get(id)
            .ok_or_else(|| ApiError::not_found(format!("team '{id}' not found")))
    }

    /// Finds a project by `key:`, `id:` or a bare key.
    pub fn project(&self, identifier: &str) -> Result<&Project> {
        let found = match identifier.split_once(':') {
            Some(("id", id)) => self.projects.get(id),
            Some(("key", key)) => self.projects.values().find(|p| p.key == key),
            Some((other, _)) => {
                return Err(ApiError::bad_request(format!(
                    "unknown project identifier '{other}:'; use key: or id:"
                )))
            }
            None => self.projects.values().find(|p| p.key == identifier),
        };
        found.ok_or_else(|| ApiError::not_found(format!("project '{identifier}' not found")))
    }

    /// The profile a personal token acts as, if the token is live.
    pub fn token_holder(&self, secret: &str) -> Option<&Profile> {
        let id = self.token_by_digest.get(&digest(secret))?;
        let token = self.tokens.get(id)?;
        let expired = token
            .expires
            .as_deref()
            .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
            .is_some_and(|e| e < Utc::now());
        if token.revoked || expired {
            return None;
        }
        // Revocation alone ends a token: deactivation revokes them (unless a quirk says not).
        self.profiles.get(&token.profile_id)
    }

    fn unlink_membership(&mut self, id: &str) {
        let Some(member) = self.memberships.get(id).map(|m| m.member.clone()) else {
            return;
        };
        if let Some(ids) = self.by_member.get_mut(&member) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_member.remove(&member);
            }
        }
    }

    /// A profile's direct memberships.
    pub fn memberships_of<'a>(&'a self, profile_id: &str) -> impl Iterator<Item = &'a Membership> {
        self.by_member
            .get(profile_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.memberships.get(id))
    }

    /// Teams a profile belongs to: its direct teams and every ancestor of them.
    pub fn teams_of(&self, profile_id: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for m in self.memberships_of(profile_id) {
            let mut next = Some(m.team_id.clone());
            // A cycle cannot be made through the API, but a bound keeps a corrupt one finite.
            while let Some(t) = next.take() {
                let Some(team) = self.teams.get(&t) else {
                    break;
                };
                if team.archived || !out.insert(t) || out.len() > self.teams.len() {
                    break;
                }
                next = team.parent_id.clone();
            }
        }
        out
    }

    /// Every project the profile has a role in: the roles, each with the routes that grant it,
    /// and the permissions they add up to. An archived profile has none.
    pub fn effective(&self, rules: &Rules, profile: &Profile) -> BTreeMap<String, ProjectAccess> {
        let mut out: BTreeMap<String, ProjectAccess> = BTreeMap::new();
        if profile.archived {
            return out;
        }
        let teams = self.teams_of(&profile.id);
        for g in &self.grants {
            let route = match &g.grantee {
                Grantee::Profile(id) if *id == profile.id => "direct".to_owned(),
                Grantee::Team(t) if teams.contains(t) => format!("team:{t}"),
                _ => continue,
            };
            out.entry(g.project_id.clone())
                .or_default()
                .roles
                .entry(g.role.clone())
                .or_default()
                .insert(route);
        }
        for p in self.projects.values().filter(|p| !p.private) {
            out.entry(p.id.clone())
                .or_default()
                .roles
                .entry(ORGANIZATION_MEMBER.into())
                .or_default()
                .insert("organization".into());
        }
        for access in out.values_mut() {
            access.permissions = access
                .roles
                .keys()
                .filter_map(|r| rules.roles.get(r))
                .flatten()
                .cloned()
                .collect();
        }
        out
    }
}

/// A profile's access to one project.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProjectAccess {
    /// role -> the routes granting it (`direct`, `team:<id>`, `organization`).
    pub roles: BTreeMap<String, BTreeSet<String>>,
    pub permissions: BTreeSet<String>,
}

pub fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn new_id() -> String {
    // Space ids are short opaque strings; a UUID without dashes is as opaque.
    uuid::Uuid::new_v4().simple().to_string()
}

/// The organisation, persisted: records and audit log in one sled tree.
pub type Directory = RecordStore<Org>;

impl RecordState for Org {
    type Record = Record;
    type Error = ApiError;

    fn key(r: &Record) -> String {
        r.key()
    }

    fn put(&mut self, r: Record) {
        Org::put(self, r)
    }

    fn remove(&mut self, r: &Record) {
        Org::remove(self, r)
    }

    fn records(&self) -> Vec<Record> {
        self.profiles
            .values()
            .cloned()
            .map(Record::Profile)
            .chain(self.teams.values().cloned().map(Record::Team))
            .chain(self.memberships.values().cloned().map(Record::Membership))
            .chain(self.projects.values().cloned().map(Record::Project))
            .chain(self.repositories.iter().cloned().map(Record::Repository))
            .chain(self.grants.iter().cloned().map(Record::Grant))
            .chain(self.tokens.values().cloned().map(Record::Token))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn profile(id: u8, name: u8, external: Option<u8>) -> Profile {
        Profile {
            id: format!("p{id}"),
            username: format!("{}{name}", if name % 2 == 0 { "u" } else { "U" }),
            name: Name {
                first_name: String::new(),
                last_name: String::new(),
            },
            emails: Vec::new(),
            external_id: external.map(|x| format!("x{x}")),
            archived: false,
            joined: None,
            left_at: None,
        }
    }

    proptest! {
        /// After any sequence of membership puts (a membership may even move to another
        /// profile) and removes, each profile's memberships are exactly what a scan gives.
        #[test]
        fn membership_index_matches_a_scan(ops in prop::collection::vec(
            (any::<bool>(), 0u8..5, 0u8..3, 0u8..2), 0..40)) {
            let mut org = Org::default();
            for (put, id, member, team) in ops {
                let m = Membership {
                    id: format!("m{id}"),
                    member: format!("p{member}"),
                    team_id: format!("t{team}"),
                    role_id: None,
                    lead: false,
                };
                match put {
                    true => org.put(Record::Membership(m)),
                    false => org.remove(&Record::Membership(m)),
                }
            }
            for member in 0..3 {
                let p = format!("p{member}");
                let indexed: Vec<&Membership> = org.memberships_of(&p).collect();
                let scanned: Vec<&Membership> =
                    org.memberships.values().filter(|m| m.member == p).collect();
                prop_assert_eq!(indexed, scanned);
            }
        }
    }

    proptest! {
        /// After any sequence of puts (that the API's uniqueness checks would allow) and
        /// removes, the username and externalId indexes give exactly what a scan gives.
        #[test]
        fn profile_indexes_match_a_scan(ops in prop::collection::vec(
            (any::<bool>(), 0u8..6, 0u8..4, prop::option::of(0u8..3)), 0..40)) {
            let mut org = Org::default();
            for (put, id, name, external) in ops {
                let p = profile(id, name, external);
                let clash = |owner: Option<&String>| owner.is_some_and(|o| *o != p.id);
                if !put {
                    org.remove(&Record::Profile(p));
                } else if !clash(org.username_owner(&p.username))
                    && !clash(p.external_id.as_deref().and_then(|x| org.external_id_owner(x)))
                {
                    org.put(Record::Profile(p));
                }
            }
            for name in 0u8..4 {
                let u = format!("u{name}");
                let scanned = org.profiles.values().find(|p| p.username.eq_ignore_ascii_case(&u)).map(|p| &p.id);
                prop_assert_eq!(org.username_owner(&u), scanned);
            }
            for x in 0u8..3 {
                let x = format!("x{x}");
                let scanned = org.profiles.values().find(|p| p.external_id.as_deref() == Some(&x)).map(|p| &p.id);
                prop_assert_eq!(org.external_id_owner(&x), scanned);
            }
        }
    }

    #[test]
    fn the_builtin_rules_parse_and_name_only_known_permissions() {
        let rules: Rules = serde_json::from_str(include_str!("../permissions.json")).unwrap();
        for role in GRANTABLE_ROLES.iter().chain([&ORGANIZATION_MEMBER]) {
            assert!(rules.roles.contains_key(*role), "{role}");
        }
        for perms in rules.roles.values() {
            for p in perms {
                assert!(rules.permissions.contains(p), "{p}");
            }
        }
    }
}
