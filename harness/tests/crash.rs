//! The crash test: a real `scimlab up` process takes joiners, movers and renames through the
//! IdP from several writers at once and is killed with SIGKILL at random moments, then started
//! again on the same data. Afterwards every write the IdP acknowledged is there, every outbox
//! entry has been delivered, the audit chains verify, and both targets equal the oracle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::load::plan::GROUPS;
use harness::mock_target::TargetName;
use harness::scenario::model::Dialect;
use harness::scenario::run::{check_remote, Endpoint, Remote};
use harness::targets::{assign_and_push, group_named, idp_call};
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};

const TOKEN: &str = "crash-token";
const KILLS: usize = 5;
const WRITERS: usize = 4;
const POLICIES: &str = "../scenarios/policies";

/// `scimlab up`, running.
struct Stack {
    child: Child,
    idp: String,
    /// Each mock target's own API, by name.
    targets: Vec<(TargetName, String)>,
}

impl Stack {
    fn start(data: &Path) -> Stack {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scimlab"))
            .args(["up", "--port", "0", "--token", TOKEN, "--json"])
            .arg("--data")
            .arg(data)
            .arg("--policies")
            .arg(POLICIES)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let urls: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let url = |name: &str| urls[name]["url"].as_str().unwrap().to_owned();
        Stack {
            child,
            idp: url("idp"),
            targets: TargetName::all().map(|t| (t, url(t.as_str()))).collect(),
        }
    }

    /// SIGKILL, and wait for the process to be gone.
    fn kill(self) {
        drop(self);
    }

    fn remote(&self) -> Remote {
        let end = |url: &str| Endpoint {
            url: url.to_owned(),
            token: TOKEN.into(),
            app: None,
            scim: None,
        };
        Remote {
            dialect: Dialect::Okta,
            idp: end(&self.idp),
            targets: self.targets.iter().map(|(t, u)| (*t, end(u))).collect(),
            ca_cert: None,
            tls: Default::default(),
            scim_oauth: None,
        }
    }
}

/// A failing assertion leaves no server behind either.
impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the writers know the IdP holds: per login, its id once a hire was acknowledged, its
/// groups and last name; `None` where a write was cut off and the IdP must be asked.
#[derive(Debug, Clone, Default)]
struct Person {
    id: Option<String>,
    groups: Option<BTreeSet<String>>,
    last_name: Option<String>,
}

type Model = Arc<Mutex<BTreeMap<String, Person>>>;

/// Numbers the people hired, so no login is hired twice.
static NEXT: AtomicUsize = AtomicUsize::new(0);

async fn call(idp: &str, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
    let client = scim::tls::ClientTls::default()
        .builder()
        .unwrap()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    idp_call(&client, idp, TOKEN, method, path, body).await
}

