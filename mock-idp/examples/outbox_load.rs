//! Outbox throughput: N joiners accepted by the IdP's API (C clients at once), delivered by the
//! engine to a SCIM engine on loopback. Prints accepted/s, delivered/s and the accepted ->
//! acknowledged latency the System Log records. Both sides durable (flush before answering).
//!
//! `cargo run --release -p mock-idp --example outbox_load -- [USERS] [CLIENTS] [okta|entra]`

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mock_idp::{launch, EngineConfig, Options};
use scim::{app, AppState, Durability, Provider, ProviderConfig};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let users: usize = args.get(1).map_or(Ok(2000), |a| a.parse())?;
    let clients: usize = args.get(2).map_or(Ok(8), |a| a.parse())?;
    let dialect = args.get(3).cloned().unwrap_or_else(|| "okta".into());
    let dir = tempfile::tempdir()?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let scim_url = format!("http://{}", listener.local_addr()?);
    let provider = Provider::open(
        &dir.path().join("scim"),
        ProviderConfig {
            base_url: scim_url.clone(),
            durability: Durability::Flush,
            leniency: scim::resource::Leniency {
                boolean_strings: true,
            },
            ..Default::default()
        },
    )?;
    let router = app(AppState {
        provider,
        tokens: vec!["t".into()],
        oauth: None,
    });
    tokio::spawn(async move { axum::serve(listener, router).await });

    let idp = launch(Options {
        sim_token: None,
        tls: Default::default(),
        oauth: None,
        port: 0,
        data: Some(dir.path().join("idp")),
        token: "t".into(),
        durable: true,
        engine: EngineConfig::default(),
    })
    .await?;
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
    let app_doc = call(
        Method::POST,
        "/api/v1/apps".into(),
        json!({"label": "load", "settings": {"app": {"scimDialect": dialect}}}),
    )
    .await?;
    let app_id = app_doc["id"].as_str().context("no app id")?.to_owned();
    let group = call(
        Method::POST,
        "/api/v1/groups".into(),
        json!({"profile": {"name": "All"}}),
    )
    .await?;
    let group_id = group["id"].as_str().context("no group id")?.to_owned();
    call(
        Method::PUT,
        format!("/api/v1/apps/{app_id}/groups/{group_id}"),
        json!({}),
    )
    .await?;
    call(
        Method::POST,
        format!("/api/v1/apps/{app_id}/connections/default?activate=true"),
        json!({"profile": {"authScheme": "TOKEN", "token": "t"}, "baseUrl": scim_url}),
    )
    .await?;
    call(
        Method::PUT,
        format!("/api/v1/apps/{app_id}/features/USER_PROVISIONING"),
        json!({"capabilities": {"create": {"lifecycleCreate": {"status": "ENABLED"}}}}),
    )
    .await?;

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
        "{dialect}: {users} joiners by {clients} clients: accepted {:.0}/s ({:.2} s), delivered {:.0}/s ({:.2} s); accepted->acknowledged p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} deliveries)",
        users as f64 / accepted.as_secs_f64(), accepted.as_secs_f64(),
        users as f64 / delivered.as_secs_f64(), delivered.as_secs_f64(),
        pct(0.5), pct(0.99), pct(1.0), latencies.len()
    );
    idp.stop().await;
    Ok(())
}
