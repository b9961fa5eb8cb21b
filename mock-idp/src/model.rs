//! The IdP's records on sled: users, groups, memberships, apps with their assignments and
//! pushed groups, what each app was last told about each user and group, target ids, and the
//! provisioning outbox.
//!
//! Every API change runs in a [`Tx`]: it edits an overlay of the state, then [`Tx::finish`]
//! compares what each app should now hold with what it was last told and appends the outbox
//! entries that close the gap. Records, outbox entries and system-log events are written by one
//! sled batch, so a change is never stored without its provisioning work, nor the reverse.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{SecondsFormat, Utc};
use mockkit::sim::{Changes, RecordState, RecordStore};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::dialect::speech;
use crate::error::OktaError;
use crate::mapping::{self, Mapping};

pub type Store = RecordStore<Org>;

pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// When an entry was accepted, to the microsecond, for latency figures.
pub fn now_micros() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// An Okta-style id: a three-character type prefix and 17 base-62 characters.
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = rand::random::<u128>();
    let mut id = String::with_capacity(20);
    id.push_str(prefix);
    for _ in 0..17 {
        id.push(ALPHABET[(n % 62) as usize] as char);
        n /= 62;
    }
    id
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Staged,
    Provisioned,
    Active,
    Recovery,
    PasswordExpired,
    LockedOut,
    Suspended,
    Deprovisioned,
}

impl Status {
    /// Statuses in which an assigned user is active in the apps.
    pub fn provisionable(self) -> bool {
        !matches!(
            self,
            Status::Staged | Status::Suspended | Status::Deprovisioned
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub status: Status,
    pub created: String,
    pub activated: Option<String>,
    pub status_changed: Option<String>,
    pub last_updated: String,
    pub password_changed: Option<String>,
    pub profile: Map<String, Value>,
}

impl User {
    pub fn login(&self) -> &str {
        self.profile
            .get("login")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub created: String,
    pub last_updated: String,
    pub last_membership_updated: String,
    pub name: String,
    pub description: Option<String>,
}

/// How an IdP speaks SCIM: the one spelling of the dialect, from `mock-idp`'s apps to the
/// harness's `--dialect` flags and scenario files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// Okta's OIN SCIM 2.0 client (dialects.md §1).
    Okta,
    /// Entra ID's default SCIM client, without the `aadOptscim062020` flag (dialects.md §2).
    Entra,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Okta => "okta",
            Dialect::Entra => "entra",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub base_url: String,
    /// Sent as `Authorization: Bearer`; never shown by the API. Empty with `oauth`.
    pub token: String,
    pub enabled: bool,
    /// Fetch bearer tokens by OAuth 2.0 client credentials instead of sending `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthConnection>,
}

/// A connection's OAuth 2.0 client (as Entra's "OAuth2 client credentials grant" setting:
/// token endpoint, client id, client secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthConnection {
    pub token_url: String,
    pub client_id: String,
    /// Never shown by the API.
    pub client_secret: String,
}

/// The app's provisioning capabilities (Okta: "To App" settings).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    pub create: bool,
    pub update: bool,
    /// Deactivate and reactivate.
    pub deactivate: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub id: String,
    pub name: String,
    pub label: String,
    pub active: bool,
    pub created: String,
    pub last_updated: String,
    pub sign_on_mode: String,
    pub dialect: Dialect,
    pub mappings: Vec<Mapping>,
    pub connection: Option<Connection>,
    pub features: Features,
}

impl App {
    /// Provisioning runs: the app is active and its connection is enabled.
    pub fn provisioning(&self) -> bool {
        self.active && self.connection.as_ref().is_some_and(|c| c.enabled)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppUser {
    pub app: String,
    pub user: String,
    pub created: String,
    pub profile: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppGroup {
    pub app: String,
    pub group: String,
    pub priority: u64,
    pub created: String,
}

/// A group pushed to an app (Okta's group push mapping).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Push {
    pub id: String,
    pub app: String,
    pub group: String,
    pub active: bool,
    pub created: String,
    pub last_updated: String,
}

/// What an app was last told about a user (its existence: the user was created there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSync {
    pub app: String,
    pub user: String,
    pub active: bool,
    /// The mapped SCIM attributes last sent, by SCIM path.
    pub attrs: BTreeMap<String, String>,
    /// The IdP id of the manager last linked (Entra's reference attribute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
}

/// What an app was last told about a pushed group. Its members are `MemberSync` records, one
/// per member, so a membership change writes one small record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSync {
    pub app: String,
    pub group: String,
    pub name: String,
    /// Members as data folders written before `MemberSync` kept them; [`migrate`] moves them.
    #[serde(default, skip_serializing)]
    pub members: BTreeSet<String>,
}

/// An IdP id and the id the target gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    pub app: String,
    pub id: String,
    pub scim_id: String,
}

/// One provisioning operation, in the IdP's terms; the dialect turns it into requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Op {
    CreateUser {
        user: String,
        attrs: BTreeMap<String, String>,
    },
    /// `changed`: SCIM paths whose value changed, `None` when it was removed.
    UpdateUser {
        user: String,
        attrs: BTreeMap<String, String>,
        changed: Vec<(String, Option<String>)>,
    },
    Deactivate {
        user: String,
    },
    Reactivate {
        user: String,
    },
    DeleteUser {
        user: String,
    },
    PushGroup {
        group: String,
        name: String,
    },
    RenameGroup {
        group: String,
        name: String,
    },
    /// `add`: (user id, userName).
    Members {
        group: String,
        name: String,
        add: Vec<(String, String)>,
        remove: Vec<String>,
    },
    DeleteGroup {
        group: String,
    },
    /// Links `user` to `manager` (both IdP ids) by the manager's id in the target.
    SetManager {
        user: String,
        manager: String,
    },
}

