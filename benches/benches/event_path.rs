//! One lifecycle event's path, over HTTP on loopback, with sled's background flush (so CPU
//! cost, not the disk's): through each connector to its product (a joiner as Okta sends it:
//! create, then join a group that grants roles; a leaver: deactivate), and through the IdP's
//! outbox (100 joiners accepted by the API and pushed to an endpoint that answers at once).
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use reqwest::Method;
use serde_json::{json, Value};
use test_support::{Http, GROUP, PATCH, USER};

const TOKEN: &str = "bench";
/// Joiners per outbox iteration: enough that the engine delivers several at once.
const OUTBOX_BATCH: u64 = 100;

/// A SCIM call that must succeed; a bench cannot go on without it.
async fn scim(http: &Http, method: Method, url: String, body: Value) -> Value {
    let (status, answer) = http.call(method, &url, TOKEN, Some(body)).await;
    assert!(status.is_success(), "{url}: {status} {answer}");
    answer
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("no runtime: {e}"),
    }
}

fn connectors(c: &mut Criterion) {
    let rt = runtime();
    let targets = match rt.block_on(harness::targets::Targets::start(None, TOKEN, false)) {
        Ok(t) => t,
        Err(e) => panic!("the targets did not start: {e}"),
    };
    let http = Http::default();
    let mut group = c.benchmark_group("connector_event");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    let serial = AtomicU64::new(0);
    for (target, urls) in &targets.mocks {
        let (name, base) = (target.as_str(), urls.scim_url.clone());
        let engineering = rt.block_on(scim(
            &http,
            Method::POST,
            format!("{base}/Groups"),
            json!({"schemas": [GROUP], "displayName": "Engineering"}),
        ));
        let group_id = engineering["id"].as_str().unwrap_or_default().to_owned();
        let create = || {
            let i = serial.fetch_add(1, Ordering::Relaxed);
            let body = json!({"schemas": [USER], "userName": format!("bench-{i}@example.com"),
                "name": {"givenName": "Bench", "familyName": format!("U{i}")},
                "emails": [{"value": format!("bench-{i}@example.com"), "type": "work", "primary": true}],
                "active": true});
            scim(&http, Method::POST, format!("{base}/Users"), body)
        };
        group.bench_function(format!("{name}/joiner"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let user = create().await;
                    let add = json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members",
                        "value": [{"value": user["id"]}]}]});
                    let url = format!("{base}/Groups/{group_id}");
                    scim(&http, Method::PATCH, url, add).await
                })
            })
        });
        group.bench_function(format!("{name}/leaver"), |b| {
            b.iter_batched(
                || rt.block_on(create())["id"].as_str().unwrap_or_default().to_owned(),
                |id| {
                    let off = json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active",
                        "value": false}]});
                    let url = format!("{base}/Users/{id}");
                    rt.block_on(scim(&http, Method::PATCH, url, off))
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
    rt.block_on(targets.stop());
}

fn outbox(c: &mut Criterion) {
    let rt = runtime();
    let requests = Arc::new(AtomicU64::new(0));
    let arrived = Arc::new(tokio::sync::Notify::new());
    let (idp, users) = rt.block_on(async {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("cannot bind: {e}"),
        };
        let scim_url = match listener.local_addr() {
            Ok(addr) => format!("http://{addr}"),
            Err(e) => panic!("no address: {e}"),
        };
        let endpoint = test_support::answering_endpoint();
        let router = test_support::counted(endpoint, requests.clone(), arrived.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let idp = match mock_idp::launch(mock_idp::Options {
            sim_token: None,
            tls: Default::default(),
            oauth: None,
            port: 0,
            data: None,
            token: TOKEN.into(),
            durable: false,
            engine: mock_idp::EngineConfig::default(),
        })
        .await
        {
            Ok(idp) => idp,
            Err(e) => panic!("the IdP did not start: {e}"),
        };
        let http = Http::default();
        let (_, group) = http
            .idp_pushing_to(&idp.url, TOKEN, &scim_url, "okta")
            .await;
        let users = format!("{}/api/v1/users?activate=true", idp.url);
        (idp, (http, users, group))
    });
    let (http, users_url, group) = users;
    let serial = AtomicU64::new(0);
    let mut bench = c.benchmark_group("outbox");
    bench
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(OUTBOX_BATCH));
    // An Okta joiner is two requests at the endpoint: the look-up, then the create.
    bench.bench_function("okta_joiners_accepted_and_pushed", |b| {
        b.iter(|| {
            rt.block_on(async {
                let due = requests.load(Ordering::Relaxed) + 2 * OUTBOX_BATCH;
                let joiners = (0..OUTBOX_BATCH).map(|_| {
                    let i = serial.fetch_add(1, Ordering::Relaxed);
                    let login = format!("bench{i}@example.test");
                    let joiner = json!({"profile": {"login": login, "email": login, "firstName": "B",
                        "lastName": format!("{i}")}, "groupIds": [group]});
                    http.okta(Method::POST, &users_url, TOKEN, joiner)
                });
                futures::future::join_all(joiners).await;
                while requests.load(Ordering::Relaxed) < due {
                    let woken = arrived.notified();
                    if requests.load(Ordering::Relaxed) >= due {
                        break;
                    }
                    if tokio::time::timeout(Duration::from_secs(10), woken).await.is_err() {
                        panic!("the IdP stopped pushing");
                    }
                }
            })
        })
    });
    bench.finish();
    rt.block_on(idp.stop());
}

criterion_group!(benches, connectors, outbox);
criterion_main!(benches);
