//! The service provider's operations, independent of HTTP: the axum handlers and `/Bulk` both
//! call these, so a bulk operation behaves exactly like the single request it stands for.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt::Debug;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::cursor::{Cursors, Position};
use crate::error::{Result, ScimError};
use crate::filter::{Compiled, Filter};
use crate::patch::{apply_patch, member_ops, parse_patch_request, touches, MemberOps};
use crate::query::{project, sort_keyed, ListQuery, Projection, SortKey, SortSpec};
use crate::resource::{check_immutable, normalize_resource, Leniency, Normalized};
use crate::schema::{
    group_resource, user_resource, ResourceDef, ResourceKind, ENTERPRISE_USER_URN,
};
use crate::store::{
    decode, encode, hash_secret, member_value, Change, Durability, Members, Store, WriteGuard,
    LINK_KEY, SECRETS_KEY,
};

/// What a provider allows and advertises.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The URL clients reach the provider at, without a trailing slash; used in `location`s.
    pub base_url: String,
    /// `filter.maxResults`: the most resources one page holds.
    pub max_results: usize,
    pub bulk_max_operations: usize,
    pub bulk_max_payload_bytes: usize,
    /// Most operations in one PATCH: bounds the work, and the time a writer lock is held, of
    /// one request. Said in the 413's detail and the docs; RFC 7643 §5 has no field for it.
    pub patch_max_operations: usize,
    /// Largest request body outside `/Bulk`.
    pub max_body_bytes: usize,
    /// `externalId` unique per resource type (IdPs match on it).
    pub external_id_unique: bool,
    /// Group `displayName` unique (Entra ID requires it).
    pub group_display_name_unique: bool,
    pub durability: Durability,
    /// What non-standard input is accepted (for example Entra's `"False"` for a boolean).
    pub leniency: Leniency,
    /// How long an RFC 9865 cursor stays valid (`pagination.cursorTimeout`).
    pub cursor_timeout: std::time::Duration,
    /// Requests each credential may send (429 with `Retry-After` beyond); `None`: unlimited.
    pub rate_limit: Option<crate::rate::RateLimit>,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            base_url: "http://127.0.0.1".into(),
            max_results: 1000,
            bulk_max_operations: 1000,
            bulk_max_payload_bytes: 1 << 20,
            patch_max_operations: 1000,
            max_body_bytes: 1 << 20,
            external_id_unique: true,
            group_display_name_unique: true,
            durability: Durability::Flush,
            leniency: Leniency::default(),
            cursor_timeout: crate::cursor::DEFAULT_TIMEOUT,
            rate_limit: None,
        }
    }
}

/// A resource as the client sees it before projection: derived attributes filled in.
#[derive(Debug, Clone)]
pub struct View {
    pub rt: usize,
    pub id: String,
    pub doc: Map<String, Value>,
    /// Weak ETag, also in `meta.version`.
    pub version: String,
}

/// One page of a list query.
#[derive(Debug, Clone)]
pub struct Page {
    pub total: usize,
    pub start_index: usize,
    pub resources: Vec<Value>,
    /// Set when the query paged by cursor (RFC 9865).
    pub cursors: Option<PageCursors>,
}

/// The cursors of a page: `next` on every page but the last, `previous` on every page but the
/// first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageCursors {
    pub next: Option<String>,
    pub previous: Option<String>,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One resource's change as a backend sees it: `old` absent for a create, `new` for a delete.
/// A Group's documents never hold its members: who joins and who leaves is given apart, so a
/// membership change costs the same whatever the group's size.
#[derive(Debug)]
pub struct BackendChange<'a> {
    pub kind: ResourceKind,
    pub id: &'a str,
    pub old: Option<&'a Map<String, Value>>,
    pub new: Option<&'a Map<String, Value>>,
    /// A Group's members who join (every member, for a create).
    pub joined: &'a [String],
    /// A Group's members who leave, with the links their joining returned (every member, for a
    /// delete).
    pub left: &'a [(String, Option<Value>)],
    /// What the backend returned for this resource last time.
    pub link: Option<&'a Value>,
    /// For reading other resources and links (a group's other members, for example), as they
    /// were before this change.
    pub store: &'a Store,
}

impl BackendChange<'_> {
    /// A Group's members before this change who stay.
    pub fn staying(&self) -> Vec<String> {
        self.store
            .members(self.id)
            .iter()
            .filter_map(member_value)
            .filter(|m| !self.left.iter().any(|(gone, _)| gone == m))
            .map(str::to_owned)
            .collect()
    }

    /// A Group's members after this change.
    pub fn members_after(&self) -> Vec<String> {
        let mut out = self.staying();
        out.extend(self.joined.iter().cloned());
        out
    }
}

/// What a backend keeps from a change it applied.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Links {
    /// The resource's link; `None` keeps the old one.
    pub resource: Option<Value>,
    /// Links of members who joined (a native membership's id, say), by member id.
    pub members: Vec<(String, Value)>,
}

impl From<Option<Value>> for Links {
    /// The resource's link alone.
    fn from(resource: Option<Value>) -> Links {
        Links {
            resource,
            members: Vec::new(),
        }
    }
}

/// The system a connector stands in front of. Each change is applied there first and stored
/// only if that succeeded, so a failure there leaves the SCIM side unchanged.
pub trait Backend: Send + Sync + Debug {
    /// Applies the change; returns the links to keep.
    fn apply<'a>(&'a self, change: BackendChange<'a>) -> BoxFuture<'a, Result<Links>>;
}

/// A SCIM service provider over a sled store.
#[derive(Debug)]
pub struct Provider {
    store: Store,
    defs: Vec<ResourceDef>,
    config: ProviderConfig,
    backend: Option<Arc<dyn Backend>>,
    /// Writers across the await on the backend (the store's own lock is synchronous): held
    /// shared, with the ids involved locked, by a members-only PATCH, by a change that turns
    /// out to change nothing and by every write of a User (with the unique values it claims and,
    /// for a delete, its groups locked too); held alone by the other Group writes, so renames
    /// and member lists replaced whole never race a backend call. Users of a connector are
    /// written concurrently: with a product that flushes every native call, one at a time caps
    /// the connector at a few hundred writes a second.
    writers: tokio::sync::RwLock<()>,
    ids: IdLocks,
    cursors: Cursors,
    limiter: Option<crate::rate::Limiter>,
}

/// A planned update: the new document and the member changes.
type Planned = (Map<String, Value>, Members);

/// How an update holds the writers' lock.
#[derive(Debug)]
enum Writers {
    /// Shared, with these resource ids locked.
    Shared(BTreeSet<String>),
    /// Shared, with the resource's id and the unique values the change claims locked.
    Keyed,
    /// Alone, unless the update turns out to change nothing.
    Alone,
}

impl Writers {
    /// How a write of a resource of this kind holds the writers' lock.
    fn for_kind(kind: ResourceKind) -> Writers {
        match kind {
            ResourceKind::User => Writers::Keyed,
            _ => Writers::Alone,
        }
    }
}

/// Async locks on resource ids, taken in sorted order, so two writers never wait on each
/// other crosswise. An id's lock lives only while someone holds or awaits it.
#[derive(Debug, Default)]
struct IdLocks(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// Held id locks; dropping them (or the wait for them) forgets locks nobody else wants.
struct HeldIds<'a> {
    locks: &'a IdLocks,
    ids: Vec<String>,
    held: Vec<tokio::sync::OwnedMutexGuard<()>>,
}

impl IdLocks {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        // The map is only ever changed whole under its lock: a panic cannot leave it half done.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn lock(&self, ids: &BTreeSet<String>) -> HeldIds<'_> {
        let mut held = HeldIds {
            locks: self,
            ids: ids.iter().cloned().collect(),
            held: Vec::with_capacity(ids.len()),
        };
        for id in ids {
            let lock = self.map().entry(id.clone()).or_default().clone();
            held.held.push(lock.lock_owned().await);
        }
        held
    }
}

