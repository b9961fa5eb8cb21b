//! A SCIM endpoint as a scenario target, end to end over HTTP: the run cleans up only what it
//! made, the SCIM-level oracle catches an endpoint that acknowledges changes it drops, and a
//! failed preflight writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::Path;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use harness::scenario::scim_run::{self, ScimTargets};
use harness::scenario::{model::Dialect, Scenario};
use harness::scim_target::{EndpointAuth, PushAuth, ScimSpec};
use serde_json::{json, Value};

const TOKEN: &str = "vendor-token";

/// A SCIM engine nobody from the run started: scimlab's own, as a vendor's server would be,
/// with `layer` in front of it.
async fn endpoint(layer: Option<fn(Request, Next) -> Fut>) -> (String, scim::serve::Servers) {
    let mut servers = scim::serve::Servers::new(None);
    let (listener, url) = servers.bind(0).await.unwrap();
    let provider = scim::Provider::temporary(scim::ProviderConfig {
        base_url: url.clone(),
        ..Default::default()
    })
    .unwrap();
    let app = scim::app(scim::AppState {
        provider,
        tokens: vec![TOKEN.to_owned()],
        oauth: None,
    });
    let app = match layer {
        Some(f) => app.layer(axum::middleware::from_fn(f)),
        None => app,
    };
    servers.serve(listener, app);
    (url, servers)
}

type Fut = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

/// Acknowledges every PATCH of a group without applying it: memberships silently lost.
fn drop_group_patches(req: Request, next: Next) -> Fut {
    Box::pin(async move {
        if req.method() == axum::http::Method::PATCH && req.uri().path().starts_with("/Groups/") {
            return axum::http::StatusCode::NO_CONTENT.into_response();
        }
        next.run(req).await
    })
}

async fn call(url: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut req = scim::tls::ClientTls::default()
        .client()
        .unwrap()
        .request(method, format!("{url}{path}"))
        .bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    resp.json().await.unwrap_or(Value::Null)
}

fn targets(url: &str, token: &str) -> ScimTargets {
    ScimTargets {
        specs: vec![ScimSpec {
            name: "vendor".into(),
            url: url.to_owned(),
        }],
        auth: Some(EndpointAuth {
            push: PushAuth::Bearer(token.to_owned()),
            read: harness::conformance::Auth::Bearer(token.to_owned()),
        }),
        ..Default::default()
    }
}

async fn play(text: &str, dialect: Dialect, given: &ScimTargets) -> harness::scenario::ScenarioRun {
    let s = Scenario::parse(Path::new("inline.yaml"), text).unwrap();
    scim_run::run(&s, Path::new("inline.yaml"), dialect, given)
        .await
        .unwrap()
}

const JOIN_AND_LEAVE: &str = "name: join and leave\nfor: scim\nsettle: 3s\ngroups: [Eng]\nsteps:\n  - hire: {user: ann, groups: [Eng], profile: {title: Dev}}\n  - hire: {user: bob, groups: [Eng]}\n  - expect:\n      within: 5s\n      scim: [{user: ann, active: true, groups: [Eng], attributes: {title: Dev}}]\n  - terminate: {user: bob}\n  - expect:\n      within: 5s\n      scim: [{user: bob, active: false, groups: []}]\n";

#[tokio::test]
async fn the_run_deletes_what_it_made_and_nothing_else() {
    let (url, servers) = endpoint(None).await;
    let outsider = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "outsider@vendor.test"});
    call(&url, reqwest::Method::POST, "/Users", Some(outsider)).await;
    for dialect in [Dialect::Okta, Dialect::Entra] {
        let run = play(JOIN_AND_LEAVE, dialect, &targets(&url, TOKEN)).await;
        assert!(
            run.passed,
            "{}",
            harness::scenario::to_terminal(std::slice::from_ref(&run))
        );
        let outcome = &run.scim[0];
        assert_eq!((outcome.deleted, outcome.left.len()), (3, 0), "{outcome:?}");
        let users = call(&url, reqwest::Method::GET, "/Users", None).await;
        let names: Vec<&str> = users["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| u["userName"].as_str())
            .collect();
        assert_eq!(names, ["outsider@vendor.test"], "{dialect:?}");
        let groups = call(&url, reqwest::Method::GET, "/Groups", None).await;
        assert_eq!(groups["totalResults"], 0, "{groups}");
    }
    servers.stop().await;
}

