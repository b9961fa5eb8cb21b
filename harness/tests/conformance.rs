//! The conformance suite against the `scim` engine (every check passes, nothing is left behind)
//! and against both SCIM connectors with one of the mocks' SCIM quirks switched on (exactly the
//! expected checks fail).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::BTreeSet;

use harness::conformance::{self, Auth, Options, Outcome, Target};
use harness::targets::Targets;
use scim::{app, AppState, Provider, ProviderConfig};

/// The engine on 127.0.0.1:0; the server stops when the handle is dropped.
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

async fn serve_engine() -> Served {
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
    });
    let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Served {
        base,
        task,
        _dir: dir,
    }
}

/// Both connectors, each with its simulator's control plane for switching quirks.
async fn connectors() -> Targets {
    Targets::start(None, "t", false).await.unwrap()
}

async fn set_quirks(control: &str, quirks: &[&str]) {
    let resp = reqwest::Client::new()
        .put(format!("{control}/_sim/quirks"))
        .json(&quirks)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

fn target(base: &str) -> Target {
    Target::new(base, Auth::Bearer("t".into())).unwrap()
}

/// Runs the suite against `base`; returns the failed ids and the run.
async fn run_against(base: &str) -> (BTreeSet<String>, conformance::Run) {
    let run = conformance::run(target(base), Options::default()).await;
    let after = target(base).get("/Users").await.unwrap();
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
    let served = serve_engine().await;
    let (failed, run) = run_against(&served.base).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert!(run.results.len() >= 56);
    assert!(
        run.results.iter().all(|r| r.outcome == Outcome::Passed),
        "nothing skipped or blocked against a full server"
    );
    assert!(run.left_behind.is_empty());
}

/// The check -> quirk table of `docs/conformance.md`: each SCIM quirk of the mocks fails exactly
/// these checks, on both connectors, and no quirk leaves the suite blind.
fn quirk_table() -> Vec<(&'static str, BTreeSet<String>)> {
    vec![
        ("scim-no-location", ids(&["P-CREATE-02"])),
        ("scim-no-www-authenticate", ids(&["P-AUTH-02"])),
        ("scim-plain-json", ids(&["P-MEDIA-04"])),
        (
            "scim-numeric-error-status",
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
        (
            "scim-no-etag",
            ids(&["P-ETAG-01", "P-ETAG-03", "P-ETAG-05"]),
        ),
        (
            "scim-patch-op-case-sensitive",
            ids(&["I-ENTRA-01", "I-ENTRA-03"]),
        ),
        (
            "scim-filter-ignores-and",
            ids(&["P-FILTER-01", "P-FILTER-02", "P-FILTER-03", "P-FILTER-08"]),
        ),
        (
            "scim-no-paging",
            ids(&[
                "P-PAGE-01",
                "P-PAGE-02",
                "P-PAGE-03",
                "P-PAGE-05",
                "P-PAGE-06",
            ]),
        ),
        ("scim-attributes-ignored", ids(&["P-ATTR-01", "P-ATTR-02"])),
        (
            "scim-patch-remove-ignored",
            ids(&["P-PATCH-05", "P-PATCH-16", "P-PATCH-17"]),
        ),
        ("scim-no-auth-schemes", ids(&["P-DISC-02"])),
    ]
}

#[tokio::test]
async fn each_quirk_fails_exactly_the_checks_that_test_it_on_both_connectors() {
    let targets = connectors().await;
    let (space, teamcity) = (&targets.space, &targets.teamcity);
    let endpoints = [
        ("space", space.space_url.clone(), space.scim_url.clone()),
        (
            "teamcity",
            teamcity.teamcity_url.clone(),
            teamcity.scim_url.clone(),
        ),
    ];
    for (name, _, scim) in &endpoints {
        let (failed, _) = run_against(scim).await;
        assert!(failed.is_empty(), "{name} without quirks: {failed:?}");
    }
    let table = quirk_table();
    let names: BTreeSet<&str> = table.iter().map(|(q, _)| *q).collect();
    let known: BTreeSet<&str> = scim::sim::SCIM_QUIRKS.iter().map(|(q, _)| *q).collect();
    assert_eq!(names, known, "every SCIM quirk is in the table");
    for (quirk, expected) in table {
        for (name, control, scim) in &endpoints {
            set_quirks(control, &[quirk]).await;
            let (failed, run) = run_against(scim).await;
            set_quirks(control, &[]).await;
            assert_eq!(failed, expected, "{quirk} on {name}");
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
    targets.stop().await;
}

#[tokio::test]
async fn read_only_runs_write_nothing_and_waivers_are_not_counted() {
    let targets = connectors().await;
    let space = &targets.space;
    set_quirks(&space.space_url, &["scim-no-www-authenticate"]).await;
    let options = Options {
        read_only: true,
        waivers: vec![("P-AUTH-02".into(), "proxy strips it".into())],
        ..Default::default()
    };
    let run = conformance::run(target(&space.scim_url), options).await;
    assert!(run.results.iter().all(|r| r.def.read_only));
    assert!(run
        .results
        .iter()
        .any(|r| r.def.id == "P-AUTH-02" && matches!(r.outcome, Outcome::Waived(_))));
    assert!(!run.fails(true), "a waived failure does not fail the run");
    targets.stop().await;
}