impl Drop for HeldIds<'_> {
    fn drop(&mut self) {
        self.held.clear();
        let mut map = self.locks.map();
        for id in &self.ids {
            if map.get(id).is_some_and(|l| Arc::strong_count(l) == 1) {
                map.remove(id);
            }
        }
    }
}

const USERS: usize = 0;
const GROUPS: usize = 1;
/// Most group memberships, direct and indirect, listed in one `User.groups`.
const MAX_GROUPS_LISTED: usize = 10_000;

impl Provider {
    /// Opens (or creates) a provider whose data lives in `dir`.
    pub fn open(dir: &Path, config: ProviderConfig) -> Result<Provider> {
        let defs = Self::build_defs(&config);
        let store = Store::open(dir, &defs, config.durability)?;
        Ok(Self::with_store(store, defs, config))
    }

    /// A provider whose data lives in memory only.
    pub fn temporary(config: ProviderConfig) -> Result<Provider> {
        let defs = Self::build_defs(&config);
        let store = Store::temporary(&defs)?;
        Ok(Self::with_store(store, defs, config))
    }

    fn with_store(store: Store, defs: Vec<ResourceDef>, config: ProviderConfig) -> Provider {
        Provider {
            store,
            defs,
            cursors: Cursors::new(config.cursor_timeout),
            limiter: config.rate_limit.map(crate::rate::Limiter::new),
            config,
            backend: None,
            writers: tokio::sync::RwLock::new(()),
            ids: IdLocks::default(),
        }
    }

    /// Makes this provider a connector: every change goes through `backend` first.
    pub fn with_backend(mut self, backend: Arc<dyn Backend>) -> Provider {
        self.backend = Some(backend);
        self
    }

    fn build_defs(config: &ProviderConfig) -> Vec<ResourceDef> {
        let mut user = user_resource();
        let mut group = group_resource();
        if config.external_id_unique {
            user = user.with_unique("externalId");
            group = group.with_unique("externalId");
        }
        if config.group_display_name_unique {
            group = group.with_unique("displayName");
        }
        vec![user, group]
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    pub fn limiter(&self) -> Option<&crate::rate::Limiter> {
        self.limiter.as_ref()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn defs(&self) -> &[ResourceDef] {
        &self.defs
    }

    pub fn def(&self, rt: usize) -> &ResourceDef {
        &self.defs[rt]
    }

    /// The resource type served at an endpoint segment such as `Users`.
    pub fn type_for_endpoint(&self, segment: &str) -> Option<usize> {
        self.defs
            .iter()
            .position(|d| d.endpoint.trim_start_matches('/') == segment)
    }

    pub fn location(&self, rt: usize, id: &str) -> String {
        format!("{}{}/{id}", self.config.base_url, self.defs[rt].endpoint)
    }

    // -- reads ------------------------------------------------------------------------------

    pub fn get(&self, rt: usize, id: &str) -> Result<View> {
        let raw = self
            .store
            .get_raw(rt, id)?
            .ok_or_else(|| not_found(&self.defs[rt], id))?;
        self.view(rt, id, &raw)
    }

    /// Builds the client's view: `User.groups`, member `$ref`s, manager name, location, ETag.
    fn view(&self, rt: usize, id: &str, raw: &[u8]) -> Result<View> {
        let mut stored = decode(raw)?;
        stored.remove(SECRETS_KEY);
        stored.remove(LINK_KEY);
        let mut hasher = Fnv::new();
        hasher.write(raw);
        let (groups, mut members) = match self.defs[rt].kind {
            ResourceKind::User => (self.groups_of(id)?, Vec::new()),
            ResourceKind::Group => (Vec::new(), self.member_view(id)),
        };
        let mut doc = Map::with_capacity(stored.len() + 2);
        for (k, mut v) in stored {
            if k == "meta" && !groups.is_empty() {
                let g = Value::Array(groups.clone());
                hasher.write(g.to_string().as_bytes());
                doc.insert("groups".into(), g);
            }
            if k == "meta" && !members.is_empty() {
                doc.insert("members".into(), Value::Array(std::mem::take(&mut members)));
            }
            if k == ENTERPRISE_USER_URN {
                self.fill_manager(&mut v, &mut hasher)?;
            }
            doc.insert(k, v);
        }
        let version = version_of(hasher);
        if let Some(Value::Object(meta)) = doc.get_mut("meta") {
            meta.insert("location".into(), Value::String(self.location(rt, id)));
            meta.insert("version".into(), Value::String(version.clone()));
        }
        Ok(View {
            rt,
            id: id.to_owned(),
            doc,
            version,
        })
    }

    /// Direct and indirect groups of a member, breadth first, each listed once.
    fn groups_of(&self, member: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<(String, bool)> = VecDeque::from([(member.to_owned(), true)]);
        while let Some((m, direct)) = queue.pop_front() {
            for (gid, name) in self.store.direct_groups(&m) {
                if out.len() >= MAX_GROUPS_LISTED || !seen.insert(gid.clone()) {
                    continue;
                }
                out.push(json!({
                    "value": gid,
                    "$ref": self.location(GROUPS, &gid),
                    "display": name,
                    "type": if direct { "direct" } else { "indirect" },
                }));
                queue.push_back((gid, false));
            }
        }
        Ok(out)
    }

    /// A Group's members as clients see them: with `$ref`, without the connector's link.
    fn member_view(&self, group: &str) -> Vec<Value> {
        let mut members = client_entries(&self.store.members(group));
        for m in &mut members {
            let Some(obj) = m.as_object_mut() else {
                continue;
            };
            let Some(id) = obj.get("value").and_then(Value::as_str).map(str::to_owned) else {
                continue;
            };
            let rt = if obj.get("type").and_then(Value::as_str) == Some("Group") {
                GROUPS
            } else {
                USERS
            };
            obj.insert("$ref".into(), Value::String(self.location(rt, &id)));
        }
        members
    }

    /// The manager's `$ref` and name; a manager that was deleted is no one's manager, so the
    /// reference is left out (RFC 7644 §3.6: a deleted resource is gone from later answers).
    fn fill_manager(&self, ext: &mut Value, hasher: &mut Fnv) -> Result<()> {
        let Some(id) = ext
            .get("manager")
            .and_then(|m| m.get("value"))
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return Ok(());
        };
        let Some(boss) = self.store.get(USERS, &id)? else {
            hasher.write(b"manager deleted");
            if let Some(ext) = ext.as_object_mut() {
                ext.remove("manager");
            }
            return Ok(());
        };
        let Some(manager) = ext.get_mut("manager").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        manager.insert("$ref".into(), Value::String(self.location(USERS, &id)));
        let name = boss
            .get("displayName")
            .or_else(|| boss.get("userName"))
            .cloned();
        if let Some(Value::String(name)) = name {
            hasher.write(name.as_bytes());
            manager.insert("displayName".into(), Value::String(name));
        }
        Ok(())
    }

    // -- writes -----------------------------------------------------------------------------

    pub async fn create(&self, rt: usize, body: &Value) -> Result<View> {
        let def = &self.defs[rt];
        let input = normalize_resource(def, body, self.config.leniency)?;
        let id = uuid::Uuid::new_v4().to_string();
        let now = timestamp(Utc::now());
        let meta = json!({"resourceType": def.name, "created": now, "lastModified": now});
        let plan = |guard: &WriteGuard<'_>| -> Result<Planned> {
            let mut doc = self.assemble(guard, rt, &id, None, input.attrs.clone(), meta.clone())?;
            keep_secrets(&mut doc, None, &input.secrets);
            let members = Members {
                upsert: take_members(&mut doc),
                leave: Vec::new(),
            };
            Ok((doc, members))
        };
        let raw = match Writers::for_kind(def.kind) {
            Writers::Keyed => {
                let planned = plan(&self.store.lock())?;
                let mut ids = self.store.unique_claims(rt, None, &planned.0);
                ids.insert(id.clone());
                let locks = (self.writers.read().await, self.ids.lock(&ids).await);
                self.commit(rt, &id, None, planned, None, locks).await?
            }
            _ => {
                let serial = self.writers.write().await;
                let planned = plan(&self.store.lock())?;
                self.commit(rt, &id, None, planned, None, serial).await?
            }
        };
        self.view(rt, &id, &raw)
    }

