//! The TeamCity-like server's state: users, user groups, projects, role assignments and access
//! tokens, persisted by `mockkit::sim::RecordStore`, and the role rules (`roles.json`) that turn
//! assignments into effective permissions per project.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mockkit::sim::{RecordState, RecordStore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{RestError, Result};

pub const ROOT_PROJECT: &str = "_Root";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub username: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub properties: BTreeMap<String, String>,
    /// Keys of the groups the user is a direct member of.
    pub groups: BTreeSet<String>,
    /// SHA-256 of the password, if one was set; never shown.
    pub password_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub parents: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    /// `None` only for `_Root`.
    pub parent: Option<String>,
}

/// Who holds a role assignment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Holder {
    User(u64),
    Group(String),
}

/// A role at a scope: `g` (global) or `p:<projectId>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Assignment {
    pub holder: Holder,
    pub role: String,
    pub scope: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub user: u64,
    pub name: String,
    pub creation_time: String,
    pub expiration_time: Option<String>,
    /// SHA-256 of the value, which is shown once and never stored.
    pub digest: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Record {
    User(User),
    Group(Group),
    Project(Project),
    Assignment(Assignment),
    Token(Token),
}

/// The server's state in memory.
#[derive(Debug, Default)]
pub struct Server {
    pub users: BTreeMap<u64, User>,
    pub groups: BTreeMap<String, Group>,
    pub projects: BTreeMap<String, Project>,
    pub assignments: BTreeSet<Assignment>,
    /// (user, token name) -> token.
    pub tokens: BTreeMap<(u64, String), Token>,
    token_by_digest: HashMap<String, (u64, String)>,
    /// Lower-cased username -> id.
    by_username: HashMap<String, u64>,
}

impl RecordState for Server {
    type Record = Record;
    type Error = RestError;

    fn key(r: &Record) -> String {
        match r {
            Record::User(u) => format!("user/{:020}", u.id),
            Record::Group(g) => format!("group/{}", g.key),
            Record::Project(p) => format!("project/{}", p.id),
            Record::Assignment(a) => format!(
                "assignment/{}/{}/{}",
                match &a.holder {
                    Holder::User(id) => format!("u:{id}"),
                    Holder::Group(key) => format!("g:{key}"),
                },
                a.role,
                a.scope
            ),
            Record::Token(t) => format!("token/{:020}/{}", t.user, t.name),
        }
    }

    fn put(&mut self, r: Record) {
        match r {
            Record::User(u) => {
                if let Some(old) = self.users.get(&u.id) {
                    self.by_username.remove(&old.username.to_lowercase());
                }
                self.by_username.insert(u.username.to_lowercase(), u.id);
                self.users.insert(u.id, u);
            }
            Record::Group(g) => {
                self.groups.insert(g.key.clone(), g);
            }
            Record::Project(p) => {
                self.projects.insert(p.id.clone(), p);
            }
            Record::Assignment(a) => {
                self.assignments.insert(a);
            }
            Record::Token(t) => {
                self.token_by_digest
                    .insert(t.digest.clone(), (t.user, t.name.clone()));
                self.tokens.insert((t.user, t.name.clone()), t);
            }
        }
    }

    fn remove(&mut self, r: &Record) {
        match r {
            Record::User(u) => {
                if let Some(old) = self.users.remove(&u.id) {
                    self.by_username.remove(&old.username.to_lowercase());
                }
            }
            Record::Group(g) => {
                self.groups.remove(&g.key);
            }
            Record::Project(p) => {
                self.projects.remove(&p.id);
            }
            Record::Assignment(a) => {
                self.assignments.remove(a);
            }
            Record::Token(t) => {
                self.token_by_digest.remove(&t.digest);
                self.tokens.remove(&(t.user, t.name.clone()));
            }
        }
    }

    fn records(&self) -> Vec<Record> {
        self.users
            .values()
            .cloned()
            .map(Record::User)
            .chain(self.groups.values().cloned().map(Record::Group))
            .chain(self.projects.values().cloned().map(Record::Project))
            .chain(self.assignments.iter().cloned().map(Record::Assignment))
            .chain(self.tokens.values().cloned().map(Record::Token))
            .collect()
    }
}

pub type Store = RecordStore<Server>;

/// One built-in role (`roles.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct RoleDef {
    pub name: String,
    pub includes: Vec<String>,
    pub permissions: BTreeSet<String>,
    #[serde(default)]
    pub global_only: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Roles {
    pub roles: BTreeMap<String, RoleDef>,
}

impl Roles {
    pub fn builtin() -> Roles {
        // Part of the crate and checked by a test; an empty table would grant nothing.
        serde_json::from_str(include_str!("../roles.json")).unwrap_or(Roles {
            roles: BTreeMap::new(),
        })
    }

