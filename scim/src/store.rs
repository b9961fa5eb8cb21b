//! The resource store on sled.
//!
//! Layout: one sled tree of documents per resource type (`id -> JSON`). Write-only values
//! (`password`) are kept inside the document as salted digests under the reserved key
//! `_secrets`, which is never an attribute name. A Group's members are not inside its document:
//! each is an entry of its own in the same tree, keyed `group id NUL member id`, so a membership
//! change writes the member and the (small) group document, whatever the group's size.
//! Secondary indexes (`path, value -> ids`), member lists and group memberships
//! (`member -> groups`) live in memory and are rebuilt from the tree when the store opens, so
//! they can never disagree with what is on disk.
//!
//! Writers are serialised by a mutex; uniqueness is checked under it. A write of one key is one
//! sled insert, of several keys in one tree a [`TreeWrites`], across trees (a deleted user
//! leaving its groups) one transaction.
//! Durability: a write is acknowledged after a flush that covers it; one flusher thread serves
//! every writer waiting at that moment (group commit). Measured on sled 0.34: an insert with
//! such flushes costs about 32 us, a batch or transaction about 100 us, hence this shape.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{mpsc, Mutex, MutexGuard, RwLock};

use serde_json::{Map, Value};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use crate::error::{Result, ScimError};
use crate::schema::{ResourceDef, ResourceKind};

/// Key of the write-only values' digests inside a stored document.
pub const SECRETS_KEY: &str = "_secrets";
/// Key of a connector's link to the native object (for example its id there) inside a stored
/// document, written in the same insert as the resource so the two never disagree.
pub const LINK_KEY: &str = "_link";

/// How writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledge a write only after sled flushed it (survives a killed process).
    Flush,
    /// Acknowledge at once; sled flushes in the background. Faster, and reports must say so.
    Background,
}

type FlushWaiter = tokio::sync::oneshot::Sender<std::result::Result<(), String>>;

/// Writes to several keys of one tree that a crash leaves all done or none done.
///
/// sled 0.34 makes a `Batch` atomic by sealing and writing out its log buffer before and after
/// the batch (`pin_log`): two synchronous disk writes per batch, the largest cost in a load
/// profile. Instead the whole list is first inserted under one intent key (a single insert is
/// atomic), then each key is written, then the intent is removed. sled recovers a prefix of its
/// log, so after a crash either every write landed or the intent is still there, and
/// [`TreeWrites::recover`] applies it again when the tree opens (each write is idempotent).
/// Writers of a tree must be serialised: there is one intent key per tree.
#[derive(Debug, Default)]
pub struct TreeWrites(Vec<(Vec<u8>, Option<Vec<u8>>)>);

/// Sorts before every other key, and holds a NUL, which no document id does.
const INTENT_KEY: &[u8] = b"\0intent";

impl TreeWrites {
    pub fn insert(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.0.push((key.into(), Some(value.into())));
    }

    pub fn remove(&mut self, key: impl Into<Vec<u8>>) {
        self.0.push((key.into(), None));
    }

    pub fn apply(self, tree: &sled::Tree) -> Result<()> {
        if self.0.len() > 1 {
            tree.insert(INTENT_KEY, self.encode())?;
        }
        self.write_each(tree)?;
        if self.0.len() > 1 {
            tree.remove(INTENT_KEY)?;
        }
        Ok(())
    }

    /// Finishes the writes a crash interrupted; call when the tree opens, before reading it.
    pub fn recover(tree: &sled::Tree) -> Result<()> {
        if let Some(raw) = tree.get(INTENT_KEY)? {
            Self::decode(&raw)
                .ok_or_else(|| ScimError::internal("an interrupted write is unreadable"))?
                .write_each(tree)?;
            tree.remove(INTENT_KEY)?;
        }
        Ok(())
    }

    fn write_each(&self, tree: &sled::Tree) -> Result<()> {
        for (key, value) in &self.0 {
            match value {
                Some(v) => tree.insert(key.as_slice(), v.as_slice())?,
                None => tree.remove(key.as_slice())?,
            };
        }
        Ok(())
    }

