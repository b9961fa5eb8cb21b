//! What a step is judged by: each target's permission view and audit events since the step,
//! the tokens made along the way, compared with the oracle's view.

use super::*;

impl World {
    /// Copies new audit events of every running target.
    pub(super) async fn sync_audit(&mut self) -> Result<BTreeMap<TargetName, u64>, String> {
        let mut heads = BTreeMap::new();
        for t in TargetName::all() {
            let known = self.audit.entry(t).or_default();
            let mut after = known.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
            if !self.down.contains(&t.server()) {
                loop {
                    let url = format!("{}/_sim/events?after={after}&limit=10000", self.base(t));
                    let (status, page) =
                        self.native(Method::GET, &url, None, self.token(t)).await?;
                    if status != 200 {
                        return Err(format!("GET {url}: {status}"));
                    }
                    let events = page["events"].as_array().cloned().unwrap_or_default();
                    let n = events.len();
                    after = events
                        .last()
                        .and_then(|e| e["seq"].as_u64())
                        .unwrap_or(after);
                    self.audit.entry(t).or_default().extend(events);
                    if n < 10000 {
                        break;
                    }
                }
            }
            heads.insert(t, after);
        }
        Ok(heads)
    }

    /// Reads a mock's permission view of a user; `None` when the user does not exist there.
    pub(super) async fn permissions(
        &self,
        on: TargetName,
        user: &str,
    ) -> Result<Option<Value>, String> {
        permission_view(&self.client, self.end(on), &self.login(user)).await
    }

    /// Each target's permission view of every user the oracle knows (every one hired).
    pub(super) async fn views(&self) -> Result<Views, String> {
        let mut out = Views::new();
        for (target, user) in self.history.last().into_iter().flat_map(BTreeMap::keys) {
            let seen = self.permissions(*target, user).await?;
            out.insert((*target, user.clone()), seen);
        }
        Ok(out)
    }

    /// The oracle's findings on what the targets show, each excess item with the route that
    /// granted it where the target can say.
    pub(super) async fn findings(&self, views: &Views) -> Vec<oracle::Finding> {
        let mut seen = Seen::default();
        for ((target, user), view) in views {
            if let Some(judge) = self.oracle.judge(*target) {
                seen.add(*target, judge, user, view.as_ref());
            }
        }
        let mut findings = oracle::compare(&self.history, &seen);
        for f in findings
            .iter_mut()
            .filter(|f| f.kind == "excess" && f.route.is_none())
        {
            let Some((target, judge)) =
                TargetName::named(f.target).and_then(|t| Some((t, self.oracle.judge(t)?)))
            else {
                continue;
            };
            let locator = encode(&format!("username:{}", self.login(&f.user)));
            f.route = judge
                .excess_route(&self.client, self.end(target), &locator, &f.what)
                .await;
        }
        findings
    }

    /// Tokens whose state is not the one due: accepted while the user has been active on the
    /// target ever since the token was made, refused once the account left.
    pub(super) fn token_findings(&self, answers: &[Result<u16, String>]) -> Vec<String> {
        let mut out = Vec::new();
        for ((i, t), answer) in self.tokens.iter().enumerate().zip(answers) {
            let key = (t.on, t.user.clone());
            let due_accepted = self.history[t.made.saturating_sub(1)..]
                .iter()
                .all(|v| v.get(&key).is_some_and(|h| h.account == Account::Active));
            let want = if due_accepted {
                Tokens::Accepted
            } else {
                Tokens::Refused
            };
            if let Some(why) = token_miss(i, answer, want) {
                out.push(format!("{}: {}: {why}", t.on, t.user));
            }
        }
        out
    }

    /// What each token (in `tokens` order) gets when it reads its own user: a status.
    pub(super) async fn token_answers(&self) -> Vec<Result<u16, String>> {
        let mut out = Vec::new();
        for t in &self.tokens {
            let login = encode(&format!("username:{}", self.login(&t.user)));
            let url = t.on.mock().own_user(self.base(t.on), &login);
            let answer = self.native(Method::GET, &url, None, &t.secret).await;
            out.push(answer.map(|(code, _)| code));
        }
        out
    }