impl Op {
    /// The System Log event type of this operation's outcome.
    pub fn event_type(&self) -> &'static str {
        match self {
            Op::CreateUser { .. } => "application.provision.user.push",
            Op::UpdateUser { .. } | Op::SetManager { .. } => {
                "application.provision.user.push_profile"
            }
            Op::Deactivate { .. } => "application.provision.user.deactivate",
            Op::Reactivate { .. } => "application.provision.user.reactivate",
            Op::DeleteUser { .. } => "application.provision.user.deprovision",
            Op::PushGroup { .. } => "application.provision.group_push.pushed",
            Op::RenameGroup { .. } => "application.provision.group_push.updated",
            Op::Members { .. } => "application.provision.group_push.push_memberships",
            Op::DeleteGroup { .. } => "application.provision.group_push.removed",
        }
    }

    /// The user or group the operation is about.
    pub fn subject(&self) -> &str {
        match self {
            Op::CreateUser { user, .. }
            | Op::UpdateUser { user, .. }
            | Op::Deactivate { user }
            | Op::Reactivate { user }
            | Op::DeleteUser { user }
            | Op::SetManager { user, .. } => user,
            Op::PushGroup { group, .. }
            | Op::RenameGroup { group, .. }
            | Op::Members { group, .. }
            | Op::DeleteGroup { group } => group,
        }
    }
}

/// An outbox entry: removed once the target acknowledged it, parked after too many attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub app: String,
    pub seq: u64,
    /// Users and groups it holds alone: it waits for every earlier entry naming one of them.
    pub subjects: Vec<String>,
    /// Groups it holds alongside others: membership changes of different users in one group
    /// go concurrently, but wait for (and hold back) that group's own create, rename and delete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<String>,
    pub op: Op,
    /// When the IdP accepted the change (UTC, microseconds).
    pub accepted: String,
    pub attempts: u32,
    /// Unix milliseconds before which it is not tried again.
    pub not_before: i64,
    pub last_error: Option<String>,
    pub parked: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "camelCase")]
pub enum Record {
    User(User),
    Group(Group),
    Member {
        group: String,
        user: String,
    },
    App(App),
    AppUser(AppUser),
    AppGroup(AppGroup),
    Push(Push),
    UserSync(UserSync),
    GroupSync(GroupSync),
    /// The app was told that `user` is a member of pushed group `group`.
    MemberSync {
        app: String,
        group: String,
        user: String,
    },
    Link(Link),
    Entry(Entry),
    Sequence(u64),
}

type Pair = (String, String);

fn pair(a: &str, b: &str) -> Pair {
    (a.to_owned(), b.to_owned())
}

/// (app, group, user)
type Triple = (String, String, String);

fn triple(a: &str, b: &str, c: &str) -> Triple {
    (a.to_owned(), b.to_owned(), c.to_owned())
}

/// The IdP's state in memory, rebuilt from the records at start.
#[derive(Debug, Default)]
pub struct Org {
    pub users: BTreeMap<String, User>,
    logins: HashMap<String, String>,
    pub groups: BTreeMap<String, Group>,
    group_names: HashMap<String, String>,
    /// (group, user)
    members: BTreeSet<Pair>,
    /// (user, group)
    user_groups: BTreeSet<Pair>,
    pub apps: BTreeMap<String, App>,
    pub app_users: BTreeMap<Pair, AppUser>,
    pub app_groups: BTreeMap<Pair, AppGroup>,
    /// (app, group)
    pub pushes: BTreeMap<Pair, Push>,
    user_syncs: HashMap<Pair, UserSync>,
    group_syncs: HashMap<Pair, GroupSync>,
    member_syncs: BTreeSet<Triple>,
    /// (app, IdP id)
    links: HashMap<Pair, Link>,
    /// (app, seq)
    pub outbox: BTreeMap<(String, u64), Entry>,
    next_seq: u64,
}

fn range_of<'a, V>(
    map: &'a BTreeMap<Pair, V>,
    first: &'a str,
) -> impl Iterator<Item = (&'a Pair, &'a V)> + 'a {
    map.range(pair(first, "")..)
        .take_while(move |((a, _), _)| a == first)
}

fn set_range<'a>(set: &'a BTreeSet<Pair>, first: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    set.range(pair(first, "")..)
        .take_while(move |(a, _)| a == first)
        .map(|(_, b)| b.as_str())
}

impl Org {
    pub fn user_by_login(&self, login: &str) -> Option<&User> {
        self.logins
            .get(&login.to_lowercase())
            .and_then(|id| self.users.get(id))
    }

    /// A user by id, or by login as Okta's `/users/{idOrLogin}` allows.
    pub fn find_user(&self, key: &str) -> Option<&User> {
        self.users.get(key).or_else(|| self.user_by_login(key))
    }