    /// The number of writes (u32 LE), then per write: key length (u32 LE), key, then 0 for a
    /// removal or 1, value length, value.
    fn encode(&self) -> Vec<u8> {
        let mut out = (self.0.len() as u32).to_le_bytes().to_vec();
        let mut put = |bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        };
        for (key, value) in &self.0 {
            put(key);
            match value {
                Some(v) => {
                    put(&[1]);
                    put(v);
                }
                None => put(&[0]),
            }
        }
        out
    }

    fn decode(mut raw: &[u8]) -> Option<TreeWrites> {
        fn take(raw: &mut &[u8]) -> Option<Vec<u8>> {
            let len = u32::from_le_bytes(raw.get(..4)?.try_into().ok()?) as usize;
            let bytes = raw.get(4..4 + len)?.to_vec();
            *raw = &raw[4 + len..];
            Some(bytes)
        }
        let count = u32::from_le_bytes(raw.get(..4)?.try_into().ok()?);
        raw = &raw[4..];
        let mut writes = TreeWrites::default();
        for _ in 0..count {
            let key = take(&mut raw)?;
            match take(&mut raw)?.as_slice() {
                [1] => writes.insert(key, take(&mut raw)?),
                [0] => writes.remove(key),
                _ => return None,
            }
        }
        raw.is_empty().then_some(writes)
    }
}

/// Derived state, rebuilt from the tree at open.
#[derive(Debug, Default)]
struct Derived {
    /// Per resource type: (canonical path, folded value) -> ids.
    index: Vec<HashMap<(String, String), BTreeSet<String>>>,
    /// Per resource type: how many documents.
    counts: Vec<usize>,
    /// group id -> member id -> the stored member entry.
    members: HashMap<String, BTreeMap<String, Value>>,
    /// member id -> (group id -> group displayName).
    groups_of: HashMap<String, BTreeMap<String, String>>,
}

/// The sled store behind a service provider.
#[derive(Debug)]
pub struct Store {
    db: sled::Db,
    docs: Vec<sled::Tree>,
    defs: Vec<ResourceDef>,
    derived: RwLock<Derived>,
    write_lock: Mutex<()>,
    commit: Option<GroupCommit>,
}

impl Drop for Store {
    /// Stops the flusher before the database closes, so the folder can be reopened at once.
    fn drop(&mut self) {
        drop(self.commit.take());
        let _ = self.db.flush();
    }
}

/// Durable acknowledgement for many writers: one thread flushes sled and answers every writer
/// that was waiting when the flush began (group commit). Dropping it stops the thread.
#[derive(Debug)]
pub struct GroupCommit {
    tx: Option<Mutex<mpsc::Sender<FlushWaiter>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GroupCommit {
    pub fn start(db: sled::Db) -> Result<GroupCommit> {
        let (tx, rx) = mpsc::channel::<FlushWaiter>();
        let thread = std::thread::Builder::new()
            .name("sled-flusher".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut waiters = vec![first];
                    waiters.extend(rx.try_iter());
                    let result = db.flush().map(|_| ()).map_err(|e| e.to_string());
                    for w in waiters {
                        let _ = w.send(result.clone());
                    }
                }
            })
            .map_err(|e| ScimError::internal(format!("cannot start the flusher thread: {e}")))?;
        Ok(GroupCommit {
            tx: Some(Mutex::new(tx)),
            thread: Some(thread),
        })
    }

    /// Waits until everything written before this call is on disk.
    pub async fn wait(&self) -> Result<()> {
        let stopped = || ScimError::internal("the flusher stopped; the write may not be durable");
        let tx = self.tx.as_ref().ok_or_else(stopped)?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        if tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(done_tx)
            .is_err()
        {
            return Err(stopped());
        }
        match done_rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ScimError::internal(format!("flushing to disk failed: {e}"))),
            Err(_) => Err(stopped()),
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Proof that the caller holds the store's write lock.
#[derive(Debug)]
pub struct WriteGuard<'a>(#[allow(dead_code)] MutexGuard<'a, ()>);

/// One resource's change: `old` absent for a create, `new` absent for a delete. Documents never
/// hold a Group's `members`: those change through `members`.
#[derive(Debug)]
pub struct Change<'a> {
    pub rt: usize,
    pub id: &'a str,
    pub old: Option<&'a Map<String, Value>>,
    pub new: Option<&'a Map<String, Value>>,
    /// A Group's members that join or leave. A deleted group's members all leave with it.
    pub members: Members,
}

