//! The resource store on sled.
//!
//! Layout: per resource type a tree of documents (`id -> JSON`) and a tree of secondary index
//! entries (`path \0 value \0 id`); one tree of group memberships (`member \0 group -> group
//! displayName`) from which `User.groups` is derived; one tree of `returned: never` values.
//! Writers are serialised by a mutex (reads and uniqueness checks happen under it) and every
//! write is one sled transaction over all trees, so indexes never disagree with documents.
//! Durability: a write is acknowledged after a flush that covers it; one flusher thread serves
//! every writer waiting at that moment (group commit).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, MutexGuard};

use serde_json::{Map, Value};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use crate::error::{Result, ScimError};
use crate::schema::{ResourceDef, ResourceKind};

/// How writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledge a write only after sled flushed it (survives a killed process).
    Flush,
    /// Acknowledge at once; sled flushes in the background. Faster, and reports must say so.
    Background,
}

type FlushWaiter = tokio::sync::oneshot::Sender<std::result::Result<(), String>>;

/// The sled store behind a service provider.
#[derive(Debug)]
pub struct Store {
    db: sled::Db,
    /// Per resource type (same order as the defs): documents, then index entries.
    trees: Vec<sled::Tree>,
    memberships: sled::Tree,
    secrets: sled::Tree,
    types: usize,
    write_lock: Mutex<()>,
    flush_tx: Option<Mutex<mpsc::Sender<FlushWaiter>>>,
    flusher: Option<std::thread::JoinHandle<()>>,
    flushes: std::sync::Arc<AtomicU64>,
}

impl Drop for Store {
    /// Stops the flusher before the database closes, so the folder can be reopened at once.
    fn drop(&mut self) {
        drop(self.flush_tx.take());
        if let Some(t) = self.flusher.take() {
            let _ = t.join();
        }
        let _ = self.db.flush();
    }
}

/// Proof that the caller holds the store's write lock.
#[derive(Debug)]
pub struct WriteGuard<'a>(#[allow(dead_code)] MutexGuard<'a, ()>);

/// One staged change to one tree.
#[derive(Debug)]
struct Change {
    tree: usize,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

/// A set of changes committed atomically by [`Store::commit`].
#[derive(Debug, Default)]
pub struct WriteSet {
    changes: Vec<Change>,
}

impl Store {
    pub fn open(path: &Path, defs: &[ResourceDef], durability: Durability) -> Result<Store> {
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| {
                ScimError::internal(format!(
                    "cannot open the database in {}: {e}",
                    path.display()
                ))
            })?;
        Self::with_db(db, defs, durability)
    }

    /// A store in memory only, for tests and benches.
    pub fn temporary(defs: &[ResourceDef]) -> Result<Store> {
        let db = sled::Config::new().temporary(true).open()?;
        Self::with_db(db, defs, Durability::Background)
    }

    fn with_db(db: sled::Db, defs: &[ResourceDef], durability: Durability) -> Result<Store> {
        let mut trees = Vec::new();
        for def in defs {
            trees.push(db.open_tree(format!("resources/{}", def.name))?);
            trees.push(db.open_tree(format!("index/{}", def.name))?);
        }
        let memberships = db.open_tree("memberships")?;
        let secrets = db.open_tree("secrets")?;
        let flushes = std::sync::Arc::new(AtomicU64::new(0));
        let (flush_tx, flusher) = match durability {
            Durability::Flush => {
                let (tx, thread) = spawn_flusher(db.clone(), flushes.clone())?;
                (Some(Mutex::new(tx)), Some(thread))
            }
            Durability::Background => (None, None),
        };
        Ok(Store {
            db,
            trees,
            memberships,
            secrets,
            types: defs.len(),
            write_lock: Mutex::new(()),
            flush_tx,
            flusher,
            flushes,
        })
    }

    pub fn durability(&self) -> Durability {
        if self.flush_tx.is_some() {
            Durability::Flush
        } else {
            Durability::Background
        }
    }

    /// Number of flushes made for waiting writers so far.
    pub fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    fn docs(&self, rt: usize) -> &sled::Tree {
        &self.trees[rt * 2]
    }

    fn index(&self, rt: usize) -> &sled::Tree {
        &self.trees[rt * 2 + 1]
    }

    fn memberships_slot(&self) -> usize {
        self.types * 2
    }

    fn secrets_slot(&self) -> usize {
        self.types * 2 + 1
    }