    pub async fn replace(
        &self,
        rt: usize,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<View> {
        let input = normalize_resource(&self.defs[rt], body, self.config.leniency)?;
        let raw = self
            .update(rt, id, if_match, true, |_| Ok(input.clone()))
            .await?;
        self.view(rt, id, &raw)
    }

    pub async fn patch(
        &self,
        rt: usize,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<View> {
        let raw = self.patch_stored(rt, id, body, if_match).await?;
        self.view(rt, id, &raw)
    }

    /// A PATCH of a Group whose client did not ask for the resource back: the answer is its
    /// new version only (for a 204), so a large member list is neither rebuilt nor sent.
    pub async fn patch_group_quietly(
        &self,
        rt: usize,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Option<String>> {
        if self.defs[rt].kind != ResourceKind::Group {
            return Ok(None);
        }
        let raw = self.patch_stored(rt, id, body, if_match).await?;
        let mut hasher = Fnv::new();
        hasher.write(&raw);
        Ok(Some(version_of(hasher)))
    }

    /// A PATCH that only adds and removes Group members touches those members alone; any other
    /// is applied to the whole resource.
    async fn patch_stored(
        &self,
        rt: usize,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Vec<u8>> {
        let ops = parse_patch_request(body)?;
        let max = self.config.patch_max_operations;
        if ops.len() > max {
            // As a bulk request over bulk.maxOperations (RFC 7644 §3.7.4).
            return Err(ScimError::new(
                413,
                None,
                format!(
                    "the PATCH has {} operations; at most {max} are accepted in one request",
                    ops.len()
                ),
            ));
        }
        let def = &self.defs[rt];
        if def.kind == ResourceKind::Group {
            if let Some(changes) = member_ops(def, &ops) {
                return self.patch_members(rt, id, if_match, changes).await;
            }
        }
        // Okta resends the group's name before every membership change: that needs no members.
        let members_too = touches(def, &ops, "members");
        self.update(rt, id, if_match, members_too, |old| {
            apply_patch(def, old, &ops)
        })
        .await
    }

    /// PUT and any PATCH but a members-only one: the change sees the whole resource, a Group's
    /// members included when it may change them (`members_too`), and is validated as a whole.
    async fn update<F>(
        &self,
        rt: usize,
        id: &str,
        if_match: Option<&str>,
        members_too: bool,
        change: F,
    ) -> Result<Vec<u8>>
    where
        F: Fn(&Map<String, Value>) -> Result<Normalized>,
    {
        let def = &self.defs[rt];
        let members_too = members_too && def.kind == ResourceKind::Group;
        let writers = Writers::for_kind(def.kind);
        self.update_with(rt, id, if_match, writers, |guard, old, secrets| {
            let stored = match members_too {
                true => self.store.members(id),
                false => Vec::new(),
            };
            let whole = with_members(old, &stored);
            let input = change(&whole)?;
            check_immutable(def, &whole, &input.attrs)?;
            if input.secrets.is_empty() && same_attrs(&whole, &input.attrs) {
                return Ok(None);
            }
            let meta = touched_meta(old);
            let mut doc = self.assemble(guard, rt, id, Some(&whole), input.attrs, meta)?;
            keep_secrets(&mut doc, secrets, &input.secrets);
            let members = match members_too {
                true => member_changes(&stored, take_members(&mut doc)),
                false => Members::default(),
            };
            Ok(Some((doc, members)))
        })
        .await
    }

    /// A members-only PATCH: each named member is checked and changed; the rest of the list is
    /// never read.
    async fn patch_members(
        &self,
        rt: usize,
        id: &str,
        if_match: Option<&str>,
        changes: MemberOps,
    ) -> Result<Vec<u8>> {
        let mut ids: BTreeSet<String> = changes.keys().cloned().collect();
        ids.insert(id.to_owned());
        self.update_with(
            rt,
            id,
            if_match,
            Writers::Shared(ids),
            |guard, old, secrets| {
                let mut members = Members::default();
                for (member, change) in &changes {
                    let current = self.store.member(id, member);
                    let Some(mut entry) = change.clone() else {
                        if current.is_some() {
                            members.leave.push(member.clone());
                        }
                        continue;
                    };
                    let known = current
                        .as_ref()
                        .and_then(|c| c.get("type"))
                        .and_then(Value::as_str);
                    self.check_member(guard, id, &mut entry, known)?;
                    match current {
                        Some(current) if same_entry(&current, &entry) => {}
                        current => members.upsert.push(carry_link(current.as_ref(), entry)),
                    }
                }
                if members.is_empty() {
                    return Ok(None);
                }
                let mut doc = old.clone();
                doc.insert("meta".into(), touched_meta(old));
                if let Some(secrets) = secrets {
                    doc.insert(SECRETS_KEY.into(), secrets);
                }
                Ok(Some((doc, members)))
            },
        )
        .await
    }

    /// Shared tail of every update: precondition, the change, backend, write. `plan` gets the
    /// stored document (a Group's without members, secrets and link apart) and returns the new
    /// document and member changes, or `None` when nothing changes. Returns the stored bytes.
    /// `plan` runs first with the writers' lock shared and the ids locked: a change to nothing
    /// (Okta resends a group's name before each membership push) ends there; a change that needs
    /// the lock alone takes it and runs `plan` again on what is stored then.
    async fn update_with<F>(
        &self,
        rt: usize,
        id: &str,
        if_match: Option<&str>,
        writers: Writers,
        plan: F,
    ) -> Result<Vec<u8>>
    where
        F: Fn(&WriteGuard<'_>, &Map<String, Value>, Option<Value>) -> Result<Option<Planned>>,
    {
        let mut ids = match &writers {
            Writers::Shared(ids) => ids.clone(),
            Writers::Keyed | Writers::Alone => BTreeSet::from([id.to_owned()]),
        };
        let mut alone = false;
        loop {
            let (shared, held, serial) = if alone {
                (None, None, Some(self.writers.write().await))
            } else {
                let shared = self.writers.read().await;
                (Some(shared), Some(self.ids.lock(&ids).await), None)
            };
            let (old, planned, link) = {
                let guard = self.store.lock();
                let (raw, mut old) = self.stored_for_write(&guard, rt, id, if_match)?;
                let secrets = old.remove(SECRETS_KEY);
                let link = old.remove(LINK_KEY);
                let Some(planned) = plan(&guard, &old, secrets)? else {
                    // Nothing changes, so neither does lastModified or the ETag (RFC 7644 §3.5.2.1).
                    return Ok(raw.to_vec());
                };
                (old, planned, link)
            };
            if matches!(writers, Writers::Alone) && !alone {
                alone = true;
                continue;
            }
            if matches!(writers, Writers::Keyed) {
                // Lock the values it claims as well, in order with the id, then plan again.
                let claims = self.store.unique_claims(rt, Some(&old), &planned.0);
                if !claims.is_subset(&ids) {
                    ids.extend(claims);
                    continue;
                }
            }
            let locks = (serial, shared, held);
            return self.commit(rt, id, Some(&old), planned, link, locks).await;
        }
    }

    /// Applies one resource's change, the backend first, then the store; `locks` are let go
    /// before waiting for the disk. Returns the stored bytes.
    async fn commit<L>(
        &self,
        rt: usize,
        id: &str,
        old: Option<&Map<String, Value>>,
        (mut doc, mut members): Planned,
        link: Option<Value>,
        locks: L,
    ) -> Result<Vec<u8>> {
        self.through_backend(rt, id, old, &mut doc, &mut members, link)
            .await?;
        let raw = encode(&doc)?;
        self.store.write(
            &self.store.lock(),
            &[Change {
                rt,
                id,
                old,
                new: Some(&doc),
                members,
            }],
        )?;
        drop(locks);
        self.store.durable().await?;
        Ok(raw)
    }

    /// The stored resource, for a write: its bytes and document, once `If-Match` holds.
    fn stored_for_write(
        &self,
        _guard: &WriteGuard<'_>,
        rt: usize,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(sled::IVec, Map<String, Value>)> {
        let raw = self
            .store
            .get_raw(rt, id)?
            .ok_or_else(|| not_found(&self.defs[rt], id))?;
        self.check_precondition(rt, id, &raw, if_match)?;
        let doc = decode(&raw)?;
        Ok((raw, doc))
    }

    pub async fn delete(&self, rt: usize, id: &str, if_match: Option<&str>) -> Result<()> {
        let def = &self.defs[rt];
        let locks = match Writers::for_kind(def.kind) {
            // A User leaves its groups: lock them too. Only a writer holding the User's id
            // changes which groups it is in, so the set read under that lock holds.
            Writers::Keyed => {
                let mut ids = BTreeSet::from([id.to_owned()]);
                loop {
                    let locks = (self.writers.read().await, self.ids.lock(&ids).await);
                    let groups = self.store.direct_groups(id).into_iter().map(|(g, _)| g);
                    let groups: BTreeSet<String> = groups.collect();
                    if groups.is_subset(&ids) {
                        break (None, Some(locks));
                    }
                    ids.extend(groups);
                }
            }
            _ => (Some(self.writers.write().await), None),
        };
        let (_, old) = self.stored_for_write(&self.store.lock(), rt, id, if_match)?;
        if let Some(backend) = &self.backend {
            let left: Vec<(String, Option<Value>)> = self
                .store
                .members(id)
                .iter()
                .filter_map(|m| Some((member_value(m)?.to_owned(), m.get(LINK_KEY).cloned())))
                .collect();
            backend
                .apply(BackendChange {
                    kind: def.kind,
                    id,
                    old: Some(&old),
                    new: None,
                    joined: &[],
                    left: &left,
                    link: old.get(LINK_KEY),
                    store: &self.store,
                })
                .await?;
        }
        {
            let guard = self.store.lock();
            // A deleted resource leaves every group it belonged to (RFC 7643 §4.2 consistency).
            let mut groups = Vec::new();
            for (gid, _) in self.store.direct_groups(id) {
                let Some(group) = self.store.get(GROUPS, &gid)? else {
                    continue;
                };
                let mut updated = group.clone();
                updated.insert("meta".into(), touched_meta(&group));
                groups.push((gid, group, updated));
            }
            let mut changes: Vec<Change<'_>> = groups
                .iter()
                .map(|(gid, group, updated)| Change {
                    rt: GROUPS,
                    id: gid,
                    old: Some(group),
                    new: Some(updated),
                    members: Members {
                        upsert: Vec::new(),
                        leave: vec![id.to_owned()],
                    },
                })
                .collect();
            changes.push(Change {
                rt,
                id,
                old: Some(&old),
                new: None,
                members: Members::default(),
            });
            self.store.write(&guard, &changes)?;
        }
        drop(locks);
        self.store.durable().await
    }

    /// Hands every group to the backend again, unchanged, so the native side catches up with a
    /// backend whose rules changed (a connector's new role policy). Returns how many links
    /// changed.
    pub async fn reapply_groups(&self) -> Result<usize> {
        self.reapply(GROUPS).await
    }

    async fn reapply(&self, rt: usize) -> Result<usize> {
        let ids: Vec<String> = self
            .store
            .scan(rt)
            .map(|entry| entry.map(|(id, _)| id))
            .collect::<Result<_>>()?;
        let mut changed = 0;
        for id in ids {
            let serial = self.writers.write().await;
            let Some(mut doc) = self.store.get(rt, &id)? else {
                continue;
            };
            let link = doc.remove(LINK_KEY);
            let before = link.clone();
            let old = doc.clone();
            let mut members = Members::default();
            self.through_backend(rt, &id, Some(&old), &mut doc, &mut members, link)
                .await?;
            if doc.get(LINK_KEY) != before.as_ref() || !members.is_empty() {
                self.store.write(
                    &self.store.lock(),
                    &[Change {
                        rt,
                        id: &id,
                        old: Some(&old),
                        new: Some(&doc),
                        members,
                    }],
                )?;
                changed += 1;
            }
            drop(serial);
        }
        self.store.durable().await?;
        Ok(changed)
    }

    /// Hands a create or update to the backend, if there is one, and keeps the links it returns
    /// (the resource's, and those of members who joined). Uniqueness is checked first: the
    /// backend must never apply what the store would refuse.
    async fn through_backend(
        &self,
        rt: usize,
        id: &str,
        old: Option<&Map<String, Value>>,
        doc: &mut Map<String, Value>,
        members: &mut Members,
        link: Option<Value>,
    ) -> Result<()> {
        let Some(backend) = &self.backend else {
            return Ok(());
        };
        self.store.check_unique(&[Change {
            rt,
            id,
            old,
            new: Some(doc),
            members: Members::default(),
        }])?;
        let joined: Vec<String> = members
            .upsert
            .iter()
            .filter_map(member_value)
            .filter(|m| !self.store.is_member(id, m))
            .map(str::to_owned)
            .collect();
        let left: Vec<(String, Option<Value>)> = members
            .leave
            .iter()
            .map(|m| {
                let link = self
                    .store
                    .member(id, m)
                    .and_then(|e| e.get(LINK_KEY).cloned());
                (m.clone(), link)
            })
            .collect();
        let links = backend
            .apply(BackendChange {
                kind: self.defs[rt].kind,
                id,
                old,
                new: Some(doc),
                joined: &joined,
                left: &left,
                link: link.as_ref(),
                store: &self.store,
            })
            .await?;
        if let Some(link) = links.resource.or(link) {
            doc.insert(LINK_KEY.into(), link);
        }
        let mut member_links: HashMap<String, Value> = links.members.into_iter().collect();
        for entry in &mut members.upsert {
            let link = member_value(entry).and_then(|m| member_links.remove(m));
            if let (Some(link), Some(obj)) = (link, entry.as_object_mut()) {
                obj.insert(LINK_KEY.into(), link);
            }
        }
        Ok(())
    }

    /// Orders the stored document: schemas, id, the client's attributes, meta.
    fn assemble(
        &self,
        guard: &WriteGuard<'_>,
        rt: usize,
        id: &str,
        old: Option<&Map<String, Value>>,
        mut attrs: Map<String, Value>,
        meta: Value,
    ) -> Result<Map<String, Value>> {
        let def = &self.defs[rt];
        if def.kind == ResourceKind::Group {
            self.check_members(guard, id, old, &mut attrs)?;
        }
        let schemas: Vec<Value> = def
            .schema_urns()
            .enumerate()
            .filter(|(i, urn)| *i == 0 || attrs.contains_key(*urn))
            .map(|(_, urn)| Value::String(urn.to_owned()))
            .collect();
        let mut doc = Map::with_capacity(attrs.len() + 3);
        doc.insert("schemas".into(), Value::Array(schemas));
        doc.insert("id".into(), Value::String(id.to_owned()));
        doc.append(&mut attrs);
        doc.insert("meta".into(), meta);
        Ok(doc)
    }

    /// Every member is checked; duplicates collapse. Members the group already had keep the
    /// type they were stored with, so only newcomers are looked up.
    fn check_members(
        &self,
        guard: &WriteGuard<'_>,
        group: &str,
        old: Option<&Map<String, Value>>,
        attrs: &mut Map<String, Value>,
    ) -> Result<()> {
        let Some(Value::Array(members)) = attrs.get_mut("members") else {
            return Ok(());
        };
        let known: HashMap<&str, &str> = old
            .and_then(|o| o.get("members"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| Some((member_value(m)?, m.get("type")?.as_str()?)))
            .collect();
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(members.len());
        for mut m in members.drain(..) {
            let known_type = member_value(&m).and_then(|id| known.get(id).copied());
            let id = self.check_member(guard, group, &mut m, known_type)?;
            if seen.insert(id) {
                out.push(m);
            }
        }
        *members = out;
        if members.is_empty() {
            attrs.remove("members");
        }
        Ok(())
    }

    /// A member must be an existing User or Group other than the group itself; its `type` is
    /// set from what it is (`known` for a member the group already has). Returns its id.
    fn check_member(
        &self,
        _guard: &WriteGuard<'_>,
        group: &str,
        m: &mut Value,
        known: Option<&str>,
    ) -> Result<String> {
        let Some(id) = member_value(m).map(str::to_owned) else {
            return Err(ScimError::invalid_value(
                "every member needs a 'value' holding the member's id",
            ));
        };
        if id == group {
            return Err(ScimError::invalid_value(
                "a group cannot be a member of itself",
            ));
        }
        let actual = if let Some(known) = known {
            known
        } else if self.store.get_raw(USERS, &id)?.is_some() {
            "User"
        } else if self.store.get_raw(GROUPS, &id)?.is_some() {
            "Group"
        } else {
            return Err(ScimError::invalid_value(format!(
                "member '{id}' is neither a User nor a Group here"
            )));
        };
        match m.get("type").and_then(Value::as_str) {
            Some(t) if t != actual => Err(ScimError::invalid_value(format!(
                "member '{id}' is a {actual}, not a {t}"
            ))),
            _ => {
                m["type"] = Value::String(actual.into());
                Ok(id)
            }
        }
    }

    fn check_precondition(
        &self,
        rt: usize,
        id: &str,
        raw: &[u8],
        if_match: Option<&str>,
    ) -> Result<()> {
        let Some(wanted) = if_match else {
            return Ok(());
        };
        let current = self.view(rt, id, raw)?.version;
        if etag_matches(wanted, &current) {
            Ok(())
        } else {
            Err(ScimError::new(
                412,
                None,
                format!("If-Match {wanted} does not match the current version {current}"),
            ))
        }
    }

    // -- queries ----------------------------------------------------------------------------

    /// Runs a list query over one resource type, or over all of them (`rt` = `None`).
    pub fn list(&self, rt: Option<usize>, q: &ListQuery) -> Result<Page> {
        self.list_with(rt, q, true)
    }

    /// `list`, optionally without secondary indexes (the planner's property test compares both).
    fn list_with(&self, rt: Option<usize>, q: &ListQuery, use_indexes: bool) -> Result<Page> {
        let types: Vec<usize> = match rt {
            Some(rt) => vec![rt],
            None => (0..self.defs.len()).collect(),
        };
        let parsed = q.filter.as_deref().map(Filter::parse).transpose()?;
        // Only a cursor query needs the digest its cursors are bound to.
        let digest = q
            .cursor
            .as_ref()
            .map(|_| q.digest(rt.map_or("", |t| self.defs[t].endpoint.as_str())))
            .unwrap_or_default();
        let position = match q.cursor.as_deref() {
            Some("") => Some(Position {
                offset: 0,
                count: q.count,
            }),
            Some(c) => Some(self.cursors.open(c, &digest, q.count)?),
            None => None,
        };
        let page_size = position
            .map_or(q.count, |p| p.count)
            .unwrap_or(self.config.max_results)
            .min(self.config.max_results);
        let skip = position.map_or(q.start_index.saturating_sub(1), |p| p.offset);
        let page = |total: usize, resources: Vec<Value>| {
            let cursors = position.map(|p| {
                let at = |offset| {
                    self.cursors.issue(
                        &digest,
                        Position {
                            offset,
                            count: p.count,
                        },
                    )
                };
                let more = page_size > 0 && skip + resources.len() < total;
                PageCursors {
                    next: more.then(|| at(skip + resources.len())),
                    previous: (page_size > 0 && skip > 0)
                        .then(|| at(skip.saturating_sub(page_size))),
                }
            });
            Page {
                total,
                start_index: skip + 1,
                resources,
                cursors,
            }
        };

        if parsed.is_none() && q.sort_by.is_none() {
            let total = types.iter().map(|&t| self.store.count(t)).sum();
            let mut resources = Vec::new();
            let all = types
                .iter()
                .flat_map(|&t| self.store.scan(t).map(move |r| (t, r)));
            for (t, entry) in all.skip(skip).take(page_size) {
                let (id, raw) = entry?;
                resources.push(self.render(self.view(t, &id, &raw)?, &q.projection));
            }
            return Ok(page(total, resources));
        }

        let mut matched: Vec<(Option<SortKey>, View)> = Vec::new();
        let mut compile_error = None;
        let mut compiled_any = false;
        for &t in &types {
            let def = &self.defs[t];
            let compiled = match &parsed {
                Some(f) => match f.compile(def) {
                    Ok(c) => {
                        compiled_any = true;
                        Some(c)
                    }
                    // At the root, a type that lacks the attribute simply has no matches.
                    Err(e) if rt.is_none() => {
                        compile_error = Some(e);
                        continue;
                    }
                    Err(e) => return Err(e),
                },
                None => None,
            };
            let sort = match &q.sort_by {
                Some(s) => match SortSpec::new(def, s) {
                    Ok(spec) => Some(spec),
                    Err(_) if rt.is_none() => None,
                    Err(e) => return Err(e),
                },
                None => None,
            };
            self.collect_matches(
                t,
                compiled.as_ref(),
                sort.as_ref(),
                use_indexes,
                &mut matched,
            )?;
        }
        if let (Some(e), false) = (compile_error, compiled_any) {
            return Err(e);
        }
        if q.sort_by.is_some() {
            sort_keyed(&mut matched, q.sort_order);
        }
        let total = matched.len();
        let resources = matched
            .into_iter()
            .skip(skip)
            .take(page_size)
            .map(|(_, v)| self.render(v, &q.projection))
            .collect();
        Ok(page(total, resources))
    }

    fn collect_matches(
        &self,
        rt: usize,
        filter: Option<&Compiled<'_>>,
        sort: Option<&SortSpec<'_>>,
        use_indexes: bool,
        out: &mut Vec<(Option<SortKey>, View)>,
    ) -> Result<()> {
        let def = &self.defs[rt];
        let plan = filter
            .filter(|_| use_indexes)
            .and_then(|f| f.index_plan(&|path| def.is_indexed(path)));
        let mut consider = |id: &str, raw: &[u8]| -> Result<()> {
            let view = self.view(rt, id, raw)?;
            if filter.is_none_or(|f| f.matches(&view.doc)) {
                out.push((sort.and_then(|s| s.key(&view.doc)), view));
            }
            Ok(())
        };
        match plan {
            Some(probes) => {
                let mut ids = BTreeSet::new();
                for p in probes {
                    ids.extend(self.store.lookup(rt, &p.path, &p.value));
                }
                for id in ids {
                    if let Some(raw) = self.store.get_raw(rt, &id)? {
                        consider(&id, &raw)?;
                    }
                }
            }
            None => {
                for entry in self.store.scan(rt) {
                    let (id, raw) = entry?;
                    consider(&id, &raw)?;
                }
            }
        }
        Ok(())
    }

    /// Applies a projection to a single view (GET, and the bodies of POST/PUT/PATCH).
    pub fn render(&self, view: View, projection: &Projection) -> Value {
        Value::Object(project(&self.defs[view.rt], view.doc, projection))
    }
}

/// Stores digests of newly set write-only values beside the ones already kept.
fn keep_secrets(doc: &mut Map<String, Value>, old: Option<Value>, new: &Map<String, Value>) {
    let mut secrets = match old {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    };
    for (name, value) in new {
        secrets.insert(name.clone(), Value::String(hash_secret(value)));
    }
    if !secrets.is_empty() {
        doc.insert(SECRETS_KEY.into(), Value::Object(secrets));
    }
}

fn not_found(def: &ResourceDef, id: &str) -> ScimError {
    ScimError::not_found(format!("{} '{id}' not found", def.name))
}

/// The document's `members`, taken out to be stored apart.
fn take_members(doc: &mut Map<String, Value>) -> Vec<Value> {
    match doc.remove("members") {
        Some(Value::Array(members)) => members,
        _ => Vec::new(),
    }
}

/// Stored member entries without the connector's links.
fn client_entries(stored: &[Value]) -> Vec<Value> {
    stored
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if let Some(obj) = m.as_object_mut() {
                obj.remove(LINK_KEY);
            }
            m
        })
        .collect()
}

/// A Group's stored document with its members put back, before `meta`, as a client sent them.
fn with_members<'a>(doc: &'a Map<String, Value>, stored: &[Value]) -> Cow<'a, Map<String, Value>> {
    if stored.is_empty() {
        return Cow::Borrowed(doc);
    }
    let mut members = Some(Value::Array(client_entries(stored)));
    let mut out = Map::with_capacity(doc.len() + 1);
    for (k, v) in doc {
        if k == "meta" {
            if let Some(m) = members.take() {
                out.insert("members".into(), m);
            }
        }
        out.insert(k.clone(), v.clone());
    }
    if let Some(m) = members {
        out.insert("members".into(), m);
    }
    Cow::Owned(out)
}

/// What turns the stored member entries into `new`: entries to write (new members, and members
/// whose entry changed, keeping their link) and members who leave.
fn member_changes(stored: &[Value], new: Vec<Value>) -> Members {
    let current: HashMap<&str, &Value> = stored
        .iter()
        .filter_map(|m| Some((member_value(m)?, m)))
        .collect();
    let staying: BTreeSet<String> = new
        .iter()
        .filter_map(member_value)
        .map(str::to_owned)
        .collect();
    let leave = current
        .keys()
        .filter(|m| !staying.contains(**m))
        .map(|m| (*m).to_owned())
        .collect();
    let mut upsert = Vec::new();
    for entry in new {
        let before = member_value(&entry).and_then(|m| current.get(m).copied());
        match before {
            Some(before) if same_entry(before, &entry) => {}
            before => upsert.push(carry_link(before, entry)),
        }
    }
    Members { upsert, leave }
}

/// Whether a stored member entry says what `given` says (the connector's link aside).
fn same_entry(stored: &Value, given: &Value) -> bool {
    match (stored.as_object(), given.as_object()) {
        (Some(s), Some(g)) => {
            s.iter().filter(|(k, _)| *k != LINK_KEY).count() == g.len()
                && g.iter().all(|(k, v)| s.get(k) == Some(v))
        }
        _ => stored == given,
    }
}

/// A member's new entry keeps the link its joining returned.
fn carry_link(stored: Option<&Value>, mut entry: Value) -> Value {
    let link = stored.and_then(|s| s.get(LINK_KEY)).cloned();
    if let (Some(link), Some(obj)) = (link, entry.as_object_mut()) {
        obj.insert(LINK_KEY.into(), link);
    }
    entry
}

/// `meta` of a changed resource: lastModified moves on.
fn touched_meta(old: &Map<String, Value>) -> Value {
    let mut meta = old.get("meta").cloned().unwrap_or_else(|| json!({}));
    let last = meta
        .get("lastModified")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
    meta["lastModified"] = Value::String(timestamp(later_than(last)));
    meta
}

/// Whether the stored attributes equal the new ones (ignoring id, schemas and meta).
fn same_attrs(old: &Map<String, Value>, new: &Map<String, Value>) -> bool {
    let own = |m: &Map<String, Value>| {
        m.iter()
            .filter(|(k, _)| !matches!(k.as_str(), "id" | "schemas" | "meta"))
            .count()
    };
    own(old) == own(new)
        && old
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "id" | "schemas" | "meta"))
            .all(|(k, v)| new.get(k) == Some(v))
}

/// The weak ETag, also `meta.version`.
fn version_of(hasher: Fnv) -> String {
    format!("W/\"{:016x}\"", hasher.finish())
}

/// `If-Match` holds `*` or a comma-separated list of (possibly weak) tags.
pub fn etag_matches(header: &str, current: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let current = strip(current);
    header
        .split(',')
        .any(|t| t.trim() == "*" || strip(t) == current)
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Now, or 1 ms after `last` if the clock has not moved past it, so lastModified always advances.
fn later_than(last: Option<DateTime<chrono::FixedOffset>>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    // Compared at the precision it is written with, or a write in the same millisecond would
    // keep the old lastModified.
    let now = Utc::now().trunc_subsecs(3);
    match last {
        Some(l) if l.with_timezone(&Utc) >= now => {
            l.with_timezone(&Utc) + chrono::Duration::milliseconds(1)
        }
        _ => now,
    }
}

/// FNV-1a, 64 bit: stable across builds and platforms, unlike std's hasher, so ETags survive restarts.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn provider_with(users: &[(String, String, String)]) -> Provider {
        let p = Provider::temporary(ProviderConfig::default()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for (name, ext, email) in users {
            let body = json!({"schemas": [crate::schema::USER_URN], "userName": name, "externalId": ext,
                              "emails": [{"value": email, "type": "work"}, {"value": format!("alt-{email}")}]});
            // Duplicates are refused (409); the rest of the data set is still useful.
            let _ = rt.block_on(p.create(USERS, &body));
        }
        p
    }

    fn ids(page: &Page) -> Vec<String> {
        page.resources
            .iter()
            .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn word() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["ann", "ANN", "bob", "Bob", "cy", "dee", "é"])
            .prop_map(str::to_owned)
    }