/// A change to a Group's member list.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Members {
    /// Entries stored as given (`value` is the member's id): a newcomer, or a new entry for a
    /// member (its `display`, or the connector's `_link`).
    pub upsert: Vec<Value>,
    /// Ids of members who leave.
    pub leave: Vec<String>,
}

impl Members {
    pub fn is_empty(&self) -> bool {
        self.upsert.is_empty() && self.leave.is_empty()
    }
}

/// The id a member entry names.
pub fn member_value(entry: &Value) -> Option<&str> {
    entry.get("value").and_then(Value::as_str)
}

/// Separates a member entry's key from its group's: ids never hold a NUL.
const MEMBER_SEPARATOR: u8 = 0;

fn member_key(group: &str, member: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(group.len() + member.len() + 1);
    key.extend_from_slice(group.as_bytes());
    key.push(MEMBER_SEPARATOR);
    key.extend_from_slice(member.as_bytes());
    key
}

/// (group id, member id) of a member entry's key; `None` for a document's key.
fn split_member_key(key: &[u8]) -> Option<(String, String)> {
    let at = key.iter().position(|b| *b == MEMBER_SEPARATOR)?;
    Some((
        String::from_utf8_lossy(&key[..at]).into_owned(),
        String::from_utf8_lossy(&key[at + 1..]).into_owned(),
    ))
}

/// How long an open waits for a stopped instance in the same process to let go of the folder:
/// sled's background flusher holds the lock until its next tick (500 ms).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens (or creates) a sled database in `path`. A restart in the same process can come before
/// the previous instance's flusher has released the folder's lock: wait for it, briefly.
pub fn open_folder(path: &Path) -> Result<sled::Db> {
    let started = std::time::Instant::now();
    loop {
        match sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .open()
        {
            Ok(db) => return Ok(db),
            // sled reports a held lock as an `Other` I/O error with this text.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => {
                return Err(ScimError::internal(format!(
                    "cannot open the database in {}: {e}",
                    path.display()
                )))
            }
        }
    }
}

impl Store {
    pub fn open(path: &Path, defs: &[ResourceDef], durability: Durability) -> Result<Store> {
        let db = open_folder(path)?;
        Self::with_db(db, defs, durability)
    }

    /// A store in memory only, for tests and benches.
    pub fn temporary(defs: &[ResourceDef]) -> Result<Store> {
        let db = sled::Config::new().temporary(true).open()?;
        Self::with_db(db, defs, Durability::Background)
    }

    fn with_db(db: sled::Db, defs: &[ResourceDef], durability: Durability) -> Result<Store> {
        let docs = defs
            .iter()
            .map(|d| db.open_tree(format!("resources/{}", d.name)))
            .collect::<sled::Result<Vec<_>>>()?;
        let commit = match durability {
            Durability::Flush => Some(GroupCommit::start(db.clone())?),
            Durability::Background => None,
        };
        let store = Store {
            db,
            docs,
            defs: defs.to_vec(),
            derived: RwLock::new(Derived {
                index: vec![HashMap::new(); defs.len()],
                counts: vec![0; defs.len()],
                ..Derived::default()
            }),
            write_lock: Mutex::new(()),
            commit,
        };
        store.rebuild()?;
        Ok(store)
    }