    pub fn lock(&self) -> WriteGuard<'_> {
        // A writer that panicked left no partial state (commits are atomic), so the lock is reusable.
        WriteGuard(self.write_lock.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The stored bytes of a resource.
    pub fn get_raw(&self, rt: usize, id: &str) -> Result<Option<sled::IVec>> {
        Ok(self.docs(rt).get(id.as_bytes())?)
    }

    pub fn get(&self, rt: usize, id: &str) -> Result<Option<Map<String, Value>>> {
        self.get_raw(rt, id)?.map(|raw| decode(&raw)).transpose()
    }

    pub fn count(&self, rt: usize) -> usize {
        self.docs(rt).len()
    }

    /// Every document of a type, in id order.
    pub fn scan(&self, rt: usize) -> impl Iterator<Item = Result<(String, sled::IVec)>> + '_ {
        self.docs(rt).iter().map(|r| {
            let (k, v) = r?;
            Ok((String::from_utf8_lossy(&k).into_owned(), v))
        })
    }

    /// Ids whose indexed `path` holds `value` (already case-folded as the attribute says).
    pub fn lookup(&self, rt: usize, path: &str, value: &str) -> Result<Vec<String>> {
        let prefix = index_prefix(path, value);
        let mut ids = Vec::new();
        for entry in self.index(rt).scan_prefix(&prefix) {
            let (k, _) = entry?;
            let rest = &k[prefix.len()..];
            // A value holding \0 could make a longer value share this prefix; ids never hold \0.
            if !rest.contains(&0) {
                ids.push(String::from_utf8_lossy(rest).into_owned());
            }
        }
        Ok(ids)
    }

    /// Groups that list `member` directly: (group id, group displayName).
    pub fn direct_groups(&self, member: &str) -> Result<Vec<(String, String)>> {
        let mut prefix = member.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for entry in self.memberships.scan_prefix(&prefix) {
            let (k, v) = entry?;
            out.push((
                String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ));
        }
        Ok(out)
    }

    pub fn has_secret(&self, rt: usize, id: &str, name: &str) -> Result<bool> {
        Ok(self.secrets.contains_key(secret_key(rt, id, name))?)
    }

    /// Stages the index, membership and secret changes that turn `old` into `new` (either may be
    /// absent: create or delete), after checking uniqueness. The caller holds the write lock.
    #[allow(clippy::too_many_arguments)]
    pub fn stage(
        &self,
        _guard: &WriteGuard<'_>,
        set: &mut WriteSet,
        def: &ResourceDef,
        rt: usize,
        id: &str,
        old: Option<&Map<String, Value>>,
        new: Option<&Map<String, Value>>,
        secrets: &Map<String, Value>,
    ) -> Result<()> {
        let old_keys = old.map(|d| index_entries(def, d)).unwrap_or_default();
        let new_keys = new.map(|d| index_entries(def, d)).unwrap_or_default();
        for (path, value) in new_keys.difference(&old_keys) {
            if def
                .unique
                .iter()
                .any(|p| def.resolve(p).is_some_and(|r| &r.canonical_name() == path))
            {
                let holders = self.lookup(rt, path, value)?;
                if holders.iter().any(|h| h != id) && !set.removes_index(rt, path, value, &holders)
                {
                    return Err(ScimError::uniqueness(format!(
                        "{path} '{value}' is already taken by another {}",
                        def.name
                    )));
                }
            }
        }
        for (path, value) in old_keys.difference(&new_keys) {
            set.push(rt * 2 + 1, index_key(path, value, id), None);
        }
        for (path, value) in new_keys.difference(&old_keys) {
            set.push(rt * 2 + 1, index_key(path, value, id), Some(Vec::new()));
        }
        match new {
            Some(doc) => set.push(rt * 2, id.as_bytes().to_vec(), Some(encode(doc)?)),
            None => set.push(rt * 2, id.as_bytes().to_vec(), None),
        }
        if def.kind == ResourceKind::Group {
            self.stage_members(set, id, old, new);
        }
        if new.is_none() {
            for entry in self.secrets.scan_prefix(format!("{rt}/{id}/")) {
                let (k, _) = entry?;
                set.push(self.secrets_slot(), k.to_vec(), None);
            }
        }
        for (name, value) in secrets {
            set.push(
                self.secrets_slot(),
                secret_key(rt, id, name),
                Some(hash_secret(value)),
            );
        }
        Ok(())
    }