    pub fn members_of<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        set_range(&self.members, group)
    }

    pub fn groups_of<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        set_range(&self.user_groups, user)
    }

    /// Members of pushed group `group` as `app` was last told.
    fn member_syncs_of<'a>(
        &'a self,
        app: &'a str,
        group: &'a str,
    ) -> impl Iterator<Item = &'a Triple> + 'a {
        self.member_syncs
            .range(triple(app, group, "")..)
            .take_while(move |(a, g, _)| a == app && g == group)
    }

    /// An app, or Okta's 404.
    pub fn app(&self, id: &str) -> Result<&App, OktaError> {
        self.apps
            .get(id)
            .ok_or_else(|| OktaError::not_found(id, "AppInstance"))
    }

    /// Assigned to the app directly or through a group.
    pub fn is_assigned(&self, app: &str, user: &str) -> bool {
        self.app_users.contains_key(&pair(app, user))
            || self
                .groups_of(user)
                .any(|g| self.app_groups.contains_key(&pair(app, g)))
    }

    pub fn link(&self, app: &str, id: &str) -> Option<&str> {
        self.links.get(&pair(app, id)).map(|l| l.scim_id.as_str())
    }

    pub fn user_sync(&self, app: &str, user: &str) -> Option<&UserSync> {
        self.user_syncs.get(&pair(app, user))
    }

    pub fn app_outbox<'a>(&'a self, app: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.outbox
            .range((app.to_owned(), 0)..)
            .take_while(move |((a, _), _)| a == app)
            .map(|(_, e)| e)
    }

    /// Okta's `syncState` of an app user: in step, waiting, or failed.
    pub fn sync_state(&self, app: &str, user: &str) -> &'static str {
        let mut state = "SYNCHRONIZED";
        for e in self.app_outbox(app) {
            if e.subjects.iter().any(|s| s == user) {
                if e.parked {
                    return "ERROR";
                }
                state = "OUT_OF_SYNC";
            }
        }
        if state == "SYNCHRONIZED" && self.user_sync(app, user).is_none() {
            return "DISABLED";
        }
        state
    }
}

impl RecordState for Org {
    type Record = Record;
    type Error = OktaError;

    fn key(record: &Record) -> String {
        match record {
            Record::User(u) => format!("user/{}", u.id),
            Record::Group(g) => format!("group/{}", g.id),
            Record::Member { group, user } => format!("member/{group}/{user}"),
            Record::App(a) => format!("app/{}", a.id),
            Record::AppUser(a) => format!("appuser/{}/{}", a.app, a.user),
            Record::AppGroup(a) => format!("appgroup/{}/{}", a.app, a.group),
            Record::Push(p) => format!("push/{}/{}", p.app, p.group),
            Record::UserSync(s) => format!("usync/{}/{}", s.app, s.user),
            Record::GroupSync(s) => format!("gsync/{}/{}", s.app, s.group),
            Record::MemberSync { app, group, user } => format!("msync/{app}/{group}/{user}"),
            Record::Link(l) => format!("link/{}/{}", l.app, l.id),
            Record::Entry(e) => format!("outbox/{}/{:020}", e.app, e.seq),
            Record::Sequence(_) => "sequence".to_owned(),
        }
    }

    fn put(&mut self, record: Record) {
        match record {
            Record::User(u) => {
                if let Some(old) = self.users.get(&u.id) {
                    self.logins.remove(&old.login().to_lowercase());
                }
                self.logins.insert(u.login().to_lowercase(), u.id.clone());
                self.users.insert(u.id.clone(), u);
            }
            Record::Group(g) => {
                if let Some(old) = self.groups.get(&g.id) {
                    self.group_names.remove(&old.name.to_lowercase());
                }
                self.group_names.insert(g.name.to_lowercase(), g.id.clone());
                self.groups.insert(g.id.clone(), g);
            }
            Record::Member { group, user } => {
                self.user_groups.insert((user.clone(), group.clone()));
                self.members.insert((group, user));
            }
            Record::App(a) => {
                self.apps.insert(a.id.clone(), a);
            }
            Record::AppUser(a) => {
                self.app_users.insert(pair(&a.app, &a.user), a);
            }
            Record::AppGroup(a) => {
                self.app_groups.insert(pair(&a.app, &a.group), a);
            }
            Record::Push(p) => {
                self.pushes.insert(pair(&p.app, &p.group), p);
            }
            Record::UserSync(s) => {
                self.user_syncs.insert(pair(&s.app, &s.user), s);
            }
            Record::GroupSync(s) => {
                for u in &s.members {
                    self.member_syncs.insert(triple(&s.app, &s.group, u));
                }
                self.group_syncs.insert(pair(&s.app, &s.group), s);
            }
            Record::MemberSync { app, group, user } => {
                self.member_syncs.insert((app, group, user));
            }
            Record::Link(l) => {
                self.links.insert(pair(&l.app, &l.id), l);
            }
            Record::Entry(e) => {
                self.next_seq = self.next_seq.max(e.seq);
                self.outbox.insert((e.app.clone(), e.seq), e);
            }
            Record::Sequence(n) => self.next_seq = self.next_seq.max(n),
        }
    }

    fn remove(&mut self, record: &Record) {
        match record {
            Record::User(u) => {
                self.logins.remove(&u.login().to_lowercase());
                self.users.remove(&u.id);
            }
            Record::Group(g) => {
                self.group_names.remove(&g.name.to_lowercase());
                self.groups.remove(&g.id);
            }
            Record::Member { group, user } => {
                self.members.remove(&pair(group, user));
                self.user_groups.remove(&pair(user, group));
            }
            Record::App(a) => {
                self.apps.remove(&a.id);
            }
            Record::AppUser(a) => {
                self.app_users.remove(&pair(&a.app, &a.user));
            }
            Record::AppGroup(a) => {
                self.app_groups.remove(&pair(&a.app, &a.group));
            }
            Record::Push(p) => {
                self.pushes.remove(&pair(&p.app, &p.group));
            }
            Record::UserSync(s) => {
                self.user_syncs.remove(&pair(&s.app, &s.user));
            }
            Record::GroupSync(s) => {
                self.group_syncs.remove(&pair(&s.app, &s.group));
            }
            Record::MemberSync { app, group, user } => {
                self.member_syncs.remove(&triple(app, group, user));
            }
            Record::Link(l) => {
                self.links.remove(&pair(&l.app, &l.id));
            }
            Record::Entry(e) => {
                self.outbox.remove(&(e.app.clone(), e.seq));
            }
            Record::Sequence(_) => {}
        }
    }

