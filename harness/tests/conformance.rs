//! The conformance suite against the `scim` engine (every check passes, nothing is left behind)
//! and against the engine with one fault injected (exactly the expected checks fail).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{header, HeaderValue, Response};
use harness::conformance::{self, Auth, Options, Outcome, Target};
use scim::{app, AppState, Provider, ProviderConfig};
use serde_json::Value;

#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    NoLocation,
    NoWwwAuthenticate,
    NumericErrorStatus,
    PlainJsonContentType,
    NoEtag,
}

async fn rewrite(fault: Fault, resp: Response<Body>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    match fault {
        Fault::NoLocation => {
            parts.headers.remove(header::LOCATION);
        }
        Fault::NoWwwAuthenticate => {
            parts.headers.remove(header::WWW_AUTHENTICATE);
        }
        Fault::NoEtag => {
            parts.headers.remove(header::ETAG);
        }
        Fault::PlainJsonContentType => {
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        Fault::NumericErrorStatus if parts.status.as_u16() >= 400 => {
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let mut v: Value = serde_json::from_slice(&bytes).unwrap();
            v["status"] = Value::from(parts.status.as_u16());
            parts.headers.remove(header::CONTENT_LENGTH);
            return Response::from_parts(parts, Body::from(v.to_string()));
        }
        _ => {}
    }
    Response::from_parts(parts, body)
}

/// The engine on 127.0.0.1:0 behind `fault`; the server stops when the handle is dropped.
struct Served {
    base: String,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(fault: Fault) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let provider = Provider::open(
        dir.path(),
        ProviderConfig {
            base_url: base.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    let router = app(AppState {
        provider,
        tokens: vec!["t".into()],
    })
    .layer(axum::middleware::map_response(
        move |resp: Response<Body>| rewrite(fault, resp),
    ));
    let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Served {
        base,
        task,
        _dir: dir,
    }
}

fn target(base: &str) -> Target {
    Target::new(base, Auth::Bearer("t".into())).unwrap()
}

/// Runs the suite against the engine behind `fault`; returns the failed ids and the run.
async fn run_against(fault: Fault) -> (BTreeSet<String>, conformance::Run) {
    let served = serve(fault).await;
    let run = conformance::run(target(&served.base), Options::default()).await;
    let after = target(&served.base).get("/Users").await.unwrap();
    assert_eq!(
        after.json().unwrap()["totalResults"],
        0,
        "the run removed every user it created"
    );
    let failed = run
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
        .map(|r| r.def.id.to_owned())
        .collect();
    (failed, run)
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn every_check_passes_against_the_engine() {
    let (failed, run) = run_against(Fault::None).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert!(run.results.len() >= 56);
    assert!(
        run.results.iter().all(|r| r.outcome == Outcome::Passed),
        "nothing skipped or blocked against a full server"
    );
    assert!(run.left_behind.is_empty());
}

#[tokio::test]
async fn each_fault_fails_exactly_the_checks_that_test_it() {
    let cases = [
        (Fault::NoLocation, ids(&["P-CREATE-02"])),
        (Fault::NoWwwAuthenticate, ids(&["P-AUTH-02"])),
        (Fault::PlainJsonContentType, ids(&["P-MEDIA-04"])),
        (
            Fault::NumericErrorStatus,
            ids(&[
                "P-AUTH-03",
                "P-MEDIA-05",
                "P-ERR-05",
                "P-READ-02",
                "P-CREATE-04",
                "P-CREATE-07",
                "P-DELETE-05",
                "P-FILTER-12",
                "P-PATCH-02",
                "P-PATCH-13",
                "P-PATCH-16",
                "P-PATCH-20",
            ]),
        ),
        (Fault::NoEtag, ids(&["P-ETAG-01", "P-ETAG-03", "P-ETAG-05"])),
    ];
    for (fault, expected) in cases {
        let (failed, run) = run_against(fault).await;
        assert_eq!(failed, expected, "{fault:?}");
        for r in run
            .results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
        {
            assert!(
                !r.exchanges.is_empty(),
                "{} fails without evidence",
                r.def.id
            );
            assert!(
                r.exchanges.iter().all(|e| e
                    .request_headers
                    .iter()
                    .all(|(k, v)| k != "authorization" || v == "Bearer ****")),
                "credentials are masked"
            );
        }
    }
}

#[tokio::test]
async fn read_only_runs_write_nothing_and_waivers_are_not_counted() {
    let served = serve(Fault::NoWwwAuthenticate).await;
    let options = Options {
        read_only: true,
        waivers: vec![("P-AUTH-02".into(), "proxy strips it".into())],
        ..Default::default()
    };
    let run = conformance::run(target(&served.base), options).await;
    assert!(run.results.iter().all(|r| r.def.read_only));
    assert!(run
        .results
        .iter()
        .any(|r| r.def.id == "P-AUTH-02" && matches!(r.outcome, Outcome::Waived(_))));
    assert!(!run.fails(true), "a waived failure does not fail the run");
}