    /// A role's permissions with those of every role it includes.
    pub fn permissions(&self, role: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut todo = vec![role.to_owned()];
        while let Some(r) = todo.pop() {
            if !seen.insert(r.clone()) {
                continue;
            }
            if let Some(def) = self.roles.get(&r) {
                out.extend(def.permissions.iter().cloned());
                todo.extend(def.includes.iter().cloned());
            }
        }
        out
    }
}

/// A validated scope: the whole server, or one project (and its subprojects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Global,
    Project(String),
}

impl Scope {
    pub fn parse(server: &Server, text: &str) -> Result<Scope> {
        let invalid = || {
            RestError::not_found(format!(
                "Cannot find scope by '{text}' Valid formats are: 'g' or 'p:<projectId>'."
            ))
        };
        match text.split_once(':') {
            None if text == "g" => Ok(Scope::Global),
            Some(("p", id)) if server.projects.contains_key(id) => {
                Ok(Scope::Project(id.to_owned()))
            }
            _ => Err(invalid()),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Scope::Global => "g".into(),
            Scope::Project(id) => format!("p:{id}"),
        }
    }
}

pub fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Server {
    /// `id:<n>`, `username:<name>`, both (`id:<n>,username:<name>`: the user must match
    /// every dimension, as TeamCity's locators go), or a bare username. A value may be put in
    /// parentheses, so it can hold commas and colons.
    pub fn user(&self, locator: &str) -> Result<&User> {
        let not_found =
            || RestError::not_found(format!("No user can be found by locator '{locator}'."));
        let dimensions = locator_dimensions(locator);
        if dimensions.is_empty() {
            return self.user_by_name(locator).ok_or_else(not_found);
        }
        let mut found: Option<&User> = None;
        for (dimension, value) in dimensions {
            let user = match dimension {
                "id" => value.parse().ok().and_then(|id: u64| self.users.get(&id)),
                "username" => self.user_by_name(value),
                other => {
                    return Err(RestError::bad_request(format!(
                        "Unsupported user locator dimension '{other}'. Supported: id, username."
                    )))
                }
            };
            match (user, found) {
                (Some(u), Some(f)) if u.id != f.id => return Err(not_found()),
                (Some(u), _) => found = Some(u),
                (None, _) => return Err(not_found()),
            }
        }
        found.ok_or_else(not_found)
    }

    pub fn user_by_name(&self, username: &str) -> Option<&User> {
        self.by_username
            .get(&username.to_lowercase())
            .and_then(|id| self.users.get(id))
    }

    /// `key:<KEY>` or a bare key.
    pub fn group(&self, locator: &str) -> Result<&Group> {
        let key = locator.strip_prefix("key:").unwrap_or(locator);
        self.groups.get(key).ok_or_else(|| {
            RestError::not_found(format!("No group can be found by locator '{locator}'."))
        })
    }

    /// `id:<externalId>` or a bare id.
    pub fn project(&self, locator: &str) -> Result<&Project> {
        let id = locator.strip_prefix("id:").unwrap_or(locator);
        self.projects.get(id).ok_or_else(|| {
            RestError::not_found(format!("No project found by locator '{locator}'."))
        })
    }

    pub fn next_user_id(&self) -> u64 {
        self.users.keys().next_back().map_or(1, |id| id + 1)
    }

    /// The user an access token belongs to, if the token exists and has not expired.
    pub fn token_user(&self, secret: &str) -> Option<&User> {
        let key = self.token_by_digest.get(&digest(secret))?;
        let token = self.tokens.get(key)?;
        let expired = token
            .expiration_time
            .as_deref()
            .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
            .is_some_and(|e| e < chrono::Utc::now());
        if expired {
            return None;
        }
        self.users.get(&token.user)
    }

    /// A user's groups: direct ones and every ancestor of them.
    pub fn groups_of(&self, user: &User) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<String> = user.groups.iter().cloned().collect();
        while let Some(g) = todo.pop() {
            if let Some(group) = self.groups.get(&g) {
                if out.insert(g) {
                    todo.extend(group.parents.iter().cloned());
                }
            }
        }
        out
    }

    /// Assignments a user holds, directly or through a group or its ancestors.
    fn held(&self, user: &User) -> Vec<&Assignment> {
        let groups = self.groups_of(user);
        self.assignments
            .iter()
            .filter(|a| match &a.holder {
                Holder::User(id) => *id == user.id,
                Holder::Group(key) => groups.contains(key),
            })
            .collect()
    }

    fn global(roles: &Roles, held: &[&Assignment]) -> BTreeSet<String> {
        held.iter()
            .filter(|a| a.scope == "g")
            .flat_map(|a| roles.permissions(&a.role))
            .collect()
    }

    /// Permissions held at global scope only: what an authorisation check needs, without
    /// walking every project.
    pub fn global_permissions(&self, roles: &Roles, user: &User) -> BTreeSet<String> {
        Self::global(roles, &self.held(user))
    }

    /// A project and its ancestors up to `_Root`.
    fn lineage(&self, project: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = Some(project.to_owned());
        while let Some(p) = next {
            if out.contains(&p) {
                break;
            }
            next = self.projects.get(&p).and_then(|p| p.parent.clone());
            out.push(p);
        }
        out
    }

    /// Effective permissions per project: every role the user holds (directly or through a
    /// group or its ancestors), at global scope or on the project or one of its ancestors,
    /// with included roles expanded. Also returns the global permissions.
    pub fn permissions(&self, roles: &Roles, user: &User) -> Permissions {
        let held = self.held(user);
        let global = Self::global(roles, &held);
        let mut per_project = BTreeMap::new();
        for p in self.projects.keys() {
            let lineage = self.lineage(p);
            let mut perms = global.clone();
            for a in &held {
                if let Some(id) = a.scope.strip_prefix("p:") {
                    if lineage.iter().any(|l| l == id) {
                        perms.extend(roles.permissions(&a.role));
                    }
                }
            }
            if !perms.is_empty() {
                per_project.insert(p.clone(), perms);
            }
        }
        Permissions {
            global,
            per_project,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Permissions {
    pub global: BTreeSet<String>,
    pub per_project: BTreeMap<String, BTreeSet<String>>,
}

/// A locator's `dimension:value` pairs, split at top-level commas; a value in parentheses
/// loses them. A locator without a colon (a bare name) has none.
pub fn locator_dimensions(locator: &str) -> Vec<(&str, &str)> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, ch) in locator.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&locator[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&locator[start..]);
    if !parts.iter().all(|p| p.contains(':')) {
        return Vec::new();
    }
    parts
        .into_iter()
        .filter_map(|p| p.split_once(':'))
        .map(|(dimension, value)| {
            let bare = value
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .unwrap_or(value);
            (dimension, bare)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_roles_parse_and_include_each_other() {
        let roles: Roles = serde_json::from_str(include_str!("../roles.json")).unwrap();
        let admin = roles.permissions("PROJECT_ADMIN");
        for p in [
            "view_project",
            "run_build",
            "administer_agent",
            "edit_project",
        ] {
            assert!(admin.contains(p), "{p}");
        }
        assert!(!roles
            .permissions("PROJECT_DEVELOPER")
            .contains("edit_project"));
        for def in roles.roles.values() {
            for inc in &def.includes {
                assert!(roles.roles.contains_key(inc), "{inc}");
            }
        }
    }

    #[test]
    fn a_project_role_reaches_subprojects_and_groups_pass_roles_down() {
        let mut s = Server::default();
        for (id, parent) in [
            (ROOT_PROJECT, None),
            ("Backend", Some(ROOT_PROJECT)),
            ("Api", Some("Backend")),
            ("Web", Some(ROOT_PROJECT)),
        ] {
            s.put(Record::Project(Project {
                id: id.into(),
                name: id.into(),
                parent: parent.map(Into::into),
            }));
        }
        s.put(Record::Group(Group {
            key: "ENG".into(),
            name: "Eng".into(),
            description: None,
            parents: BTreeSet::new(),
        }));
        s.put(Record::Group(Group {
            key: "API".into(),
            name: "Api team".into(),
            description: None,
            parents: ["ENG".to_owned()].into(),
        }));
        s.put(Record::Assignment(Assignment {
            holder: Holder::Group("ENG".into()),
            role: "PROJECT_DEVELOPER".into(),
            scope: "p:Backend".into(),
        }));
        let user = User {
            id: 1,
            username: "ann".into(),
            name: None,
            email: None,
            properties: BTreeMap::new(),
            groups: ["API".to_owned()].into(),
            password_digest: None,
        };
        s.put(Record::User(user.clone()));
        let perms = s.permissions(&Roles::builtin(), &user);
        assert!(perms.per_project["Api"].contains("run_build"));
        assert!(perms.per_project["Backend"].contains("run_build"));
        assert!(!perms.per_project.contains_key("Web"));
        assert!(!perms.per_project.contains_key(ROOT_PROJECT));
        assert!(perms.global.is_empty());
    }

    #[test]
    fn locators_split_at_top_level_commas_only() {
        assert_eq!(locator_dimensions("id:3"), vec![("id", "3")]);
        assert_eq!(
            locator_dimensions("id:3,username:(a,b:c)"),
            vec![("id", "3"), ("username", "a,b:c")]
        );
        assert!(locator_dimensions("alice").is_empty());
        assert!(locator_dimensions("id:3,alice").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn any_locator_splits_without_panicking(locator in "[a-z:(),0-9]{0,24}") {
            let dims = locator_dimensions(&locator);
            proptest::prop_assert!(dims.len() <= locator.len() + 1);
        }
    }
}