    /// The leaver guarantees the audit logs must show: every hash chain intact (IdP and
    /// targets), and for each account that left, an event on its target recording it.
    pub(super) async fn audit_misses(&mut self) -> Result<(Vec<String>, usize), String> {
        let mut out = self.ends.broken_chains(&self.client).await;
        self.sync_audit().await?;
        let mut leavers = 0;
        for i in 1..self.history.len() {
            for ((target, user), now) in &self.history[i] {
                let was = self.history[i - 1].get(&(*target, user.clone()));
                let Some(was) = was.filter(|w| w.account == Account::Active) else {
                    continue;
                };
                if now.account == Account::Active {
                    continue;
                }
                let had_tokens = self
                    .tokens
                    .iter()
                    .any(|t| t.on == *target && t.user == *user && t.made <= i);
                let Some(kinds) = target
                    .mock()
                    .leaver_kinds(!was.items.is_empty() || had_tokens)
                else {
                    continue;
                };
                leavers += 1;
                // Read before step i ran: whatever step i caused comes after it.
                let head = self
                    .heads
                    .get(i - 1)
                    .and_then(|h| h.get(target))
                    .copied()
                    .unwrap_or(0);
                let events = self.audit.get(target).map(Vec::as_slice).unwrap_or(&[]);
                let login = self.login(user);
                let subject = events
                    .iter()
                    .find(|e| e["data"]["username"] == json!(login))
                    .and_then(|e| e["subject"].as_str());
                let recorded = subject.is_some_and(|id| {
                    events.iter().any(|e| {
                        e["seq"].as_u64().is_some_and(|s| s > head)
                            && e["subject"] == json!(id)
                            && e["kind"].as_str().is_some_and(|k| kinds.contains(&k))
                    })
                });
                if !recorded {
                    out.push(format!(
                        "{target}: {user}: left at step {i}, but no audit event ({}) records it",
                        kinds.join(" | ")
                    ));
                }
            }
        }
        Ok((out, leavers))
    }

    /// A call to a target's own API with a bearer token: (status, JSON body or null).
    pub(super) async fn native(
        &self,
        method: Method,
        url: &str,
        body: Option<Value>,
        bearer: &str,
    ) -> Result<(u16, Value), String> {
        let mut req = self
            .client
            .request(method.clone(), url)
            .bearer_auth(bearer)
            .header("accept", "application/json");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Every expectation that does not hold now, with what was seen instead.
    pub(super) fn misses(
        &self,
        on: &BTreeMap<TargetName, Vec<Value>>,
        views: &Views,
        tokens: &[Result<u16, String>],
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (&target, list) in on {
            for e in list {
                let said = match target.mock().expectation(e) {
                    Ok(said) => said,
                    Err(why) => {
                        out.push(format!("{target}: {why}"));
                        continue;
                    }
                };
                let user = &said.user;
                let seen = views.get(&(target, user.clone())).and_then(Option::as_ref);
                if let Some(why) = (said.miss)(seen) {
                    out.push(format!("{target}: {user}: {why}"));
                }
                let Some(want) = said.tokens else {
                    continue;
                };
                for ((i, _), answer) in self
                    .tokens
                    .iter()
                    .enumerate()
                    .zip(tokens)
                    .filter(|((_, t), _)| t.user == *user && t.on == target)
                {
                    if let Some(why) = token_miss(i, answer, want) {
                        out.push(format!("{target}: {user}: {why}"));
                    }
                }
            }
        }
        out
    }
}

/// Why token `i` (0-based), which got `answer`, is not in the wanted state (`None` when it is).
fn token_miss(i: usize, answer: &Result<u16, String>, want: Tokens) -> Option<String> {
    match answer {
        Ok(code) => {
            let accepted = (200..300).contains(code);
            (accepted != (want == Tokens::Accepted)).then(|| {
                let due = if want == Tokens::Accepted {
                    "accepted"
                } else {
                    "refused"
                };
                format!("token {} answered {code}, due {due}", i + 1)
            })
        }
        Err(why) => Some(why.clone()),
    }
}