/// One writer: its own people (so no two writers race on one person), a joiner, a mover or a
/// rename at a time, each recorded only once the IdP acknowledged it.
async fn write(
    idp: String,
    groups: Vec<(String, String)>,
    model: Model,
    writer: usize,
    seed: u64,
    stop: Arc<AtomicBool>,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Stopping between writes, not mid-call: a request the server took is applied even when
    // the client has gone, so the model must not be read before it lands.
    while !stop.load(Ordering::Relaxed) {
        let mine: Vec<(String, Person)> = {
            let m = model.lock().unwrap();
            m.iter()
                .filter(|(login, p)| login.contains(&format!("-w{writer}-")) && p.id.is_some())
                .map(|(l, p)| (l.clone(), p.clone()))
                .collect()
        };
        let roll = rng.random_range(0..100);
        if roll < 50 || mine.is_empty() {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let login = format!("crash-w{writer}-{n:06}@crash.test");
            let (gid, gname) = groups[rng.random_range(0..groups.len())].clone();
            model.lock().unwrap().entry(login.clone()).or_default();
            let body = json!({"profile": {"login": login, "email": login, "firstName": "C",
                "lastName": "Crash"}, "groupIds": [gid]});
            let answer = call(
                &idp,
                Method::POST,
                "/api/v1/users?activate=true",
                Some(body),
            )
            .await;
            let mut m = model.lock().unwrap();
            let p = m.entry(login).or_default();
            match answer {
                Ok(u) => {
                    p.id = u["id"].as_str().map(str::to_owned);
                    p.groups = Some(BTreeSet::from([gname]));
                    p.last_name = Some("Crash".into());
                }
                Err(_) => return, // the server is gone: the unknown outcome is resolved later
            }
        } else {
            let (login, person) = &mine[rng.random_range(0..mine.len())];
            let id = person.id.clone().unwrap_or_default();
            let Some(current) = person.groups.clone() else {
                return;
            };
            if roll < 80 {
                // Mover: into a group it is not in, then out of one it was in.
                let (to_id, to_name) = groups[rng.random_range(0..groups.len())].clone();
                if current.contains(&to_name) {
                    continue;
                }
                model.lock().unwrap().get_mut(login).unwrap().groups = None;
                let path = format!("/api/v1/groups/{to_id}/users/{id}");
                if call(&idp, Method::PUT, &path, None).await.is_err() {
                    return;
                }
                let mut now = current.clone();
                now.insert(to_name.clone());
                if let Some(from) = current.iter().next().cloned() {
                    let from_id = groups.iter().find(|g| g.1 == from).unwrap().0.clone();
                    let path = format!("/api/v1/groups/{from_id}/users/{id}");
                    if call(&idp, Method::DELETE, &path, None).await.is_err() {
                        return;
                    }
                    now.remove(&from);
                }
                model.lock().unwrap().get_mut(login).unwrap().groups = Some(now);
            } else {
                let last = format!("Crash{}", rng.random::<u16>());
                model.lock().unwrap().get_mut(login).unwrap().last_name = None;
                let body = json!({"profile": {"lastName": last}});
                if call(
                    &idp,
                    Method::POST,
                    &format!("/api/v1/users/{id}"),
                    Some(body),
                )
                .await
                .is_err()
                {
                    return;
                }
                model.lock().unwrap().get_mut(login).unwrap().last_name = Some(last);
            }
        }
    }
}

/// The IdP's view of one person: id, group names, last name; `None` if there is no such login.
async fn read_person(
    idp: &str,
    login: &str,
    groups: &[(String, String)],
) -> Option<(String, BTreeSet<String>, String)> {
    let u = call(idp, Method::GET, &format!("/api/v1/users/{login}"), None)
        .await
        .ok()?;
    let id = u["id"].as_str()?.to_owned();
    let last = u["profile"]["lastName"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let member_of = call(
        idp,
        Method::GET,
        &format!("/api/v1/users/{id}/groups"),
        None,
    )
    .await
    .unwrap();
    let names = member_of
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["profile"]["name"].as_str())
        .filter(|n| groups.iter().any(|g| g.1 == *n))
        .map(str::to_owned)
        .collect();
    Some((id, names, last))
}

/// After a restart: every write that was cut off is settled by asking the IdP what happened.
async fn settle_unknowns(idp: &str, model: &Model, groups: &[(String, String)]) {
    let unknown: Vec<String> = model
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, p)| p.id.is_none() || p.groups.is_none() || p.last_name.is_none())
        .map(|(l, _)| l.clone())
        .collect();
    for login in unknown {
        let seen = read_person(idp, &login, groups).await;
        let mut m = model.lock().unwrap();
        match seen {
            Some((id, names, last)) => {
                let p = m.get_mut(&login).unwrap();
                p.id = Some(id);
                p.groups = Some(names);
                p.last_name = Some(last);
            }
            None => {
                let p = &m[&login];
                assert!(
                    p.id.is_none(),
                    "{login}: acknowledged, and gone after a crash"
                );
                m.remove(&login);
            }
        }
    }
}

