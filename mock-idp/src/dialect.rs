//! How Okta and Entra ID talk SCIM: each outbox operation becomes the request sequence the real
//! client sends (dialects.md §1.3-§1.7 and §2.2-§2.3), answers are classified as done, worth a
//! retry, or permanent failures. What differs between the clients is a [`Speech`], one module
//! per dialect (`okta`, `entra`); a new dialect is a module and an arm in [`speech`].

use std::collections::BTreeMap;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::mapping::{document, merge_into, ENTERPRISE_USER};
use crate::model::{Dialect, Op};

mod entra;
mod okta;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// How one IdP's SCIM client behaves: what it plans for a change, and how it writes the
/// requests.
pub trait Speech: Sync + std::fmt::Debug {
    /// A user deleted in the IdP is deleted in the target (else deactivated, and removed from
    /// pushed groups).
    fn deletes_users(&self) -> bool;
    /// A pushed group carries the IdP's group id as `externalId`.
    fn sends_group_external_id(&self) -> bool;
    /// The enterprise `manager` is pushed as a reference once both people are in the app.
    fn pushes_manager(&self) -> bool;
    fn user_agent(&self) -> &'static str;
    fn content_type(&self) -> &'static str;
    /// A PATCH op name (`replace`) as the client spells it.
    fn op(&self, name: &str) -> String;
    /// Booleans go as `"True"` / `"False"` strings, which a target must be lenient to read.
    fn string_booleans(&self) -> bool;
    /// `active` as the client sends it.
    fn active(&self, active: bool) -> Value {
        match (self.string_booleans(), active) {
            (false, a) => json!(a),
            (true, true) => json!("True"),
            (true, false) => json!("False"),
        }
    }
    /// The path of a look-up on `endpoint` by `filter` (already encoded).
    fn search(&self, endpoint: &str, filter: &str) -> String;
    /// What the client adds to a new user's document.
    fn new_user(&self, doc: &mut Map<String, Value>);
    fn profile_push(&self) -> ProfilePush;
    /// The PATCH operation that (de)activates a user.
    fn active_op(&self, active: bool) -> Value;
    /// Whether a group push first looks for a group of that name and links to it.
    fn finds_group_before_push(&self) -> bool;
    /// A pushed group's document (`group`: its IdP id).
    fn new_group(&self, group: &str, name: &str) -> Value;
    /// The PATCH operation that renames the group `id`.
    fn rename_op(&self, id: &str, name: &str) -> Value;
    /// Whether a membership push sends the group's name first.
    fn renames_before_members(&self) -> bool;
    /// The PATCH operations adding (target id, display) and removing (target id) members.
    fn member_ops(&self, add: &[(String, String)], remove: &[String]) -> Vec<Value>;
}

/// How a client pushes a changed profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfilePush {
    /// Reads the target's user and writes it back whole with the mapped attributes (Okta).
    WholeResource,
    /// One PATCH operation per changed attribute (Entra).
    PerAttribute,
}

/// The client of `dialect`.
pub fn speech(dialect: Dialect) -> &'static dyn Speech {
    match dialect {
        Dialect::Okta => &okta::Okta,
        Dialect::Entra => &entra::Entra,
    }
}

/// Characters escaped in query values: spaces as %20, which every server decodes.
const QUERY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'>')
    .add(b'=');

/// Why a delivery did not complete.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// 429, 5xx, a timeout or a refused connection: try again, not before `after` when the
    /// target said so.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The target refused the request for good (4xx) or answered nonsense.
    Permanent(String),
}

/// What a completed delivery learnt: target ids to keep and to forget.
#[derive(Debug, Default, PartialEq)]
pub struct Delivered {
    pub links: Vec<(String, String)>,
    pub unlinks: Vec<String>,
    pub requests: u32,
}