    /// Recomputes indexes and memberships from the tree. A Group document written before
    /// members were kept apart still holds them: they move out to entries of their own here.
    fn rebuild(&self) -> Result<()> {
        let mut derived = self.derived_mut();
        for rt in 0..self.docs.len() {
            TreeWrites::recover(&self.docs[rt])?;
            let mut entries = Vec::new();
            let mut names = HashMap::new();
            for entry in self.docs[rt].iter() {
                let (k, v) = entry?;
                if let Some((group, _)) = split_member_key(&k) {
                    entries.push((group, decode_value(&v)?));
                    continue;
                }
                let id = String::from_utf8_lossy(&k).into_owned();
                let mut doc = decode(&v)?;
                let mut change = Change {
                    rt,
                    id: &id,
                    old: None,
                    new: None,
                    members: Members::default(),
                };
                if let Some(Value::Array(members)) = doc.remove("members") {
                    let mut writes = TreeWrites::default();
                    for m in &members {
                        if let Some(member) = member_value(m) {
                            writes.insert(member_key(&id, member), encode_value(m)?);
                        }
                    }
                    writes.insert(id.as_bytes(), encode(&doc)?);
                    writes.apply(&self.docs[rt])?;
                    change.members.upsert = members;
                }
                change.new = Some(&doc);
                apply_derived(&mut derived, &self.defs[rt], rt, &change);
                if let Some(Value::String(name)) = doc.get("displayName") {
                    names.insert(id.clone(), name.clone());
                }
            }
            for (group, entry) in entries {
                let name = names.get(&group).map(String::as_str).unwrap_or_default();
                join(&mut derived, &group, name, entry);
            }
        }
        Ok(())
    }

