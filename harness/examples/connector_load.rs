//! Throughput of the SCIM connectors (Space, TeamCity): creates, updates, then deactivates
//! USERS users through SCIM with CONCURRENCY requests in flight, each applied to its simulator
//! over HTTP with durable writes on both sides. Loopback only; bounded by the user count and
//! 120 s a phase.
//!
//! cargo run --release -p harness --example connector_load -- [USERS=2000] [CONCURRENCY=8]

#![allow(clippy::unwrap_used, clippy::expect_used)] // a load tool: a panic is its error report

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

const TOKEN: &str = "load";
const PHASE_LIMIT: Duration = Duration::from_secs(120);

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let users: usize = args
        .next()
        .map_or(2000, |a| a.parse().expect("USERS is a number"));
    let concurrency: usize = args
        .next()
        .map_or(8, |a| a.parse().expect("CONCURRENCY is a number"));
    let data = tempfile::tempdir().unwrap();
    let targets = harness::targets::Targets::start(Some(data.path().to_path_buf()), TOKEN, true)
        .await
        .unwrap();
    let client = scim::tls::ClientTls::default().client().unwrap();
    println!("{users} users, {concurrency} in flight, durable writes on both sides");
    println!("| connector | phase | ok | failed | per second | p50 ms | p99 ms |\n|---|---|---|---|---|---|---|");
    for (target, urls) in &targets.mocks {
        let (connector, scim) = (target.as_str(), urls.scim_url.clone());
        let ids = phase(connector, "create", users, concurrency, |i| {
            let (client, scim) = (client.clone(), scim.clone());
            async move {
                let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("load-{i}"), "name": {"givenName": "Load", "familyName": format!("U{i}")},
                    "emails": [{"value": format!("load-{i}@example.com"), "type": "work"}]});
                let resp = client.post(format!("{scim}/Users")).bearer_auth(TOKEN).json(&body).send().await.ok()?;
                if resp.status() != 201 {
                    return None;
                }
                let v: Value = resp.json().await.ok()?;
                v["id"].as_str().map(str::to_owned)
            }
        })
        .await;
        let ids: Vec<String> = ids.into_iter().flatten().collect();
        for (name, ops) in [
            (
                "update",
                json!([{"op": "replace", "path": "name.familyName", "value": "Moved"}]),
            ),
            (
                "deactivate",
                json!([{"op": "replace", "path": "active", "value": false}]),
            ),
        ] {
            phase(connector, name, ids.len(), concurrency, |i| {
                let (client, scim, id, ops) = (client.clone(), scim.clone(), ids[i].clone(), ops.clone());
                async move {
                    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
                    let resp = client.patch(format!("{scim}/Users/{id}")).bearer_auth(TOKEN).json(&body).send().await.ok()?;
                    (resp.status() == 200).then_some(id)
                }
            })
            .await;
        }
    }
    targets.stop().await;
}

/// Runs `count` requests, `concurrency` at a time, and prints one table row.
async fn phase<F, Fut>(
    connector: &str,
    name: &str,
    count: usize,
    concurrency: usize,
    request: F,
) -> Vec<Option<String>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let started = Instant::now();
    let results: Vec<(Option<String>, Duration)> = futures::stream::iter(0..count)
        .take_while(|_| std::future::ready(started.elapsed() < PHASE_LIMIT))
        .map(|i| {
            let fut = request(i);
            async move {
                let t = Instant::now();
                let out = fut.await;
                (out, t.elapsed())
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let ok = results.iter().filter(|(r, _)| r.is_some()).count();
    println!(
        "| {connector} | {name} | {ok} | {} | {:.0} | {:.2} | {:.2} |",
        results.len() - ok,
        ok as f64 / elapsed,
        pct(0.50),
        pct(0.99)
    );
    results.into_iter().map(|(r, _)| r).collect()
}