#[tokio::test]
async fn the_oracle_catches_memberships_acknowledged_and_dropped() {
    let (url, servers) = endpoint(Some(drop_group_patches)).await;
    let run = play(JOIN_AND_LEAVE, Dialect::Entra, &targets(&url, TOKEN)).await;
    assert!(!run.passed);
    let oracle = run.steps.last().unwrap();
    let members = oracle
        .differences
        .iter()
        .find(|d| d.subject == "group Eng" && d.attribute == "members")
        .unwrap_or_else(|| panic!("{:?}", oracle.differences));
    assert_eq!(
        (members.expected.as_str(), members.actual.as_str()),
        ("ann", "")
    );
    assert_eq!(members.since_step, Some(4), "due since bob left at step 4");
    let expect = &run.steps[2];
    assert!(
        expect
            .detail
            .contains("ann: in groups {}, expected {\"Eng\"}"),
        "{}",
        expect.detail
    );
    servers.stop().await;
}

#[tokio::test]
async fn a_failed_preflight_writes_nothing() {
    let (url, servers) = endpoint(None).await;
    let run = play(JOIN_AND_LEAVE, Dialect::Okta, &targets(&url, "wrong-token")).await;
    assert!(!run.passed);
    assert_eq!(run.steps.len(), 1);
    assert_eq!(run.steps[0].kind, "preflight");
    assert!(
        run.steps[0].detail.contains("401"),
        "{}",
        run.steps[0].detail
    );
    let users = call(&url, reqwest::Method::GET, "/Users", None).await;
    assert_eq!(users["totalResults"], 0);
    servers.stop().await;
}