impl Delivered {
    /// `id` now has `scim_id` in the target.
    fn linked(id: &str, scim_id: String, requests: u32) -> Delivered {
        Delivered {
            links: vec![(id.to_owned(), scim_id)],
            unlinks: Vec::new(),
            requests,
        }
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    text: String,
}

impl Reply {
    /// The answer as JSON, parsed only by the calls that read it: most answers (a PATCH's
    /// whole group) are not needed.
    fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.text).ok()
    }
}

/// One app's SCIM endpoint as the dialect's client sees it.
#[derive(Debug)]
pub struct Wire<'a> {
    pub client: &'a reqwest::Client,
    pub base_url: &'a str,
    pub token: &'a str,
    pub dialect: Dialect,
    pub timeout: Duration,
    pub requests: u32,
    /// Some answer was 401: an OAuth token may have been revoked or outlived.
    pub unauthorized: bool,
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let raw = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or_default())
}

fn excerpt(text: &str) -> String {
    let mut t: String = text.chars().take(300).collect();
    if t.len() < text.len() {
        t.push('…');
    }
    t
}

impl Wire<'_> {
    fn speech(&self) -> &'static dyn Speech {
        speech(self.dialect)
    }

    /// Sends one request; statuses outside 2xx and `accept` become a `Failure`.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        accept: &[u16],
    ) -> Result<Reply, Failure> {
        self.requests += 1;
        let url = format!("{}{path}", self.base_url.trim_end_matches('/'));
        let content_type = self.speech().content_type();
        let mut req = self
            .client
            .request(method.clone(), &url)
            .timeout(self.timeout)
            .bearer_auth(self.token)
            .header(reqwest::header::USER_AGENT, self.speech().user_agent())
            .header(reqwest::header::ACCEPT, "application/scim+json");
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(b.to_string());
        }
        let resp = req.send().await.map_err(|e| Failure::Retry {
            reason: format!("{method} {path}: {e}"),
            after: None,
        })?;
        let status = resp.status().as_u16();
        self.unauthorized |= status == 401;
        let after = retry_after(resp.headers());
        let text = resp.text().await.map_err(|e| Failure::Retry {
            reason: format!("{method} {path}: reading the answer: {e}"),
            after: None,
        })?;
        if (200..300).contains(&status) || accept.contains(&status) {
            return Ok(Reply { status, text });
        }
        let reason = format!("{method} {path} answered {status}: {}", excerpt(&text));
        if status == 429 || status == 408 || status >= 500 {
            Err(Failure::Retry { reason, after })
        } else {
            Err(Failure::Permanent(reason))
        }
    }

    fn patch(&self, operations: Vec<Value>) -> Value {
        json!({"schemas": [PATCH_OP], "Operations": operations})
    }

    /// The id of the first resource matching `attr eq "value"`, as each client looks it up.
    async fn find(
        &mut self,
        endpoint: &str,
        attr: &str,
        value: &str,
    ) -> Result<Option<String>, Failure> {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        let filter = utf8_percent_encode(&format!("{attr} eq \"{escaped}\""), QUERY).to_string();
        let path = self.speech().search(endpoint, &filter);
        // Okta also accepts a 404 for "none" (dialects.md §1.3).
        let reply = self.call(Method::GET, &path, None, &[404]).await?;
        if reply.status == 404 {
            return Ok(None);
        }
        let first = reply
            .json()
            .as_ref()
            .and_then(|b| b.get("Resources"))
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(first)
    }

    fn created_id(reply: &Reply, what: &str) -> Result<String, Failure> {
        reply
            .json()
            .as_ref()
            .and_then(|b| b.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Failure::Permanent(format!("Create new {what} returned empty {what}")))
    }

    /// Okta's profile push: read the target's user, write it back whole with the mapped
    /// attributes merged in.
    async fn put_profile(
        &mut self,
        id: &str,
        attrs: &BTreeMap<String, String>,
        removed: &[String],
    ) -> Result<(), Failure> {
        let path = format!("/Users/{id}");
        let current = self.call(Method::GET, &path, None, &[]).await?;
        let current = current
            .json()
            .and_then(|b| match b {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .unwrap_or_default();
        let mut doc = merge_into(&current, attrs, removed);
        doc.insert("id".into(), json!(id));
        doc.insert("active".into(), json!(true));
        self.call(Method::PUT, &path, Some(&Value::Object(doc)), &[])
            .await?;
        Ok(())
    }

    /// Entra's profile push: one operation per attribute, each with its path. An attribute
    /// that became empty is skipped: "Microsoft Entra ID currently can't provision null
    /// attributes" (Entra's known issues), so the target keeps the old value.
    async fn patch_attrs(
        &mut self,
        id: &str,
        changed: &[(String, Option<String>)],
    ) -> Result<(), Failure> {
        let ops: Vec<Value> = changed
            .iter()
            .filter_map(|(path, value)| {
                let v = value.as_ref()?;
                Some(json!({"op": self.speech().op("replace"), "path": path, "value": v}))
            })
            .collect();
        if ops.is_empty() {
            return Ok(());
        }
        let body = self.patch(ops);
        self.call(Method::PATCH, &format!("/Users/{id}"), Some(&body), &[])
            .await?;
        Ok(())
    }

    async fn create_user(
        &mut self,
        user: &str,
        attrs: &BTreeMap<String, String>,
    ) -> Result<Delivered, Failure> {
        let user_name = attrs.get("userName").cloned().unwrap_or_default();
        let existing = self.find("Users", "userName", &user_name).await?;
        let existing = match existing {
            Some(id) => Some(id),
            None => {
                let mut doc: Map<String, Value> = document(attrs);
                self.speech().new_user(&mut doc);
                doc.insert("active".into(), json!(true));
                let reply = self
                    .call(Method::POST, "/Users", Some(&Value::Object(doc)), &[409])
                    .await?;
                if reply.status != 409 {
                    return Ok(Delivered::linked(
                        user,
                        Self::created_id(&reply, "user")?,
                        self.requests,
                    ));
                }
                // Someone created it since the look-up: find it and link to it.
                let found = self.find("Users", "userName", &user_name).await?;
                Some(found.ok_or_else(|| {
                    Failure::Permanent(format!(
                        "POST /Users answered 409 but no user has userName '{user_name}'"
                    ))
                })?)
            }
        };
        let Some(id) = existing else {
            return Err(Failure::Permanent("no target user".into()));
        };
        // A match is linked and gets the app profile pushed to it.
        let all: Vec<(String, Option<String>)> = attrs
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        self.push_profile(&id, attrs, &all).await?;
        Ok(Delivered::linked(user, id, self.requests))
    }

    /// The profile push of the dialect: `attrs` the whole mapped profile, `changed` what
    /// changed (`None`: emptied).
    async fn push_profile(
        &mut self,
        id: &str,
        attrs: &BTreeMap<String, String>,
        changed: &[(String, Option<String>)],
    ) -> Result<(), Failure> {
        match self.speech().profile_push() {
            ProfilePush::WholeResource => {
                let removed: Vec<String> = changed
                    .iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(k, _)| k.clone())
                    .collect();
                self.put_profile(id, attrs, &removed).await
            }
            ProfilePush::PerAttribute => self.patch_attrs(id, changed).await,
        }
    }

    async fn set_active(&mut self, id: &str, active: bool) -> Result<(), Failure> {
        let body = self.patch(vec![self.speech().active_op(active)]);
        self.call(Method::PATCH, &format!("/Users/{id}"), Some(&body), &[])
            .await?;
        Ok(())
    }

    async fn push_group(&mut self, group: &str, name: &str) -> Result<Delivered, Failure> {
        if self.speech().finds_group_before_push() {
            if let Some(id) = self.find("Groups", "displayName", name).await? {
                return Ok(Delivered::linked(group, id, self.requests));
            }
        }
        let doc = self.speech().new_group(group, name);
        let reply = self
            .call(Method::POST, "/Groups", Some(&doc), &[409])
            .await?;
        if reply.status != 409 {
            return Ok(Delivered::linked(
                group,
                Self::created_id(&reply, "group")?,
                self.requests,
            ));
        }
        let found = self.find("Groups", "displayName", name).await?;
        let id = found.ok_or_else(|| {
            Failure::Permanent(format!(
                "POST /Groups answered 409 but no group is named '{name}'"
            ))
        })?;
        Ok(Delivered::linked(group, id, self.requests))
    }

    async fn rename_group(&mut self, id: &str, name: &str) -> Result<(), Failure> {
        let body = self.patch(vec![self.speech().rename_op(id, name)]);
        self.call(Method::PATCH, &format!("/Groups/{id}"), Some(&body), &[])
            .await?;
        Ok(())
    }

    async fn members(
        &mut self,
        id: &str,
        name: &str,
        add: &[(String, String)],
        remove: &[String],
    ) -> Result<(), Failure> {
        if self.speech().renames_before_members() {
            self.rename_group(id, name).await?;
        }
        let ops = self.speech().member_ops(add, remove);
        let body = self.patch(ops);
        self.call(Method::PATCH, &format!("/Groups/{id}"), Some(&body), &[])
            .await?;
        Ok(())
    }

    /// Sends `op`; `link` gives the target id of an IdP user or group of this app.
    pub async fn deliver(
        &mut self,
        op: &Op,
        link: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Delivered, Failure> {
        let target = |id: &str| {
            link(id).ok_or_else(|| {
                Failure::Permanent(format!(
                    "{id} has no id in the target: it was never created there"
                ))
            })
        };
        let done = |requests| Delivered {
            requests,
            ..Delivered::default()
        };
        match op {
            Op::CreateUser { user, attrs } => self.create_user(user, attrs).await,
            Op::UpdateUser {
                user,
                attrs,
                changed,
            } => {
                let id = target(user)?;
                self.push_profile(&id, attrs, changed).await?;
                Ok(done(self.requests))
            }
            Op::Deactivate { user } | Op::Reactivate { user } => {
                let id = target(user)?;
                self.set_active(&id, matches!(op, Op::Reactivate { .. }))
                    .await?;
                Ok(done(self.requests))
            }
            Op::DeleteUser { user } => {
                let id = target(user)?;
                self.call(Method::DELETE, &format!("/Users/{id}"), None, &[404])
                    .await?;
                Ok(Delivered {
                    unlinks: vec![user.clone()],
                    ..done(self.requests)
                })
            }
            Op::SetManager { user, manager } => {
                let id = target(user)?;
                // Entra sends the manager's target id as a plain string (dialects.md §2.2).
                let op = json!({
                    "op": self.speech().op("add"),
                    "path": format!("{ENTERPRISE_USER}:manager"),
                    "value": target(manager)?,
                });
                let body = self.patch(vec![op]);
                self.call(Method::PATCH, &format!("/Users/{id}"), Some(&body), &[])
                    .await?;
                Ok(done(self.requests))
            }
            Op::PushGroup { group, name } => self.push_group(group, name).await,
            Op::RenameGroup { group, name } => {
                let id = target(group)?;
                self.rename_group(&id, name).await?;
                Ok(done(self.requests))
            }
            Op::Members {
                group,
                name,
                add,
                remove,
            } => {
                let id = target(group)?;
                let add = add
                    .iter()
                    .map(|(u, login)| Ok((target(u)?, login.clone())))
                    .collect::<Result<Vec<_>, Failure>>()?;
                let remove = remove
                    .iter()
                    .map(|u| target(u))
                    .collect::<Result<Vec<_>, Failure>>()?;
                self.members(&id, name, &add, &remove).await?;
                Ok(done(self.requests))
            }
            Op::DeleteGroup { group } => {
                let id = target(group)?;
                self.call(Method::DELETE, &format!("/Groups/{id}"), None, &[404])
                    .await?;
                Ok(Delivered {
                    unlinks: vec![group.clone()],
                    ..done(self.requests)
                })
            }
        }
    }
}
