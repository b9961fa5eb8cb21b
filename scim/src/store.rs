//! The resource store on sled.
//!
//! Layout: one sled tree of documents per resource type (`id -> JSON`). Write-only values
//! (`password`) are kept inside the document as salted digests under the reserved key
//! `_secrets`, which is never an attribute name. Secondary indexes (`path, value -> ids`) and
//! group memberships (`member -> groups`) live in memory and are rebuilt from the documents
//! when the store opens, so they can never disagree with what is on disk.
//!
//! Writers are serialised by a mutex; uniqueness is checked under it. A write of one resource is
//! one sled insert; a change to several (a delete that leaves groups) is one transaction.
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

/// Derived state, rebuilt from the documents at open.
#[derive(Debug, Default)]
struct Derived {
    /// Per resource type: (canonical path, folded value) -> ids.
    index: Vec<HashMap<(String, String), BTreeSet<String>>>,
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

/// One resource's change: `old` absent for a create, `new` absent for a delete.
#[derive(Debug)]
pub struct Change<'a> {
    pub rt: usize,
    pub id: &'a str,
    pub old: Option<&'a Map<String, Value>>,
    pub new: Option<&'a Map<String, Value>>,
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
                groups_of: HashMap::new(),
            }),
            write_lock: Mutex::new(()),
            commit,
        };
        store.rebuild()?;
        Ok(store)
    }

    /// Recomputes indexes and memberships from the stored documents.
    fn rebuild(&self) -> Result<()> {
        let mut derived = self.derived_mut();
        for rt in 0..self.docs.len() {
            for entry in self.docs[rt].iter() {
                let (k, v) = entry?;
                let id = String::from_utf8_lossy(&k).into_owned();
                let doc = decode(&v)?;
                apply_derived(&mut derived, &self.defs[rt], rt, &id, None, Some(&doc));
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

    /// The stored bytes of a resource.
    pub fn get_raw(&self, rt: usize, id: &str) -> Result<Option<sled::IVec>> {
        Ok(self.docs[rt].get(id.as_bytes())?)
    }

    pub fn get(&self, rt: usize, id: &str) -> Result<Option<Map<String, Value>>> {
        self.get_raw(rt, id)?.map(|raw| decode(&raw)).transpose()
    }

    pub fn count(&self, rt: usize) -> usize {
        self.docs[rt].len()
    }

    /// Every document of a type, in id order.
    pub fn scan(&self, rt: usize) -> impl Iterator<Item = Result<(String, sled::IVec)>> + '_ {
        self.docs[rt].iter().map(|r| {
            let (k, v) = r?;
            Ok((String::from_utf8_lossy(&k).into_owned(), v))
        })
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

    /// Checks uniqueness, persists the changes (one insert, or one transaction for several),
    /// then updates indexes and memberships. The caller holds the write lock.
    pub fn write(&self, _guard: &WriteGuard<'_>, changes: &[Change<'_>]) -> Result<()> {
        self.check_unique(changes)?;
        let encoded: Vec<Option<Vec<u8>>> = changes
            .iter()
            .map(|c| c.new.map(encode).transpose())
            .collect::<Result<_>>()?;
        if let ([c], [value]) = (changes, encoded.as_slice()) {
            match value {
                Some(v) => self.docs[c.rt].insert(c.id.as_bytes(), v.as_slice())?,
                None => self.docs[c.rt].remove(c.id.as_bytes())?,
            };
        } else {
            let trees: Vec<&sled::Tree> = self.docs.iter().collect();
            trees
                .as_slice()
                .transaction(|tx: &Vec<TransactionalTree>| {
                    for (c, value) in changes.iter().zip(&encoded) {
                        match value {
                            Some(v) => tx[c.rt].insert(c.id.as_bytes(), v.as_slice())?,
                            None => tx[c.rt].remove(c.id.as_bytes())?,
                        };
                    }
                    Ok::<(), ConflictableTransactionError<ScimError>>(())
                })?;
        }
        let mut d = self.derived_mut();
        for c in changes {
            apply_derived(&mut d, &self.defs[c.rt], c.rt, c.id, c.old, c.new);
        }
        Ok(())
    }

    /// Refuses changes that would give a unique value to a second resource (409 `uniqueness`).
    pub fn check_unique(&self, changes: &[Change<'_>]) -> Result<()> {
        let d = self.derived();
        for c in changes {
            let def = &self.defs[c.rt];
            let old_keys = c.old.map(|o| index_entries(def, o)).unwrap_or_default();
            for key in c
                .new
                .map(|n| index_entries(def, n))
                .unwrap_or_default()
                .difference(&old_keys)
            {
                let unique = def.is_unique(&key.0);
                let taken = d.index[c.rt]
                    .get(key)
                    .is_some_and(|ids| ids.iter().any(|h| h != c.id));
                if unique && taken {
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

/// Moves indexes and memberships from `old` to `new` for one resource.
fn apply_derived(
    d: &mut Derived,
    def: &ResourceDef,
    rt: usize,
    id: &str,
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
) {
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
    let members = |doc: Option<&Map<String, Value>>| -> BTreeSet<String> {
        doc.and_then(|d| d.get("members"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_owned))
            .collect()
    };
    let name = |doc: Option<&Map<String, Value>>| {
        doc.and_then(|n| n.get("displayName"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let (before, after) = (members(old), members(new));
    // A renamed group updates every member's entry; otherwise only the members who changed.
    let renamed = name(old) != name(new);
    for m in before.iter().filter(|m| renamed || !after.contains(*m)) {
        if let Some(groups) = d.groups_of.get_mut(m) {
            groups.remove(id);
            if groups.is_empty() {
                d.groups_of.remove(m);
            }
        }
    }
    let name = name(new);
    for m in after.into_iter().filter(|m| renamed || !before.contains(m)) {
        d.groups_of
            .entry(m)
            .or_default()
            .insert(id.to_owned(), name.clone());
    }
}

/// (canonical path, folded value) for every indexed string value of a document.
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
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{}:{digest}", salt.simple())
}

pub(crate) fn encode(doc: &Map<String, Value>) -> Result<Vec<u8>> {
    serde_json::to_vec(doc)
        .map_err(|e| ScimError::internal(format!("cannot encode a resource: {e}")))
}

pub(crate) fn decode(raw: &[u8]) -> Result<Map<String, Value>> {
    serde_json::from_slice(raw)
        .map_err(|e| ScimError::internal(format!("a stored resource is unreadable: {e}")))
}