/// `scimlab load --scim` against the endpoint, as a user runs it; (exit code, report.json).
async fn load(url: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().to_owned();
    let mut args: Vec<String> = [
        "load",
        "--scim",
        url,
        "--token",
        TOKEN,
        "--rate",
        "20",
        "--duration",
        "2",
        "--users",
        "10",
        "--quiet",
        "--report",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.push(report.display().to_string());
    if !extra.contains(&"--settle") {
        args.extend(["--settle".to_owned(), "5".to_owned()]);
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_scimlab"))
            .args(&args)
            .env_remove("SCIMLAB_TOKEN")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = std::fs::read_to_string(report.join("report.json")).unwrap_or_else(|_| {
        panic!(
            "no report: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), serde_json::from_str(&text).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_run_passes_cleans_up_and_stops_at_max_requests() {
    let (url, servers) = endpoint(None).await;
    let (code, report) = load(
        &url,
        &["--poll-ms", "20", "--groups", "2", "--group-size", "8"],
    )
    .await;
    assert_eq!(code, Some(0), "{}", report["verdict_line"]);
    assert_eq!(report["oracle_differences"], 0);
    // Read back: the engine lists a user's groups, so membership is judged too.
    assert_eq!(report["membership_judged"], true);
    assert_eq!(report["never_visible"], 0);
    let shown: u64 = report["visible"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["latency"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(
        shown,
        report["events_accepted"].as_u64().unwrap(),
        "{}",
        report["visible"]
    );
    assert!(report["traffic"]["requests"].as_u64().unwrap() > 40);
    assert!(
        report["cleanup"]["deleted"].as_u64().unwrap() >= 14,
        "{}",
        report["cleanup"]
    );
    let users = call(&url, reqwest::Method::GET, "/Users", None).await;
    assert_eq!(users["totalResults"], 0, "everything deleted: {users}");

    let (code, report) = load(&url, &["--max-requests", "50"]).await;
    assert_eq!(code, Some(1));
    let line = report["verdict_line"].as_str().unwrap();
    assert!(line.contains("--max-requests"), "{line}");
    assert_eq!(report["traffic"]["capped"], true);
    let users = call(&url, reqwest::Method::GET, "/Users", None).await;
    assert_eq!(
        users["totalResults"], 0,
        "cleaned up after the cap too: {users}"
    );
    servers.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_rate_paces_what_reaches_the_endpoint() {
    let (url, servers) = endpoint(None).await;
    let started = std::time::Instant::now();
    let (code, report) = load(&url, &["--max-rate", "40"]).await;
    assert_eq!(code, Some(0), "{}", report["verdict_line"]);
    let requests = report["traffic"]["requests"].as_u64().unwrap();
    // Paced, the requests cannot have gone faster than 40 a second (a lower bound only: a
    // slow machine makes the run longer, never shorter).
    let floor = (requests as f64 - 1.0) / 40.0;
    assert!(
        started.elapsed().as_secs_f64() >= floor,
        "{requests} requests in {:?}",
        started.elapsed()
    );
    servers.stop().await;
}

/// Two endpoints in one `load --scim` run: each gets the plan and a report of its own, the
/// summary names both, and the one that drops memberships fails the run alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_load_run_judges_several_endpoints_each_on_its_own() {
    let (good, good_servers) = endpoint(None).await;
    let (lossy, lossy_servers) = endpoint(Some(drop_group_patches)).await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().to_owned();
    let run = |scims: Vec<String>| {
        let report = report.clone();
        tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_scimlab"));
            cmd.arg("load");
            for s in &scims {
                cmd.args(["--scim", s]);
            }
            cmd.args([
                "--token",
                TOKEN,
                "--rate",
                "20",
                "--duration",
                "2",
                "--users",
                "10",
            ])
            .args(["--settle", "5", "--quiet", "--report"])
            .arg(&report)
            .env_remove("SCIMLAB_TOKEN")
            .output()
            .unwrap()
        })
    };
    let out = run(vec![format!("good={good}"), format!("lossy={lossy}")])
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{said}");
    let read = |name: &str| -> Value {
        let text = std::fs::read_to_string(report.join(name).join("report.json"))
            .unwrap_or_else(|e| panic!("{name}: {e}: {said}"));
        serde_json::from_str(&text).unwrap()
    };
    let (good_report, lossy_report) = (read("good"), read("lossy"));
    assert_eq!(
        good_report["verdict"], "pass",
        "{}",
        good_report["verdict_line"]
    );
    assert_eq!(lossy_report["verdict"], "fail");
    assert!(lossy_report["oracle_differences"].as_u64().unwrap() > 0);
    assert!(report.join("good").join("index.html").exists());
    let summary = std::fs::read_to_string(report.join("summary.md")).unwrap();
    assert!(
        summary.contains(&format!("| good | {good} | PASS"))
            && summary.contains(&format!("| lossy | {lossy} | FAIL")),
        "{summary}"
    );
    for url in [&good, &lossy] {
        let users = call(url, reqwest::Method::GET, "/Users", None).await;
        assert_eq!(users["totalResults"], 0, "{url}: cleaned up: {users}");
    }

    // Two endpoints under one name would write one report over the other.
    let out = run(vec![good.clone(), lossy.clone()]).await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("two --scim endpoints are called 'scim'"));
    good_servers.stop().await;
    lossy_servers.stop().await;
}

/// Answers each distinct create (`POST /Users` and its body) 429 with `Retry-After: 1` the first
/// time it comes, and lets it through when it comes again: every joiner is throttled once, and
/// converges once retried as told.
fn throttle_writes(req: Request, next: Next) -> Fut {
    static SEEN: std::sync::Mutex<Vec<(String, String, Vec<u8>)>> =
        std::sync::Mutex::new(Vec::new());
    Box::pin(async move {
        if req.method() != axum::http::Method::POST || req.uri().path() != "/Users" {
            return next.run(req).await;
        }
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
            return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response();
        };
        let key = (
            parts.method.to_string(),
            parts.uri.to_string(),
            bytes.to_vec(),
        );
        let first = {
            let mut seen = SEEN.lock().unwrap();
            let first = !seen.contains(&key);
            if first {
                seen.push(key);
            }
            first
        };
        if first {
            return (
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "slow down",
            )
                .into_response();
        }
        next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
            .await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_endpoint_is_waited_out_and_the_report_says_so() {
    let (url, servers) = endpoint(Some(throttle_writes)).await;
    let (code, report) = load(&url, &["--settle", "20"]).await;
    assert_eq!(
        code,
        Some(0),
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    assert!(
        report["traffic"]["throttled_with_retry_after"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(report["traffic"]["throttled_without_retry_after"], 0);
    assert_eq!(report["backoff_converged"], true, "{report}");
    assert_eq!(report["oracle_differences"], 0);
    servers.stop().await;
}

/// `scenario --scim --max-requests`: the IdP's pushes past the cap never reach the endpoint,
/// the run fails and says so, and the clean-up (which does not go through the cap) still
/// removes everything.
#[tokio::test]
async fn a_scenario_stops_at_max_requests_and_still_cleans_up() {
    let (url, servers) = endpoint(None).await;
    let given = ScimTargets {
        caps: harness::wiretap::Caps {
            max_requests: Some(4),
            max_rate: None,
        },
        ..targets(&url, TOKEN)
    };
    let run = play(JOIN_AND_LEAVE, Dialect::Okta, &given).await;
    assert!(!run.passed);
    let outcome = &run.scim[0];
    assert!(outcome.capped, "{outcome:?}");
    assert_eq!(outcome.requests, 4, "{outcome:?}");
    let md = harness::scenario::to_markdown(std::slice::from_ref(&run));
    assert!(
        md.contains("--max-requests reached after 4 requests"),
        "{md}"
    );
    let users = call(&url, reqwest::Method::GET, "/Users", None).await;
    assert_eq!(users["totalResults"], 0, "{users}");
    let groups = call(&url, reqwest::Method::GET, "/Groups", None).await;
    assert_eq!(groups["totalResults"], 0, "{groups}");

    // Without the cap the same scenario passes, through the same proxy.
    let run = play(JOIN_AND_LEAVE, Dialect::Okta, &targets(&url, TOKEN)).await;
    assert!(run.passed);
    assert!(!run.scim[0].capped && run.scim[0].requests > 4);
    servers.stop().await;
}