    fn derived(&self) -> std::sync::RwLockReadGuard<'_, Derived> {
        // Derived state is only changed after sled accepted a write, so a panic elsewhere leaves it valid.
        self.derived.read().unwrap_or_else(|p| p.into_inner())
    }

    fn derived_mut(&self) -> std::sync::RwLockWriteGuard<'_, Derived> {
        self.derived.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn lock(&self) -> WriteGuard<'_> {
        // Commits are atomic, so a writer that panicked left nothing half-done behind the lock.
        WriteGuard(self.write_lock.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The stored bytes of a resource (a Group's without its members).
    pub fn get_raw(&self, rt: usize, id: &str) -> Result<Option<sled::IVec>> {
        Ok(self.docs[rt].get(id.as_bytes())?)
    }

    pub fn get(&self, rt: usize, id: &str) -> Result<Option<Map<String, Value>>> {
        self.get_raw(rt, id)?.map(|raw| decode(&raw)).transpose()
    }

    pub fn count(&self, rt: usize) -> usize {
        self.derived().counts[rt]
    }

    /// Every document of a type, in id order.
    pub fn scan(&self, rt: usize) -> impl Iterator<Item = Result<(String, sled::IVec)>> + '_ {
        self.docs[rt].iter().filter_map(|r| match r {
            Ok((k, _)) if k.contains(&MEMBER_SEPARATOR) => None,
            Ok((k, v)) => Some(Ok((String::from_utf8_lossy(&k).into_owned(), v))),
            Err(e) => Some(Err(e.into())),
        })
    }

    /// A Group's member entries, in member id order.
    pub fn members(&self, group: &str) -> Vec<Value> {
        self.derived()
            .members
            .get(group)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn is_member(&self, group: &str, member: &str) -> bool {
        self.derived()
            .members
            .get(group)
            .is_some_and(|m| m.contains_key(member))
    }

    /// A member's entry in a Group, if it is a member.
    pub fn member(&self, group: &str, member: &str) -> Option<Value> {
        self.derived().members.get(group)?.get(member).cloned()
    }

    /// Ids whose indexed `path` holds `value` (already case-folded as the attribute says).
    pub fn lookup(&self, rt: usize, path: &str, value: &str) -> Vec<String> {
        let d = self.derived();
        d.index[rt]
            .get(&(path.to_owned(), value.to_owned()))
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Groups that list `member` directly: (group id, group displayName).
    pub fn direct_groups(&self, member: &str) -> Vec<(String, String)> {
        let d = self.derived();
        d.groups_of
            .get(member)
            .map(|g| g.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Checks uniqueness, persists the changes (one insert, one batch for several keys of one
    /// tree, or one transaction across trees), then updates indexes and memberships. The caller
    /// holds the write lock.
    pub fn write(&self, _guard: &WriteGuard<'_>, changes: &[Change<'_>]) -> Result<()> {
        self.check_unique(changes)?;
        let writes = self.key_writes(changes)?;
        match writes.as_slice() {
            [(rt, ..), rest @ ..] if rest.iter().all(|(t, ..)| t == rt) => {
                let rt = *rt;
                TreeWrites(writes.into_iter().map(|(_, k, v)| (k, v)).collect())
                    .apply(&self.docs[rt])?;
            }
            _ => {
                let trees: Vec<&sled::Tree> = self.docs.iter().collect();
                trees
                    .as_slice()
                    .transaction(|tx: &Vec<TransactionalTree>| {
                        for (rt, key, value) in &writes {
                            match value {
                                Some(v) => tx[*rt].insert(key.as_slice(), v.as_slice())?,
                                None => tx[*rt].remove(key.as_slice())?,
                            };
                        }
                        Ok::<(), ConflictableTransactionError<ScimError>>(())
                    })?;
            }
        }
        let mut d = self.derived_mut();
        for c in changes {
            apply_derived(&mut d, &self.defs[c.rt], c.rt, c);
        }
        Ok(())
    }

    /// The keys a change writes (`Some`) or removes (`None`), per tree.
    fn key_writes(&self, changes: &[Change<'_>]) -> Result<Vec<KeyWrite>> {
        let d = self.derived();
        let mut out = Vec::new();
        for c in changes {
            out.push((
                c.rt,
                c.id.as_bytes().to_vec(),
                c.new.map(encode).transpose()?,
            ));
            if c.new.is_none() {
                let members = d.members.get(c.id).into_iter().flat_map(|m| m.keys());
                out.extend(members.map(|m| (c.rt, member_key(c.id, m), None)));
                continue;
            }
            for entry in &c.members.upsert {
                let member = member_value(entry).ok_or_else(|| {
                    ScimError::internal("a member entry to store names no member")
                })?;
                out.push((c.rt, member_key(c.id, member), Some(encode_value(entry)?)));
            }
            out.extend(
                c.members
                    .leave
                    .iter()
                    .map(|m| (c.rt, member_key(c.id, m), None)),
            );
        }
        Ok(out)
    }

    /// The unique values `new` takes that `old` did not hold, as lock names (a NUL, which no
    /// id holds, then the type, path and folded value): writers that claim the same value
    /// concurrently must wait for each other, or both could pass the check before either wrote.
    pub fn unique_claims(
        &self,
        rt: usize,
        old: Option<&Map<String, Value>>,
        new: &Map<String, Value>,
    ) -> BTreeSet<String> {
        new_unique_keys(&self.defs[rt], old, Some(new))
            .into_iter()
            .map(|(path, value)| format!("\0{rt}\0{path}\0{value}"))
            .collect()
    }

    /// Refuses changes that would give a unique value to a second resource (409 `uniqueness`).
    pub fn check_unique(&self, changes: &[Change<'_>]) -> Result<()> {
        let d = self.derived();
        for c in changes {
            let def = &self.defs[c.rt];
            for key in new_unique_keys(def, c.old, c.new) {
                let taken = d.index[c.rt]
                    .get(&key)
                    .is_some_and(|ids| ids.iter().any(|h| h != c.id));
                if taken {
                    return Err(ScimError::uniqueness(format!(
                        "{} '{}' is already taken by another {}",
                        key.0, key.1, def.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// Waits until everything written before this call is on disk (no-op in background mode).
    pub async fn durable(&self) -> Result<()> {
        match &self.commit {
            Some(commit) => commit.wait().await,
            None => Ok(()),
        }
    }
}

/// (tree, key, new value or removal).
type KeyWrite = (usize, Vec<u8>, Option<Vec<u8>>);

/// Moves indexes, counts and memberships through one change.
fn apply_derived(d: &mut Derived, def: &ResourceDef, rt: usize, change: &Change<'_>) {
    let Change { id, old, new, .. } = *change;
    match (old, new) {
        (None, Some(_)) => d.counts[rt] += 1,
        (Some(_), None) => d.counts[rt] = d.counts[rt].saturating_sub(1),
        _ => {}
    }
    let old_keys = old.map(|o| index_entries(def, o)).unwrap_or_default();
    let new_keys = new.map(|n| index_entries(def, n)).unwrap_or_default();
    let index = &mut d.index[rt];
    for key in old_keys.difference(&new_keys) {
        if let Some(ids) = index.get_mut(key) {
            ids.remove(id);
            if ids.is_empty() {
                index.remove(key);
            }
        }
    }
    for key in new_keys.difference(&old_keys) {
        index.entry(key.clone()).or_default().insert(id.to_owned());
    }
    if def.kind != ResourceKind::Group {
        return;
    }
    let name = |doc: Option<&Map<String, Value>>| {
        doc.and_then(|n| n.get("displayName"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let Some(new) = new else {
        for member in d.members.remove(id).into_iter().flat_map(|m| m.into_keys()) {
            leave(d, id, &member);
        }
        return;
    };
    let name = name(Some(new));
    for member in &change.members.leave {
        if let Some(members) = d.members.get_mut(id) {
            members.remove(member);
        }
        leave(d, id, member);
    }
    for entry in &change.members.upsert {
        join(d, id, &name, entry.clone());
    }
    if old.is_some_and(|o| o.get("displayName").and_then(Value::as_str) != Some(name.as_str())) {
        let members: Vec<String> = d
            .members
            .get(id)
            .into_iter()
            .flat_map(|m| m.keys().cloned())
            .collect();
        for member in members {
            d.groups_of
                .entry(member)
                .or_default()
                .insert(id.to_owned(), name.clone());
        }
    }
    if d.members.get(id).is_some_and(BTreeMap::is_empty) {
        d.members.remove(id);
    }
}

fn join(d: &mut Derived, group: &str, name: &str, entry: Value) {
    let Some(member) = member_value(&entry).map(str::to_owned) else {
        return;
    };
    d.groups_of
        .entry(member.clone())
        .or_default()
        .insert(group.to_owned(), name.to_owned());
    d.members
        .entry(group.to_owned())
        .or_default()
        .insert(member, entry);
}

fn leave(d: &mut Derived, group: &str, member: &str) {
    if let Some(groups) = d.groups_of.get_mut(member) {
        groups.remove(group);
        if groups.is_empty() {
            d.groups_of.remove(member);
        }
    }
}

/// (canonical path, folded value) for every indexed string value of a document.
/// The unique (path, folded value) pairs `new` holds and `old` did not.
fn new_unique_keys(
    def: &ResourceDef,
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
) -> Vec<(String, String)> {
    let held = old.map(|o| index_entries(def, o)).unwrap_or_default();
    let now = new.map(|n| index_entries(def, n)).unwrap_or_default();
    now.difference(&held)
        .filter(|(path, _)| def.is_unique(path))
        .cloned()
        .collect()
}

fn index_entries(def: &ResourceDef, doc: &Map<String, Value>) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for p in &def.indexed {
        let Some(r) = def.resolve(p) else { continue };
        let name = r.canonical_name();
        for v in r.leaf_values(doc) {
            if let Some(s) = v.as_str() {
                out.insert((name.clone(), fold(s, r.leaf().case_exact)));
            }
        }
    }
    out
}

pub(crate) fn fold(s: &str, case_exact: bool) -> String {
    if case_exact {
        s.to_owned()
    } else {
        s.to_lowercase()
    }
}

/// Secrets are kept only as salted SHA-256 digests: nothing ever needs them back.
pub fn hash_secret(value: &Value) -> String {
    use sha2::{Digest, Sha256};
    let salt = uuid::Uuid::new_v4();
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(value.to_string().as_bytes());
    let digest = format!("{:x}", h.finalize());
    format!("sha256:{}:{digest}", salt.simple())
}

pub(crate) fn encode(doc: &Map<String, Value>) -> Result<Vec<u8>> {
    serde_json::to_vec(doc)
        .map_err(|e| ScimError::internal(format!("cannot encode a resource: {e}")))
}

fn encode_value(value: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| ScimError::internal(format!("cannot encode a member entry: {e}")))
}

fn decode_value(raw: &[u8]) -> Result<Value> {
    serde_json::from_slice(raw)
        .map_err(|e| ScimError::internal(format!("a stored member entry is unreadable: {e}")))
}

pub(crate) fn decode(raw: &[u8]) -> Result<Map<String, Value>> {
    serde_json::from_slice(raw)
        .map_err(|e| ScimError::internal(format!("a stored resource is unreadable: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{group_resource, user_resource};
    use proptest::prelude::*;
    use serde_json::json;

    const GROUPS: usize = 1;

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn member_ids(store: &Store, group: &str) -> Vec<String> {
        let members = store.members(group);
        members
            .iter()
            .filter_map(member_value)
            .map(str::to_owned)
            .collect()
    }

    fn writes() -> impl Strategy<Value = Vec<(Vec<u8>, Option<Vec<u8>>)>> {
        let bytes = prop::collection::vec(any::<u8>(), 0..40);
        prop::collection::vec((bytes.clone(), prop::option::of(bytes)), 0..8)
    }

    proptest! {
        #[test]
        fn an_intent_reads_back_as_written(list in writes()) {
            let encoded = TreeWrites(list.clone()).encode();
            prop_assert_eq!(TreeWrites::decode(&encoded).map(|w| w.0), Some(list));
            // A torn intent is refused, not half applied.
            for cut in 0..encoded.len() {
                prop_assert!(TreeWrites::decode(&encoded[..cut]).is_none(), "cut at {}", cut);
            }
        }
    }

    #[test]
    fn writes_a_crash_interrupted_are_finished_when_the_tree_opens() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        tree.insert("stale", "x").unwrap();
        let mut interrupted = TreeWrites::default();
        interrupted.insert("a", "1");
        interrupted.remove("stale");
        interrupted.insert("b", "2");
        // As a crash would leave it: the intent landed, the first write only.
        tree.insert(INTENT_KEY, interrupted.encode()).unwrap();
        tree.insert("a", "1").unwrap();
        TreeWrites::recover(&tree).unwrap();
        let keys: Vec<Vec<u8>> = tree.iter().keys().map(|k| k.unwrap().to_vec()).collect();
        assert_eq!(keys, [b"a".to_vec(), b"b".to_vec()]);
        TreeWrites::recover(&tree).unwrap();
        assert_eq!(tree.len(), 2, "nothing is left to recover");
    }

    #[test]
    fn members_live_apart_survive_a_reopen_and_move_out_of_old_documents() {
        let dir = tempfile::tempdir().unwrap();
        let defs = vec![user_resource(), group_resource()];
        {
            // Written before members were kept apart: inside the group's document.
            let db = open_folder(dir.path()).unwrap();
            let old = doc(json!({"id": "g1", "displayName": "Eng", "members": [
                {"value": "u1", "type": "User"}, {"value": "u2", "type": "User"}]}));
            db.open_tree("resources/Group")
                .unwrap()
                .insert("g1", encode(&old).unwrap())
                .unwrap();
            db.flush().unwrap();
        }
        {
            let store = Store::open(dir.path(), &defs, Durability::Flush).unwrap();
            assert_eq!(store.count(GROUPS), 1);
            assert_eq!(member_ids(&store, "g1"), ["u1", "u2"]);
            let base = store.get(GROUPS, "g1").unwrap().unwrap();
            assert!(!base.contains_key("members"));
            assert_eq!(store.direct_groups("u1"), [("g1".into(), "Eng".into())]);
            let renamed = doc(json!({"id": "g1", "displayName": "Platform"}));
            let change = Change {
                rt: GROUPS,
                id: "g1",
                old: Some(&base),
                new: Some(&renamed),
                members: Members {
                    upsert: vec![json!({"value": "u3", "type": "User", "_link": 7})],
                    leave: vec!["u1".into()],
                },
            };
            store.write(&store.lock(), &[change]).unwrap();
        }
        let store = Store::open(dir.path(), &defs, Durability::Flush).unwrap();
        assert_eq!(member_ids(&store, "g1"), ["u2", "u3"]);
        assert_eq!(store.member("g1", "u3").unwrap()["_link"], 7);
        assert!(store.direct_groups("u1").is_empty());
        assert_eq!(
            store.direct_groups("u2"),
            [("g1".into(), "Platform".into())]
        );
        let ids: Vec<String> = store.scan(GROUPS).map(|r| r.unwrap().0).collect();
        assert_eq!(ids, ["g1"]);

        let base = store.get(GROUPS, "g1").unwrap().unwrap();
        let delete = Change {
            rt: GROUPS,
            id: "g1",
            old: Some(&base),
            new: None,
            members: Members::default(),
        };
        store.write(&store.lock(), &[delete]).unwrap();
        assert_eq!(store.count(GROUPS), 0);
        assert!(store.members("g1").is_empty() && store.direct_groups("u2").is_empty());
        assert_eq!(
            store.docs[GROUPS].len(),
            0,
            "the members' entries went with the group"
        );
    }
}