    fn leaf() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec![
                "userName",
                "USERNAME",
                "externalId",
                "emails.value",
                "title",
                "emails[value eq",
            ]),
            word(),
        )
            .prop_map(|(attr, w)| {
                if attr.ends_with("eq") {
                    format!("{attr} \"{w}@x\"]")
                } else if attr.starts_with("emails") {
                    format!("{attr} eq \"{w}@x\"")
                } else {
                    format!("{attr} eq \"{w}\"")
                }
            })
    }

    fn filter() -> impl Strategy<Value = String> {
        leaf().prop_recursive(3, 12, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
                inner.prop_map(|a| format!("not ({a})")),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn the_indexed_planner_returns_exactly_what_a_scan_returns(
            users in prop::collection::vec((word(), word(), word().prop_map(|w| format!("{w}@x"))), 0..12),
            f in filter(),
        ) {
            let p = provider_with(&users);
            let q = ListQuery { filter: Some(f.clone()), start_index: 1, ..Default::default() };
            let planned = p.list_with(Some(USERS), &q, true).map(|pg| ids(&pg));
            let scanned = p.list_with(Some(USERS), &q, false).map(|pg| ids(&pg));
            prop_assert_eq!(planned, scanned, "{}", f);
        }
    }

    #[test]
    fn equality_on_an_indexed_attribute_uses_the_index() {
        let p = provider_with(&[("ann".into(), "e1".into(), "a@x".into())]);
        let def = p.def(USERS);
        let f = Filter::parse(r#"userName eq "ANN" and title pr"#).unwrap();
        let c = f.compile(def).unwrap();
        let indexed = |path: &str| def.is_indexed(path);
        let plan = c.index_plan(&indexed).unwrap();
        assert_eq!(
            (plan[0].path.as_str(), plan[0].value.as_str()),
            ("userName", "ann")
        );
        let scan_only = Filter::parse(r#"userName co "a""#).unwrap();
        assert!(scan_only
            .compile(def)
            .unwrap()
            .index_plan(&indexed)
            .is_none());
    }

    /// One member operation of a PATCH, on one of a few users (by index).
    #[derive(Debug, Clone)]
    enum MemberOp {
        Add(Vec<usize>, bool),
        RemoveByFilter(usize),
        RemoveByValue(Vec<usize>),
    }

    fn member_op() -> impl Strategy<Value = MemberOp> {
        let some = prop::collection::vec(0..4usize, 1..3);
        prop_oneof![
            (some.clone(), any::<bool>()).prop_map(|(u, display)| MemberOp::Add(u, display)),
            (0..4usize).prop_map(MemberOp::RemoveByFilter),
            some.prop_map(MemberOp::RemoveByValue),
        ]
    }

    fn member_patch(ops: &[MemberOp], users: &[String]) -> Vec<Value> {
        ops.iter()
            .map(|op| match op {
                MemberOp::Add(us, display) => json!({"op": "add", "path": "members", "value":
                    us.iter().map(|&u| if *display {
                        json!({"value": users[u], "display": format!("user {u}")})
                    } else {
                        json!({"value": users[u]})
                    }).collect::<Vec<_>>()}),
                MemberOp::RemoveByFilter(u) => json!({"op": "remove",
                    "path": format!("members[value eq \"{}\"]", users[*u])}),
                MemberOp::RemoveByValue(us) => json!({"op": "remove", "path": "members", "value":
                    us.iter().map(|&u| json!({"value": users[u]})).collect::<Vec<_>>()}),
            })
            .collect()
    }

    fn members_of(view: &View) -> Vec<Value> {
        let mut members = view
            .doc
            .get("members")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        members.sort_by_key(|m| m["value"].as_str().unwrap_or_default().to_owned());
        members
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// A members-only PATCH (which never reads the member list) leaves the same members as
        /// the same operations applied to the whole resource (forced by a no-op rename).
        #[test]
        fn a_members_only_patch_agrees_with_the_whole_resource_patch(
            batches in prop::collection::vec(prop::collection::vec(member_op(), 1..4), 1..6),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let p = Provider::temporary(ProviderConfig::default()).unwrap();
            let users: Vec<String> = (0..4)
                .map(|i| {
                    let body = json!({"schemas": [crate::schema::USER_URN], "userName": format!("u{i}")});
                    rt.block_on(p.create(USERS, &body)).unwrap().id
                })
                .collect();
            let group = |name: &str| {
                let body = json!({"schemas": [crate::schema::GROUP_URN], "displayName": name});
                rt.block_on(p.create(GROUPS, &body)).unwrap().id
            };
            let (fast, whole) = (group("fast"), group("whole"));
            for batch in &batches {
                let ops = member_patch(batch, &users);
                let body = json!({"schemas": [crate::schema::PATCH_OP_URN], "Operations": ops});
                let before = p.get(GROUPS, &fast).unwrap();
                let fast_view = rt.block_on(p.patch(GROUPS, &fast, &body, None)).unwrap();
                let mut forced = ops.clone();
                forced.push(json!({"op": "replace", "path": "displayName", "value": "whole"}));
                let body = json!({"schemas": [crate::schema::PATCH_OP_URN], "Operations": forced});
                let whole_view = rt.block_on(p.patch(GROUPS, &whole, &body, None)).unwrap();
                prop_assert_eq!(members_of(&fast_view), members_of(&whole_view));
                prop_assert_eq!(members_of(&fast_view), members_of(&p.get(GROUPS, &fast).unwrap()));
                // The version moves exactly when the members did.
                prop_assert_eq!(
                    fast_view.version != before.version,
                    members_of(&fast_view) != members_of(&before)
                );
            }
            for (i, u) in users.iter().enumerate() {
                let listed = p.get(USERS, u).unwrap().doc.get("groups").and_then(Value::as_array).map(|g| g.len()).unwrap_or(0);
                let in_fast = members_of(&p.get(GROUPS, &fast).unwrap()).iter().any(|m| m["value"] == *u);
                let in_whole = members_of(&p.get(GROUPS, &whole).unwrap()).iter().any(|m| m["value"] == *u);
                prop_assert_eq!(listed, usize::from(in_fast) + usize::from(in_whole), "user {}", i);
            }
        }
    }

    #[tokio::test]
    async fn a_members_only_patch_checks_its_newcomers_and_moves_the_version() {
        let p = Provider::temporary(ProviderConfig::default()).unwrap();
        let ann = p
            .create(
                USERS,
                &json!({"schemas": [crate::schema::USER_URN], "userName": "ann"}),
            )
            .await
            .unwrap()
            .id;
        let g = p
            .create(
                GROUPS,
                &json!({"schemas": [crate::schema::GROUP_URN], "displayName": "g"}),
            )
            .await
            .unwrap();
        let patch =
            |ops: Value| json!({"schemas": [crate::schema::PATCH_OP_URN], "Operations": ops});
        let unknown =
            patch(json!([{"op": "add", "path": "members", "value": [{"value": "nobody"}]}]));
        let e = p.patch(GROUPS, &g.id, &unknown, None).await.unwrap_err();
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(crate::ScimType::InvalidValue))
        );
        let itself = patch(json!([{"op": "add", "path": "members", "value": [{"value": g.id}]}]));
        assert_eq!(
            p.patch(GROUPS, &g.id, &itself, None)
                .await
                .unwrap_err()
                .status,
            400
        );
        let typed = patch(
            json!([{"op": "add", "path": "members", "value": [{"value": ann, "type": "Group"}]}]),
        );
        assert_eq!(
            p.patch(GROUPS, &g.id, &typed, None)
                .await
                .unwrap_err()
                .status,
            400
        );

        let add = patch(json!([{"op": "add", "path": "members", "value": [{"value": ann}]}]));
        let stale = p
            .patch(GROUPS, &g.id, &add, Some("W/\"0\""))
            .await
            .unwrap_err();
        assert_eq!(stale.status, 412);
        let added = p
            .patch(GROUPS, &g.id, &add, Some(&g.version))
            .await
            .unwrap();
        assert_ne!(added.version, g.version);
        assert_eq!(added.doc["members"][0]["type"], "User");
        assert_eq!(added.doc["members"][0]["$ref"], p.location(USERS, &ann));
        let again = p.patch(GROUPS, &g.id, &add, None).await.unwrap();
        assert_eq!(
            again.version, added.version,
            "adding a member twice changes nothing"
        );
        assert_eq!(p.get(USERS, &ann).unwrap().doc["groups"][0]["value"], g.id);

        p.delete(USERS, &ann, None).await.unwrap();
        let left = p.get(GROUPS, &g.id).unwrap();
        assert!(
            left.doc.get("members").is_none(),
            "a deleted user leaves its groups"
        );
        assert_ne!(left.version, added.version);
    }

    /// Takes a while per change, counts how many it was given at once, and keeps the userNames
    /// it was given.
    #[derive(Debug, Default)]
    struct Slow {
        now: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
        user_names: std::sync::Mutex<Vec<String>>,
    }

    impl Backend for Slow {
        fn apply<'a>(&'a self, c: BackendChange<'a>) -> BoxFuture<'a, Result<Links>> {
            use std::sync::atomic::Ordering::SeqCst;
            if let Some(name) = c
                .new
                .and_then(|n| n.get("userName"))
                .and_then(Value::as_str)
            {
                self.user_names.lock().unwrap().push(name.to_lowercase());
            }
            Box::pin(async move {
                let now = self.now.fetch_add(1, SeqCst) + 1;
                self.most.fetch_max(now, SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                self.now.fetch_sub(1, SeqCst);
                Ok(Links::default())
            })
        }
    }

    #[tokio::test]
    async fn members_only_patches_reach_the_backend_together_and_all_land() {
        let backend = Arc::new(Slow::default());
        let p = Provider::temporary(ProviderConfig::default())
            .unwrap()
            .with_backend(backend.clone());
        let mut users = Vec::new();
        for i in 0..12 {
            let body = json!({"schemas": [crate::schema::USER_URN], "userName": format!("u{i}")});
            users.push(p.create(USERS, &body).await.unwrap().id);
        }
        let mut groups = Vec::new();
        for name in ["a", "b"] {
            let body = json!({"schemas": [crate::schema::GROUP_URN], "displayName": name});
            groups.push(p.create(GROUPS, &body).await.unwrap().id);
        }
        let patch =
            |ops: Value| json!({"schemas": [crate::schema::PATCH_OP_URN], "Operations": ops});
        let joins = groups
            .iter()
            .flat_map(|g| users.iter().map(move |u| (g, u)))
            .map(|(g, u)| {
                let p = &p;
                async move {
                    // Okta's way: the name again (changes nothing), then the member.
                    let name = p.get(GROUPS, g).unwrap().doc["displayName"].clone();
                    let rename =
                        patch(json!([{"op": "replace", "value": {"id": g, "displayName": name}}]));
                    p.patch(GROUPS, g, &rename, None).await?;
                    let add =
                        patch(json!([{"op": "add", "path": "members", "value": [{"value": u}]}]));
                    p.patch(GROUPS, g, &add, None).await
                }
            });
        for result in futures::future::join_all(joins).await {
            result.unwrap();
        }
        for g in &groups {
            assert_eq!(members_of(&p.get(GROUPS, g).unwrap()).len(), users.len());
        }
        for u in &users {
            assert_eq!(
                p.get(USERS, u).unwrap().doc["groups"]
                    .as_array()
                    .unwrap()
                    .len(),
                2
            );
        }
        let most = backend.most.load(std::sync::atomic::Ordering::SeqCst);
        // Per group one change at a time; the two groups' changes overlap.
        assert_eq!(most, 2, "changes the backend saw at once");
    }

    #[tokio::test]
    async fn users_reach_the_backend_together_and_a_contested_user_name_goes_to_one() {
        use std::sync::atomic::Ordering::SeqCst;
        let backend = Arc::new(Slow::default());
        let p = Provider::temporary(ProviderConfig::default())
            .unwrap()
            .with_backend(backend.clone());
        let user = |name: &str| json!({"schemas": [crate::schema::USER_URN], "userName": name});
        let names = (0..8).map(|i| format!("u{i}"));
        let names: Vec<String> = names
            .chain(std::iter::repeat_n("Taken".into(), 4))
            .collect();
        let bodies: Vec<Value> = names.iter().map(|n| user(n)).collect();
        let created = futures::future::join_all(bodies.iter().map(|b| p.create(USERS, b)));
        let (made, refused): (Vec<_>, Vec<_>) = created.await.into_iter().partition(Result::is_ok);
        assert_eq!(made.len(), 9, "eight names, and the contested one once");
        assert!(refused
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| e.status == 409)));
        assert!(
            backend.most.load(SeqCst) > 1,
            "user creates went one at a time"
        );
        let ids: Vec<String> = made.into_iter().map(|v| v.unwrap().id).collect();

        // Two renames to one name (case-insensitively): one wins.
        let rename = |name: &str| {
            json!({"schemas": [crate::schema::PATCH_OP_URN],
                   "Operations": [{"op": "replace", "path": "userName", "value": name}]})
        };
        let (a, b) = (rename("same"), rename("SAME"));
        let (a, b) = tokio::join!(
            p.patch(USERS, &ids[0], &a, None),
            p.patch(USERS, &ids[1], &b, None)
        );
        assert!(a.is_ok() != b.is_ok(), "one rename wins: {a:?} {b:?}");
        let names = backend.user_names.lock().unwrap().clone();
        for contested in ["taken", "same"] {
            let given = names.iter().filter(|n| *n == contested).count();
            assert_eq!(given, 1, "the product was given {contested} {given} times");
        }

        // People join a group while some of them are deleted: nobody deleted stays a member.
        let group = json!({"schemas": [crate::schema::GROUP_URN], "displayName": "g"});
        let g = p.create(GROUPS, &group).await.unwrap().id;
        let add = |u: &str| {
            json!({"schemas": [crate::schema::PATCH_OP_URN],
                   "Operations": [{"op": "add", "path": "members", "value": [{"value": u}]}]})
        };
        let adds: Vec<Value> = ids.iter().map(|u| add(u)).collect();
        let joins = adds.iter().map(|a| p.patch(GROUPS, &g, a, None));
        let deletes = ids[..4].iter().map(|u| p.delete(USERS, u, None));
        let (_, deleted) = tokio::join!(
            futures::future::join_all(joins),
            futures::future::join_all(deletes)
        );
        assert!(deleted.iter().all(Result::is_ok));
        let members: Vec<Value> = members_of(&p.get(GROUPS, &g).unwrap());
        let member_ids: BTreeSet<&str> = members.iter().filter_map(member_value).collect();
        let kept: BTreeSet<&str> = ids[4..].iter().map(String::as_str).collect();
        assert_eq!(member_ids, kept);
        for u in &ids[4..] {
            let groups = p.get(USERS, u).unwrap().doc["groups"].clone();
            assert_eq!(groups.as_array().map(Vec::len), Some(1), "{u}: {groups}");
        }
    }

    /// Records what it is told, fails on demand, and links each resource to a counter.
    #[derive(Debug, Default)]
    struct Recorder {
        fail: std::sync::atomic::AtomicBool,
        seen: std::sync::Mutex<Vec<(String, Option<Value>)>>,
    }

    impl Backend for Recorder {
        fn apply<'a>(&'a self, c: BackendChange<'a>) -> BoxFuture<'a, Result<Links>> {
            Box::pin(async move {
                if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err(ScimError::new(503, None, "native side down"));
                }
                let what = match (c.old, c.new) {
                    (None, Some(_)) => "create",
                    (Some(_), Some(_)) => "update",
                    _ => "delete",
                };
                let mut seen = self.seen.lock().unwrap();
                seen.push((what.to_owned(), c.link.cloned()));
                Ok(Links::from(Some(json!(seen.len()))))
            })
        }
    }

    #[tokio::test]
    async fn a_backend_sees_every_change_first_and_its_failure_changes_nothing() {
        let backend = Arc::new(Recorder::default());
        let p = Provider::temporary(ProviderConfig::default())
            .unwrap()
            .with_backend(backend.clone());
        let body = json!({"schemas": [crate::schema::USER_URN], "userName": "ann"});
        let id = p.create(USERS, &body).await.unwrap().id;
        let view = p.get(USERS, &id).unwrap();
        assert!(!view.doc.contains_key(LINK_KEY), "links are never shown");
        let patch = json!({"schemas": [crate::schema::PATCH_OP_URN],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Ann"}]});
        p.patch(USERS, &id, &patch, None).await.unwrap();

        backend
            .fail
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let other = json!({"schemas": [crate::schema::PATCH_OP_URN],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Changed"}]});
        assert_eq!(
            p.patch(USERS, &id, &other, None).await.unwrap_err().status,
            503
        );
        assert_eq!(p.delete(USERS, &id, None).await.unwrap_err().status, 503);
        let bob = json!({"schemas": [crate::schema::USER_URN], "userName": "bob"});
        assert_eq!(p.create(USERS, &bob).await.unwrap_err().status, 503);
        let kept = p.get(USERS, &id).unwrap();
        assert_eq!(kept.doc["displayName"], "Ann");
        assert_eq!(p.store().count(USERS), 1);

        backend
            .fail
            .store(false, std::sync::atomic::Ordering::SeqCst);
        p.delete(USERS, &id, None).await.unwrap();
        let seen = backend.seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![
                ("create".to_owned(), None),
                ("update".to_owned(), Some(json!(1))),
                ("delete".to_owned(), Some(json!(2))),
            ]
        );
    }

    #[tokio::test]
    async fn a_backend_is_never_asked_to_apply_a_duplicate() {
        let backend = Arc::new(Recorder::default());
        let p = Provider::temporary(ProviderConfig::default())
            .unwrap()
            .with_backend(backend.clone());
        let body = json!({"schemas": [crate::schema::USER_URN], "userName": "ann"});
        p.create(USERS, &body).await.unwrap();
        assert_eq!(p.create(USERS, &body).await.unwrap_err().status, 409);
        assert_eq!(backend.seen.lock().unwrap().len(), 1);
    }
}