    fn records(&self) -> Vec<Record> {
        let mut out: Vec<Record> = Vec::new();
        out.extend(self.users.values().cloned().map(Record::User));
        out.extend(self.groups.values().cloned().map(Record::Group));
        out.extend(self.members.iter().map(|(g, u)| Record::Member {
            group: g.clone(),
            user: u.clone(),
        }));
        out.extend(self.apps.values().cloned().map(Record::App));
        out.extend(self.app_users.values().cloned().map(Record::AppUser));
        out.extend(self.app_groups.values().cloned().map(Record::AppGroup));
        out.extend(self.pushes.values().cloned().map(Record::Push));
        out.extend(self.user_syncs.values().cloned().map(Record::UserSync));
        out.extend(self.group_syncs.values().cloned().map(Record::GroupSync));
        out.extend(self.member_syncs.iter().cloned().map(member_sync));
        out.extend(self.links.values().cloned().map(Record::Link));
        out.extend(self.outbox.values().cloned().map(Record::Entry));
        out
    }
}

fn member_sync((app, group, user): Triple) -> Record {
    Record::MemberSync { app, group, user }
}

/// Moves the members of `GroupSync` records written by earlier versions into `MemberSync`
/// records, so the next write of such a group cannot drop them.
pub async fn migrate(store: &Store) -> Result<(), OktaError> {
    if store
        .read()
        .group_syncs
        .values()
        .all(|s| s.members.is_empty())
    {
        return Ok(());
    }
    store
        .change(|org, c| {
            for s in org.group_syncs.values().filter(|s| !s.members.is_empty()) {
                for u in &s.members {
                    c.put(member_sync(triple(&s.app, &s.group, u)));
                }
                c.put(Record::GroupSync(GroupSync {
                    members: BTreeSet::new(),
                    ..s.clone()
                }));
            }
            Ok(())
        })
        .await
}

/// Edits over a base map: `Some` replaces, `None` removes.
#[derive(Debug)]
struct Layer<K, V>(BTreeMap<K, Option<V>>);

impl<K: Ord + Clone, V: Clone> Layer<K, V> {
    fn new() -> Self {
        Layer(BTreeMap::new())
    }

    fn get<'a>(&'a self, key: &K, base: Option<&'a V>) -> Option<&'a V> {
        match self.0.get(key) {
            Some(edit) => edit.as_ref(),
            None => base,
        }
    }

    fn set(&mut self, key: K, value: Option<V>) {
        self.0.insert(key, value);
    }

    /// Puts and removes as records; a removal needs the value it removes.
    fn write<R>(
        self,
        c: &mut Changes<Record>,
        base: impl Fn(&K) -> Option<R>,
        record: impl Fn(K, V) -> Record,
        removed: impl Fn(R) -> Record,
    ) {
        for (k, edit) in self.0 {
            match edit {
                Some(v) => c.put(record(k, v)),
                None => {
                    if let Some(old) = base(&k) {
                        c.remove(removed(old));
                    }
                }
            }
        }
    }
}

/// Who made a change, as the System Log shows it.
pub fn admin_actor() -> Value {
    json!({"id": "00uscimlabadmin000000", "type": "User", "alternateId": "admin",
        "displayName": "API token"})
}

pub fn system_actor() -> Value {
    json!({"id": "0oa1okta0system000000", "type": "SystemPrincipal",
        "alternateId": "system@okta.com", "displayName": "Okta System"})
}

pub fn user_target(u: &User) -> Value {
    let name = format!(
        "{} {}",
        u.profile
            .get("firstName")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        u.profile
            .get("lastName")
            .and_then(Value::as_str)
            .unwrap_or_default()
    );
    json!({"id": u.id, "type": "User", "alternateId": u.login(), "displayName": name.trim()})
}

pub fn group_target(g: &Group) -> Value {
    json!({"id": g.id, "type": "UserGroup", "alternateId": "unknown", "displayName": g.name})
}

pub fn app_target(a: &App) -> Value {
    json!({"id": a.id, "type": "AppInstance", "alternateId": a.label, "displayName": a.label})
}

/// One change to the IdP, decided against `org` and written by `finish`.
#[derive(Debug)]
pub struct Tx<'a> {
    org: &'a Org,
    users: Layer<String, User>,
    groups: Layer<String, Group>,
    members: Layer<Pair, ()>,
    apps: Layer<String, App>,
    app_users: Layer<Pair, AppUser>,
    app_groups: Layer<Pair, AppGroup>,
    pushes: Layer<Pair, Push>,
    user_syncs: Layer<Pair, UserSync>,
    group_syncs: Layer<Pair, GroupSync>,
    member_syncs: Layer<Triple, ()>,
    links: Layer<Pair, Link>,
    entries: Vec<Entry>,
    next_seq: u64,
    touched_users: BTreeSet<String>,
    /// Groups planned whole: created, renamed, deleted, pushed or assigned.
    touched_groups: BTreeSet<String>,
    /// (group, user) memberships planned one by one.
    touched_members: BTreeSet<Pair>,
    events: Vec<(String, String, Value)>,
    accepted: String,
    /// Records removed wholesale (an app's).
    dropped: Vec<Record>,
}