/// Every entry still in an app's outbox (pending or parked).
async fn outboxes(idp: &str) -> Vec<Value> {
    let apps = call(idp, Method::GET, "/api/v1/apps", None).await.unwrap();
    let mut left = Vec::new();
    for app in apps.as_array().into_iter().flatten() {
        let id = app["id"].as_str().unwrap_or_default();
        let outbox = call(idp, Method::GET, &format!("/api/v1/apps/{id}/outbox"), None)
            .await
            .unwrap();
        left.extend(outbox.as_array().cloned().unwrap_or_default());
    }
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_writes_loses_nothing_and_ends_equal_to_the_oracle() {
    let data = tempfile::tempdir().unwrap();
    let seed: u64 = std::env::var("SCIMLAB_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("crash test seed {seed} (SCIMLAB_CRASH_SEED to repeat)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let model: Model = Arc::default();

    let mut stack = Stack::start(data.path());
    let client = scim::tls::ClientTls::default().client().unwrap();
    let apps = call(&stack.idp, Method::GET, "/api/v1/apps", None)
        .await
        .unwrap();
    let mut groups = Vec::new();
    for name in GROUPS {
        let id = group_named(&client, &stack.idp, TOKEN, name, true)
            .await
            .unwrap();
        for app in apps.as_array().unwrap() {
            let app = app["id"].as_str().unwrap();
            assign_and_push(&client, &stack.idp, TOKEN, app, &id)
                .await
                .unwrap();
        }
        groups.push((id, name.to_owned()));
    }

    for kill in 0..=KILLS {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let seed = rng.random();
                let (idp, groups, model) = (stack.idp.clone(), groups.clone(), model.clone());
                tokio::spawn(write(idp, groups, model, w, seed, stop.clone()))
            })
            .collect();
        if kill == KILLS {
            // The last round ends without a kill: each writer finishes the write it is in.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            stop.store(true, Ordering::Relaxed);
            for w in writers {
                let _ = w.await;
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..2000))).await;
        stack.kill();
        for w in writers {
            let _ = w.await;
        }
        stack = Stack::start(data.path());
        settle_unknowns(&stack.idp, &model, &groups).await;
    }
    // A write refused in the last round (no kill) leaves an unknown too.
    settle_unknowns(&stack.idp, &model, &groups).await;

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = outboxes(&stack.idp).await;
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the outboxes did not drain in 120 s: {} left, first {:#}",
            left.len(),
            json!(left.iter().take(3).collect::<Vec<_>>())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every acknowledged write is in the IdP.
    let people = model.lock().unwrap().clone();
    assert!(
        people.len() > 20,
        "too few writes to mean anything: {}",
        people.len()
    );
    for (login, p) in &people {
        let (id, names, last) = read_person(&stack.idp, login, &groups)
            .await
            .unwrap_or_else(|| panic!("{login}: acknowledged, missing"));
        assert_eq!(Some(&id), p.id.as_ref(), "{login}");
        assert_eq!(Some(&names), p.groups.as_ref(), "{login}: groups");
        assert_eq!(Some(&last), p.last_name.as_ref(), "{login}: last name");
    }

    // The targets equal the oracle, and every audit chain verifies.
    let users: Vec<(String, String)> = people
        .iter()
        .map(|(l, p)| (l.clone(), p.id.clone().unwrap_or_default()))
        .collect();
    let checked = check_remote(&stack.remote(), Path::new(POLICIES), &users)
        .await
        .unwrap();
    eprintln!(
        "{} people after {KILLS} kills: {} differences, {} unreadable, {} broken chains",
        users.len(),
        checked.findings.len(),
        checked.unreadable.len(),
        checked.broken_chains.len()
    );
    let findings: Vec<String> = checked.findings.iter().map(ToString::to_string).collect();
    assert!(findings.is_empty(), "{}", findings.join("\n"));
    assert!(checked.unreadable.is_empty(), "{:?}", checked.unreadable);
    assert!(
        checked.broken_chains.is_empty(),
        "{:?}",
        checked.broken_chains
    );
    stack.kill();
}