    fn stage_members(
        &self,
        set: &mut WriteSet,
        group: &str,
        old: Option<&Map<String, Value>>,
        new: Option<&Map<String, Value>>,
    ) {
        let members = |d: Option<&Map<String, Value>>| -> BTreeSet<String> {
            d.and_then(|d| d.get("members"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_owned))
                .collect()
        };
        let name = |d: Option<&Map<String, Value>>| {
            d.and_then(|d| d.get("displayName"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let (before, after) = (members(old), members(new));
        let renamed = name(old) != name(new);
        let slot = self.memberships_slot();
        for m in before.difference(&after) {
            set.push(slot, membership_key(m, group), None);
        }
        let new_name = name(new).into_bytes();
        for m in after.iter().filter(|m| renamed || !before.contains(*m)) {
            set.push(slot, membership_key(m, group), Some(new_name.clone()));
        }
    }

    /// Applies staged changes in one transaction.
    pub fn commit(&self, _guard: &WriteGuard<'_>, set: WriteSet) -> Result<()> {
        let mut all: Vec<&sled::Tree> = self.trees.iter().collect();
        all.push(&self.memberships);
        all.push(&self.secrets);
        all.as_slice().transaction(|tx: &Vec<TransactionalTree>| {
            for c in &set.changes {
                match &c.value {
                    Some(v) => tx[c.tree].insert(c.key.as_slice(), v.as_slice())?,
                    None => tx[c.tree].remove(c.key.as_slice())?,
                };
            }
            Ok::<(), ConflictableTransactionError<ScimError>>(())
        })?;
        Ok(())
    }

    /// Waits until everything written before this call is on disk (no-op in background mode).
    pub async fn durable(&self) -> Result<()> {
        let Some(tx) = &self.flush_tx else {
            return Ok(());
        };
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let sent = tx.lock().unwrap_or_else(|p| p.into_inner()).send(done_tx);
        if sent.is_err() {
            return Err(ScimError::internal(
                "the flusher stopped; the write may not be durable",
            ));
        }
        match done_rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ScimError::internal(format!("flushing to disk failed: {e}"))),
            Err(_) => Err(ScimError::internal(
                "the flusher stopped; the write may not be durable",
            )),
        }
    }

    /// Flushes everything now (used at shutdown).
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

impl WriteSet {
    fn push(&mut self, tree: usize, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.changes.push(Change { tree, key, value });
    }

    /// True when this set already removes every holder's index entry (a bulk swap of values).
    fn removes_index(&self, rt: usize, path: &str, value: &str, holders: &[String]) -> bool {
        holders.iter().all(|h| {
            let key = index_key(path, value, h);
            self.changes
                .iter()
                .any(|c| c.tree == rt * 2 + 1 && c.key == key && c.value.is_none())
        })
    }
}

fn spawn_flusher(
    db: sled::Db,
    flushes: std::sync::Arc<AtomicU64>,
) -> Result<(mpsc::Sender<FlushWaiter>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<FlushWaiter>();
    let thread = std::thread::Builder::new()
        .name("scim-flusher".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut waiters = vec![first];
                waiters.extend(rx.try_iter());
                let result = db.flush().map(|_| ()).map_err(|e| e.to_string());
                flushes.fetch_add(1, Ordering::Relaxed);
                for w in waiters {
                    let _ = w.send(result.clone());
                }
            }
        })
        .map_err(|e| ScimError::internal(format!("cannot start the flusher thread: {e}")))?;
    Ok((tx, thread))
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

fn index_prefix(path: &str, value: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(path.len() + value.len() + 2);
    k.extend_from_slice(path.as_bytes());
    k.push(0);
    k.extend_from_slice(value.as_bytes());
    k.push(0);
    k
}

fn index_key(path: &str, value: &str, id: &str) -> Vec<u8> {
    let mut k = index_prefix(path, value);
    k.extend_from_slice(id.as_bytes());
    k
}

fn membership_key(member: &str, group: &str) -> Vec<u8> {
    let mut k = member.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(group.as_bytes());
    k
}

fn secret_key(rt: usize, id: &str, name: &str) -> Vec<u8> {
    format!("{rt}/{id}/{name}").into_bytes()
}

/// Secrets are kept only as salted SHA-256 digests: nothing ever needs them back.
fn hash_secret(value: &Value) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let salt = uuid::Uuid::new_v4();
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(value.to_string().as_bytes());
    let mut out = salt.as_bytes().to_vec();
    out.extend_from_slice(&h.finalize());
    out
}

pub(crate) fn encode(doc: &Map<String, Value>) -> Result<Vec<u8>> {
    serde_json::to_vec(doc)
        .map_err(|e| ScimError::internal(format!("cannot encode a resource: {e}")))
}

pub(crate) fn decode(raw: &[u8]) -> Result<Map<String, Value>> {
    serde_json::from_slice(raw)
        .map_err(|e| ScimError::internal(format!("a stored resource is unreadable: {e}")))
}
