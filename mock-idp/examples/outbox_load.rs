//! Outbox throughput: N joiners accepted by the IdP's API (C clients at once), delivered by the
//! engine to an endpoint on loopback. Prints accepted/s, delivered/s, the SCIM requests/s the
//! endpoint received, and the accepted -> acknowledged latency the System Log records.
//!
//! `cargo run --release -p mock-idp --example outbox_load -- [USERS] [CLIENTS] [okta|entra] [durable|fast]`
//!
//! `durable` (the default): the endpoint is scimlab's SCIM engine, and both sides flush before
//! they answer. `fast`: the IdP does not flush, and the endpoint answers at once without storing
//! anything (an empty search, a 201 with a fresh id), so the figure is the IdP's own push rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use mock_idp::{launch, EngineConfig, Options};
use scim::{app, AppState, Durability, Provider, ProviderConfig};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let users: usize = args.get(1).map_or(Ok(2000), |a| a.parse())?;
    let clients: usize = args.get(2).map_or(Ok(8), |a| a.parse())?;
    let dialect = args.get(3).cloned().unwrap_or_else(|| "okta".into());
    let durable = match args.get(4).map(String::as_str) {
        None | Some("durable") => true,
        Some("fast") => false,
        Some(other) => bail!("the mode is durable or fast, not {other}"),
    };
    let dir = tempfile::tempdir()?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let scim_url = format!("http://{}", listener.local_addr()?);
    let requests = Arc::new(AtomicU64::new(0));
    let router = if durable {
        engine_endpoint(dir.path(), &scim_url)?
    } else {
        test_support::answering_endpoint()
    };
    let router = test_support::counted(router, requests.clone(), Default::default());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let idp = launch(Options {
        sim_token: None,
        tls: Default::default(),
        oauth: None,
        port: 0,
        data: Some(dir.path().join("idp")),
        token: "t".into(),
        durable,
        engine: EngineConfig::default(),
    })
    .await?;
    run(&idp, &scim_url, users, clients, &dialect, &requests).await?;
    idp.stop().await;
    Ok(())
}

/// scimlab's SCIM engine, flushing before it answers.
fn engine_endpoint(dir: &std::path::Path, scim_url: &str) -> anyhow::Result<axum::Router> {
    let provider = Provider::open(
        &dir.join("scim"),
        ProviderConfig {
            base_url: scim_url.to_owned(),
            durability: Durability::Flush,
            leniency: scim::resource::Leniency {
                boolean_strings: true,
            },
            ..Default::default()
        },
    )?;
    Ok(app(AppState {
        provider,
        tokens: vec!["t".into()],
        oauth: None,
    }))
}

async fn run(
    idp: &mock_idp::Launched,
    scim_url: &str,
    users: usize,
    clients: usize,
    dialect: &str,
    requests: &AtomicU64,
) -> anyhow::Result<()> {
    let client = scim::tls::ClientTls::default().client()?;
    let idp_url = idp.url.clone();
    let call = move |method: reqwest::Method, path: String, body: Value| {
        let req = client
            .request(method, format!("{idp_url}{path}"))
            .header("authorization", "SSWS t")
            .json(&body);
        async move {
            let resp = req.send().await?;
            let status = resp.status();
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                bail!("{status}: {v}");
            }
            Ok(v)
        }
    };
    use reqwest::Method;
    let http = test_support::Http::default();
    let (app_id, group_id) = http.idp_pushing_to(&idp.url, "t", scim_url, dialect).await;

    // Each joiner is one API call: created active and in the assigned group.
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let call = call.clone();
        let group_id = group_id.clone();
        tasks.spawn(async move {
            for i in (c..users).step_by(clients) {
                let login = format!("load{i}@example.test");
                call(Method::POST, "/api/v1/users?activate=true".into(),
                    json!({"profile": {"login": login, "email": login, "firstName": "L", "lastName": format!("{i}")},
                        "groupIds": [group_id]})).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let accepted = started.elapsed();
    let requests_accepted = requests.load(Ordering::Relaxed);
    loop {
        let left = call(
            Method::GET,
            format!("/api/v1/apps/{app_id}/outbox"),
            Value::Null,
        )
        .await?;
        if left.as_array().is_some_and(|a| a.is_empty()) {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("not drained after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = started.elapsed();
    let requests = requests.load(Ordering::Relaxed);
    // Once the API is quiet, the IdP does nothing but push.
    let drain_rate = (requests - requests_accepted) as f64 / (delivered - accepted).as_secs_f64();
    let mut latencies: Vec<f64> = Vec::new();
    let mut after = 0u64;
    loop {
        let page = call(Method::GET, format!("/api/v1/logs?limit=1000&after={after}&filter=eventType%20eq%20%22application.provision.user.push%22"), Value::Null).await?;
        let Some(items) = page.as_array().filter(|a| !a.is_empty()) else {
            break;
        };
        for e in items {
            latencies.extend(e["debugContext"]["debugData"]["latencyMs"].as_f64());
            after = e["transaction"]["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(after);
        }
        if items.len() < 1000 {
            break;
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "{dialect}: {users} joiners by {clients} clients: accepted {:.0}/s ({:.2} s), delivered {:.0}/s ({:.2} s), {requests} SCIM requests at {:.0}/s ({drain_rate:.0}/s once all were accepted); accepted->acknowledged p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} deliveries)",
        users as f64 / accepted.as_secs_f64(), accepted.as_secs_f64(),
        users as f64 / delivered.as_secs_f64(), delivered.as_secs_f64(),
        requests as f64 / delivered.as_secs_f64(),
        pct(0.5), pct(0.99), pct(1.0), latencies.len()
    );
    Ok(())
}