impl<'a> Tx<'a> {
    pub fn new(org: &'a Org) -> Tx<'a> {
        Tx {
            org,
            users: Layer::new(),
            groups: Layer::new(),
            members: Layer::new(),
            apps: Layer::new(),
            app_users: Layer::new(),
            app_groups: Layer::new(),
            pushes: Layer::new(),
            user_syncs: Layer::new(),
            group_syncs: Layer::new(),
            member_syncs: Layer::new(),
            links: Layer::new(),
            entries: Vec::new(),
            next_seq: org.next_seq,
            touched_users: BTreeSet::new(),
            touched_groups: BTreeSet::new(),
            touched_members: BTreeSet::new(),
            events: Vec::new(),
            accepted: now_micros(),
            dropped: Vec::new(),
        }
    }

    pub fn org(&self) -> &Org {
        self.org
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.get(&id.to_owned(), self.org.users.get(id))
    }

    /// Puts a user; its provisioning is planned at `finish`.
    pub fn put_user(&mut self, u: User) {
        self.touched_users.insert(u.id.clone());
        self.users.set(u.id.clone(), Some(u));
    }

    /// Deletes a user and its memberships and assignments.
    pub fn delete_user(&mut self, id: &str) {
        for g in self.groups_of(id) {
            self.set_member(&g, id, false);
        }
        let apps: Vec<String> = self.apps().into_iter().map(|a| a.id).collect();
        for app in apps {
            self.set_app_user(&app, id, None);
        }
        self.touched_users.insert(id.to_owned());
        self.users.set(id.to_owned(), None);
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.get(&id.to_owned(), self.org.groups.get(id))
    }

    pub fn group_name_taken(&self, name: &str, except: &str) -> bool {
        self.org
            .group_names
            .get(&name.to_lowercase())
            .is_some_and(|id| id != except && self.group(id).is_some())
    }

    pub fn put_group(&mut self, g: Group) {
        // Apps see a group's name and members only: a membership stamp is not a change to plan.
        if self.group(&g.id).is_none_or(|old| old.name != g.name) {
            self.touched_groups.insert(g.id.clone());
        }
        self.groups.set(g.id.clone(), Some(g));
    }

    pub fn delete_group(&mut self, id: &str) {
        for u in self.members_of(id) {
            self.set_member(id, &u, false);
        }
        let apps: Vec<String> = self.apps().into_iter().map(|a| a.id).collect();
        for app in apps {
            self.set_app_group(&app, id, None);
            self.pushes.set(pair(&app, id), None);
        }
        self.touched_groups.insert(id.to_owned());
        self.groups.set(id.to_owned(), None);
    }

    pub fn is_member(&self, group: &str, user: &str) -> bool {
        let key = pair(group, user);
        self.members
            .get(&key, self.org.members.get(&key).map(|_| &()))
            .is_some()
    }

    pub fn members_of(&self, group: &str) -> Vec<String> {
        let mut out: BTreeSet<String> = self.org.members_of(group).map(str::to_owned).collect();
        for ((_, u), edit) in range_of(&self.members.0, group) {
            match edit {
                Some(()) => out.insert(u.clone()),
                None => out.remove(u),
            };
        }
        out.into_iter().collect()
    }

    pub fn groups_of(&self, user: &str) -> Vec<String> {
        let mut out: BTreeSet<String> = self.org.groups_of(user).map(str::to_owned).collect();
        for ((g, u), edit) in &self.members.0 {
            if u == user {
                match edit {
                    Some(()) => out.insert(g.clone()),
                    None => out.remove(g),
                };
            }
        }
        out.into_iter().collect()
    }

    pub fn set_member(&mut self, group: &str, user: &str, member: bool) {
        self.touched_users.insert(user.to_owned());
        self.touched_members.insert(pair(group, user));
        self.members
            .set(pair(group, user), if member { Some(()) } else { None });
    }

    pub fn app(&self, id: &str) -> Option<&App> {
        self.apps.get(&id.to_owned(), self.org.apps.get(id))
    }

    pub fn apps(&self) -> Vec<App> {
        let ids: BTreeSet<&String> = self.org.apps.keys().chain(self.apps.0.keys()).collect();
        ids.into_iter()
            .filter_map(|id| self.app(id).cloned())
            .collect()
    }

    /// Puts an app and re-plans everything it covers: a changed mapping, feature or connection
    /// takes effect for every assigned user and pushed group.
    pub fn put_app(&mut self, app: App) {
        let id = app.id.clone();
        self.apps.set(id.clone(), Some(app));
        let users: Vec<String> = self.assigned_users(&id);
        self.touched_users.extend(users);
        let groups: Vec<String> = range_of(&self.org.pushes, &id)
            .map(|((_, g), _)| g.clone())
            .collect();
        self.touched_groups.extend(groups);
    }

    /// Deletes an app with its assignments, outbox, links and sync state.
    pub fn delete_app(&mut self, id: &str) {
        let org = self.org;
        let dropped = &mut self.dropped;
        dropped.extend(range_of(&org.app_users, id).map(|(_, a)| Record::AppUser(a.clone())));
        dropped.extend(range_of(&org.app_groups, id).map(|(_, a)| Record::AppGroup(a.clone())));
        dropped.extend(range_of(&org.pushes, id).map(|(_, p)| Record::Push(p.clone())));
        dropped.extend(org.app_outbox(id).cloned().map(Record::Entry));
        let mine = |(app, _): &&Pair| app == id;
        dropped.extend(
            org.user_syncs
                .iter()
                .filter(|(k, _)| mine(k))
                .map(|(_, v)| Record::UserSync(v.clone())),
        );
        dropped.extend(
            org.group_syncs
                .iter()
                .filter(|(k, _)| mine(k))
                .map(|(_, v)| Record::GroupSync(v.clone())),
        );
        dropped.extend(
            org.member_syncs
                .range(triple(id, "", "")..)
                .take_while(|(app, _, _)| app == id)
                .cloned()
                .map(member_sync),
        );
        dropped.extend(
            org.links
                .iter()
                .filter(|(k, _)| mine(k))
                .map(|(_, v)| Record::Link(v.clone())),
        );
        self.apps.set(id.to_owned(), None);
    }

    pub fn app_user(&self, app: &str, user: &str) -> Option<&AppUser> {
        let key = pair(app, user);
        self.app_users.get(&key, self.org.app_users.get(&key))
    }

    pub fn set_app_user(&mut self, app: &str, user: &str, value: Option<AppUser>) {
        self.touched_users.insert(user.to_owned());
        self.app_users.set(pair(app, user), value);
    }

    pub fn app_group(&self, app: &str, group: &str) -> Option<&AppGroup> {
        let key = pair(app, group);
        self.app_groups.get(&key, self.org.app_groups.get(&key))
    }

    pub fn set_app_group(&mut self, app: &str, group: &str, value: Option<AppGroup>) {
        for u in self.members_of(group) {
            self.touched_users.insert(u);
        }
        self.touched_groups.insert(group.to_owned());
        self.app_groups.set(pair(app, group), value);
    }

    pub fn push(&self, app: &str, group: &str) -> Option<&Push> {
        let key = pair(app, group);
        self.pushes.get(&key, self.org.pushes.get(&key))
    }

    pub fn set_push(&mut self, app: &str, group: &str, value: Option<Push>) {
        self.touched_groups.insert(group.to_owned());
        self.pushes.set(pair(app, group), value);
    }

    /// Unlinks a pushed group and leaves it in the target.
    pub fn unlink_group(&mut self, app: &str, group: &str) {
        self.forget_group(app, group);
    }

    fn forget_group(&mut self, app: &str, group: &str) {
        for u in self.member_syncs_of(app, group) {
            self.member_syncs.set(triple(app, group, &u), None);
        }
        self.group_syncs.set(pair(app, group), None);
    }

    fn member_synced(&self, app: &str, group: &str, user: &str) -> bool {
        let key = triple(app, group, user);
        self.member_syncs
            .get(&key, self.org.member_syncs.get(&key).map(|_| &()))
            .is_some()
    }

    fn member_syncs_of(&self, app: &str, group: &str) -> Vec<String> {
        let mut out: BTreeSet<String> = self
            .org
            .member_syncs_of(app, group)
            .map(|(_, _, u)| u.clone())
            .collect();
        let edits = self
            .member_syncs
            .0
            .range(triple(app, group, "")..)
            .take_while(|((a, g, _), _)| a == app && g == group);
        for ((_, _, u), edit) in edits {
            match edit {
                Some(()) => out.insert(u.clone()),
                None => out.remove(u),
            };
        }
        out.into_iter().collect()
    }

    /// Users assigned to the app directly or through an assigned group.
    fn assigned_users(&self, app: &str) -> Vec<String> {
        let mut out: BTreeSet<String> = range_of(&self.org.app_users, app)
            .map(|((_, u), _)| u.clone())
            .collect();
        for ((_, g), _) in range_of(&self.org.app_groups, app) {
            out.extend(self.members_of(g));
        }
        out.into_iter().collect()
    }

    pub fn is_assigned(&self, app: &str, user: &str) -> bool {
        self.app_user(app, user).is_some()
            || self
                .groups_of(user)
                .iter()
                .any(|g| self.app_group(app, g).is_some())
    }

    fn user_sync(&self, app: &str, user: &str) -> Option<&UserSync> {
        let key = pair(app, user);
        self.user_syncs.get(&key, self.org.user_syncs.get(&key))
    }

    fn group_sync(&self, app: &str, group: &str) -> Option<&GroupSync> {
        let key = pair(app, group);
        self.group_syncs.get(&key, self.org.group_syncs.get(&key))
    }

    pub fn event(&mut self, kind: &str, subject: &str, data: Value) {
        self.events
            .push((kind.to_owned(), subject.to_owned(), data));
    }

    /// Logs an admin's change in System Log form.
    pub fn log(&mut self, kind: &str, message: &str, targets: Vec<Value>) {
        let subject = targets
            .first()
            .and_then(|t| t.get("id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        self.event(
            kind,
            &subject,
            json!({"actor": admin_actor(), "displayMessage": message, "target": targets,
                "outcome": {"result": "SUCCESS"}}),
        );
    }

    fn enqueue(&mut self, app: &str, subjects: Vec<String>, op: Op) {
        self.enqueue_sharing(app, subjects, Vec::new(), op);
    }

    fn enqueue_sharing(&mut self, app: &str, subjects: Vec<String>, shared: Vec<String>, op: Op) {
        self.next_seq += 1;
        self.entries.push(Entry {
            app: app.to_owned(),
            seq: self.next_seq,
            subjects,
            shared,
            op,
            accepted: self.accepted.clone(),
            attempts: 0,
            not_before: 0,
            last_error: None,
            parked: false,
        });
    }

    /// Plans what every provisioning app must be told, then writes the change. Returns the apps
    /// that got new outbox entries.
    pub fn finish(mut self, c: &mut Changes<Record>) -> BTreeSet<String> {
        let apps: Vec<App> = self.apps().into_iter().filter(App::provisioning).collect();
        let users = std::mem::take(&mut self.touched_users);
        let groups = std::mem::take(&mut self.touched_groups);
        for app in &apps {
            let mut members = self.touched_members.clone();
            for u in &users {
                if self.plan_user(app, u) {
                    members.extend(self.groups_of(u).into_iter().map(|g| (g, u.clone())));
                }
            }
            for g in &groups {
                self.plan_group(app, g);
            }
            let mut by_group: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (g, u) in members.into_iter().filter(|(g, _)| !groups.contains(g)) {
                by_group.entry(g).or_default().insert(u);
            }
            for (g, users) in by_group {
                if let (Some(group), Some(_)) = (self.group(&g), self.group_sync(&app.id, &g)) {
                    if self.push(&app.id, &g).is_some_and(|p| p.active) {
                        let name = group.name.clone();
                        self.plan_members(app, &g, &name, users);
                    }
                }
            }
        }
        let woken: BTreeSet<String> = self.entries.iter().map(|e| e.app.clone()).collect();
        self.write(c);
        woken
    }

    /// Queues what `app` must do for `user`; true when the user's presence or activity in the
    /// app changed, which changes the app's view of the user's pushed groups.
    fn plan_user(&mut self, app: &App, id: &str) -> bool {
        let user = self.user(id).cloned();
        let sync = self.user_sync(&app.id, id).cloned();
        let key = pair(&app.id, id);
        let subjects = vec![id.to_owned()];
        let Some(user) = user else {
            // Deleted in the IdP: Entra deletes in the target, Okta never does (dialects.md).
            let Some(sync) = sync else { return false };
            let user = id.to_owned();
            if speech(app.dialect).deletes_users() {
                self.enqueue(&app.id, subjects, Op::DeleteUser { user });
            } else if sync.active && app.features.deactivate {
                self.enqueue(&app.id, subjects, Op::Deactivate { user });
            }
            self.user_syncs.set(key, None);
            return true;
        };
        let wanted = self.is_assigned(&app.id, id) && user.status.provisionable();
        let attrs = mapping::render(&app.mappings, &user);
        match sync {
            None => {
                if !wanted || !app.features.create {
                    return false;
                }
                self.enqueue(
                    &app.id,
                    subjects,
                    Op::CreateUser {
                        user: id.to_owned(),
                        attrs: attrs.clone(),
                    },
                );
                self.user_syncs.set(
                    key,
                    Some(UserSync {
                        app: app.id.clone(),
                        user: id.to_owned(),
                        active: true,
                        attrs,
                        manager: None,
                    }),
                );
                self.plan_manager(app, id, &user);
                true
            }
            Some(mut sync) => {
                let was_active = sync.active;
                if was_active != wanted && app.features.deactivate {
                    let op = if wanted {
                        Op::Reactivate {
                            user: id.to_owned(),
                        }
                    } else {
                        Op::Deactivate {
                            user: id.to_owned(),
                        }
                    };
                    self.enqueue(&app.id, subjects.clone(), op);
                    sync.active = wanted;
                }
                if sync.active && attrs != sync.attrs && app.features.update {
                    let changed = mapping::diff(&sync.attrs, &attrs);
                    self.enqueue(
                        &app.id,
                        subjects,
                        Op::UpdateUser {
                            user: id.to_owned(),
                            attrs: attrs.clone(),
                            changed,
                        },
                    );
                    sync.attrs = attrs;
                }
                let changed = was_active != sync.active;
                self.user_syncs.set(key, Some(sync));
                self.plan_manager(app, id, &user);
                changed
            }
        }
    }

    /// Entra's manager is a reference attribute: once the user and the manager named by the
    /// profile's `managerId` (an IdP id or login) are both in the app, a PATCH links them by
    /// the manager's id in the target, a round trip after the create (dialects.md §2.2). A
    /// manager not in the app is left out until the user changes again; a manager removed
    /// from the profile sends nothing, as Entra cannot provision a null.
    fn plan_manager(&mut self, app: &App, id: &str, user: &User) {
        if !speech(app.dialect).pushes_manager() || !app.features.update {
            return;
        }
        let Some(mut sync) = self.user_sync(&app.id, id).filter(|s| s.active).cloned() else {
            return;
        };
        let manager = user
            .profile
            .get("managerId")
            .and_then(Value::as_str)
            .and_then(|key| self.user(key).or_else(|| self.org.user_by_login(key)))
            .map(|m| m.id.clone())
            .filter(|m| m != id && self.user_sync(&app.id, m).is_some_and(|s| s.active));
        if manager == sync.manager {
            return;
        }
        if let Some(manager) = &manager {
            self.enqueue(
                &app.id,
                vec![id.to_owned(), manager.clone()],
                Op::SetManager {
                    user: id.to_owned(),
                    manager: manager.clone(),
                },
            );
        }
        sync.manager = manager;
        self.user_syncs.set(pair(&app.id, id), Some(sync));
    }

    /// Queues what `app` must do for pushed group `id`: create, rename, membership, delete.
    fn plan_group(&mut self, app: &App, id: &str) {
        let group = self.group(id).cloned();
        let push = self.push(&app.id, id).cloned();
        let sync = self.group_sync(&app.id, id).cloned();
        let key = pair(&app.id, id);
        if push.as_ref().is_some_and(|p| !p.active) && group.is_some() {
            // An inactive push pauses: the target keeps the group as last pushed.
            return;
        }
        let Some(group) = group.filter(|_| push.is_some()) else {
            if sync.is_some() {
                self.enqueue(
                    &app.id,
                    vec![id.to_owned()],
                    Op::DeleteGroup {
                        group: id.to_owned(),
                    },
                );
                self.forget_group(&app.id, id);
            }
            return;
        };
        let mut sync = match sync {
            Some(s) => s,
            None => {
                self.enqueue(
                    &app.id,
                    vec![id.to_owned()],
                    Op::PushGroup {
                        group: id.to_owned(),
                        name: group.name.clone(),
                    },
                );
                GroupSync {
                    app: app.id.clone(),
                    group: id.to_owned(),
                    name: group.name.clone(),
                    members: BTreeSet::new(),
                }
            }
        };
        if sync.name != group.name {
            self.enqueue(
                &app.id,
                vec![id.to_owned()],
                Op::RenameGroup {
                    group: id.to_owned(),
                    name: group.name.clone(),
                },
            );
            sync.name = group.name.clone();
        }
        self.group_syncs.set(key, Some(sync));
        let mut candidates: BTreeSet<String> = self.members_of(id).into_iter().collect();
        candidates.extend(self.member_syncs_of(&app.id, id));
        self.plan_members(app, id, &group.name, candidates);
    }

    /// Queues the membership changes of `users` in pushed group `id`. A member the app knows
    /// as an active user belongs in the target. Entra deletes a deleted user in the target,
    /// which ends its memberships there; Okta only deactivates, so they are removed.
    fn plan_members(&mut self, app: &App, id: &str, name: &str, users: BTreeSet<String>) {
        let mut add: Vec<(String, String)> = Vec::new();
        let mut remove: Vec<String> = Vec::new();
        for u in users {
            let wanted =
                self.is_member(id, &u) && self.user_sync(&app.id, &u).is_some_and(|s| s.active);
            if wanted == self.member_synced(&app.id, id, &u) {
                continue;
            }
            self.member_syncs
                .set(triple(&app.id, id, &u), wanted.then_some(()));
            if wanted {
                let login = self
                    .user(&u)
                    .map(|user| user.login().to_owned())
                    .unwrap_or_default();
                add.push((u, login));
            } else if !speech(app.dialect).deletes_users() || self.user(&u).is_some() {
                remove.push(u);
            }
        }
        if add.is_empty() && remove.is_empty() {
            return;
        }
        let mut subjects: Vec<String> = add.iter().map(|(u, _)| u.clone()).collect();
        subjects.extend(remove.iter().cloned());
        self.enqueue_sharing(
            &app.id,
            subjects,
            vec![id.to_owned()],
            Op::Members {
                group: id.to_owned(),
                name: name.to_owned(),
                add,
                remove,
            },
        );
    }

    fn write(self, c: &mut Changes<Record>) {
        let org = self.org;
        self.users.write(
            c,
            |k| org.users.get(k).cloned(),
            |_, v| Record::User(v),
            Record::User,
        );
        self.groups.write(
            c,
            |k| org.groups.get(k).cloned(),
            |_, v| Record::Group(v),
            Record::Group,
        );
        let member = |(group, user): Pair| Record::Member { group, user };
        self.members.write(
            c,
            |k| org.members.get(k).cloned(),
            |k, ()| member(k),
            member,
        );
        self.apps.write(
            c,
            |k| org.apps.get(k).cloned(),
            |_, v| Record::App(v),
            Record::App,
        );
        self.app_users.write(
            c,
            |k| org.app_users.get(k).cloned(),
            |_, v| Record::AppUser(v),
            Record::AppUser,
        );
        self.app_groups.write(
            c,
            |k| org.app_groups.get(k).cloned(),
            |_, v| Record::AppGroup(v),
            Record::AppGroup,
        );
        self.pushes.write(
            c,
            |k| org.pushes.get(k).cloned(),
            |_, v| Record::Push(v),
            Record::Push,
        );
        self.user_syncs.write(
            c,
            |k| org.user_syncs.get(k).cloned(),
            |_, v| Record::UserSync(v),
            Record::UserSync,
        );
        self.group_syncs.write(
            c,
            |k| org.group_syncs.get(k).cloned(),
            |_, v| Record::GroupSync(v),
            Record::GroupSync,
        );
        self.member_syncs.write(
            c,
            |k| org.member_syncs.get(k).cloned(),
            |k, ()| member_sync(k),
            member_sync,
        );
        self.links.write(
            c,
            |k| org.links.get(k).cloned(),
            |_, v| Record::Link(v),
            Record::Link,
        );
        if self.next_seq != org.next_seq {
            c.put(Record::Sequence(self.next_seq));
        }
        for r in self.dropped {
            c.remove(r);
        }
        for e in self.entries {
            c.put(Record::Entry(e));
        }
        for (kind, subject, data) in self.events {
            c.event(&kind, &subject, data);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn group_sync_members_of_an_older_data_folder_survive_their_group_being_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let legacy = json!({"kind": "groupSync", "value": {"app": "a", "group": "g",
                "name": "Old", "members": ["u1", "u2"]}});
            let records = db.open_tree("records").unwrap();
            records
                .insert("gsync/a/g", serde_json::to_vec(&legacy).unwrap())
                .unwrap();
            db.flush().unwrap();
        }
        let synced = |store: &Store| -> Vec<String> {
            let org = store.read();
            org.member_syncs_of("a", "g")
                .map(|(_, _, u)| u.clone())
                .collect()
        };
        {
            let store = Store::open(dir.path(), true).unwrap();
            migrate(&store).await.unwrap();
            store
                .change(|org, c| {
                    let mut sync = org.group_syncs[&pair("a", "g")].clone();
                    sync.name = "New".into();
                    c.put(Record::GroupSync(sync));
                    Ok(())
                })
                .await
                .unwrap();
            assert_eq!(synced(&store), ["u1", "u2"]);
        }
        let store = Store::open(dir.path(), true).unwrap();
        assert_eq!(synced(&store), ["u1", "u2"]);
        assert_eq!(store.read().group_syncs[&pair("a", "g")].name, "New");
    }
}
