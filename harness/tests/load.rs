#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The load run end to end on embedded servers: shards that merge exactly, and the checks
//! failing when a target misbehaves.

use std::path::PathBuf;
use std::time::Duration;

use harness::load::plan::{self, Mix, PlanOptions, Shard};
use harness::load::report::{Hist, LoadReport};
use harness::load::{self, LoadOptions};
use harness::mock_target::space::SPACE;
use harness::scenario::model::Dialect;

fn options(shard: Shard) -> LoadOptions {
    LoadOptions {
        plan: PlanOptions {
            rate: 40.0,
            duration_s: 3.0,
            ramp_s: 0.0,
            users: 30,
            max_events: None,
            mix: Mix::default(),
            seed: 7,
        },
        shard,
        phases: Vec::new(),
        dialect: Dialect::Okta,
        policies: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/policies"),
        settle: Duration::from_secs(30),
        max_p99_ms: None,
        progress: false,
        durable: false,
        quirks: Vec::new(),
        remote: None,
        tag: None,
        poll: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_cover_the_plan_and_merge_exactly() {
    let halves = [
        load::run(&options(Shard { index: 0, count: 2 }))
            .await
            .unwrap(),
        load::run(&options(Shard { index: 1, count: 2 }))
            .await
            .unwrap(),
    ];
    for h in &halves {
        assert!(h.passed(), "{}", h.to_markdown());
        assert!(h.recorded.events.sent > 20, "{}", h.to_markdown());
    }
    // Together the shards sent exactly the unsharded plan.
    let whole = plan::plan(&options(Shard::WHOLE).plan).len() as u64;
    let sent: u64 = halves.iter().map(|h| h.recorded.events.sent).sum();
    assert_eq!(sent, whole);

    // Merged from the files as `scimlab report merge` reads them: histograms add exactly.
    let dir = tempfile::tempdir().unwrap();
    let mut parts = Vec::new();
    for (i, h) in halves.iter().enumerate() {
        let at = dir.path().join(format!("shard-{i}"));
        load::write(h, &at).unwrap();
        parts.push(load::read(&at.join("report.json")).unwrap());
    }
    let merged = LoadReport::merge(&parts).unwrap();
    let mut expected = Hist::new();
    for h in &halves {
        expected.add(&h.recorded.overall).unwrap();
    }
    assert_eq!(merged.recorded.overall.pairs(), expected.pairs());
    assert_eq!(merged.recorded.overall.count(), whole);
    assert_eq!(merged.recorded.events.applied, whole);
    assert_eq!(
        merged.summary["latency_ms"]["overall"]["p99"],
        serde_json::json!(expected.summary().p99)
    );
    assert_eq!(merged.shards.len(), 2);
    assert!(merged.passed());
    let seconds_sent: u64 = merged.recorded.seconds.iter().map(|s| s.sent).sum();
    assert_eq!(seconds_sent, whole);

    // A shard twice is not a merge.
    let twice = LoadReport::merge(&[parts[0].clone(), parts[0].clone()]);
    assert!(twice.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_loses_changes_fails_the_run() {
    let mut o = options(Shard::WHOLE);
    // Space deactivates without an audit event (the leaver never shows as applied) and keeps
    // memberships it was told to delete (the oracle sees the stale grants).
    o.quirks = vec![
        (SPACE, "deactivate-unaudited".into()),
        (SPACE, "membership-delete-ignored".into()),
    ];
    let r = load::run(&o).await.unwrap();
    let md = r.to_markdown();
    assert!(!r.passed(), "{md}");
    assert!(r.recorded.events.lost > 0, "{md}");
    assert_eq!(
        r.recorded.events.pending, 0,
        "the IdP delivered everything: {md}"
    );
    assert!(r.recorded.oracle_mismatches > 0, "{md}");
    assert!(
        r.recorded.findings.iter().any(|f| f.contains("excess")),
        "{md}"
    );
    let junit = r.to_junit().unwrap();
    assert!(
        junit.contains("no event lost") && junit.contains("<failure"),
        "{junit}"
    );
}

/// Two shards of one tagged run, started together on servers already running (one stack), then
/// a second run on the same servers: people and groups do not collide, and latencies are
/// stamped on the harness's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_share_servers_already_running() {
    use harness::scenario::run::{Endpoint, Remote};
    use harness::targets::{Dialect, Targets};

    let dir = tempfile::tempdir().unwrap();
    let policies = options(Shard::WHOLE).policies;
    let stack = Targets::start_with_policies(
        Some(dir.path().to_owned()),
        "elsewhere",
        false,
        Dialect::Okta,
        harness::targets::idp_policies(&policies).unwrap(),
        Default::default(),
    )
    .await
    .unwrap();
    let end = |url: &str| Endpoint {
        url: url.to_owned(),
        token: "elsewhere".into(),
        app: None,
        scim: None,
    };
    let remote = Remote {
        dialect: Dialect::Okta,
        idp: end(&stack.idp.url),
        targets: stack
            .mocks
            .iter()
            .map(|(t, urls)| (*t, end(&urls.native_url)))
            .collect(),
        ca_cert: None,
        tls: Default::default(),
        scim_oauth: None,
    };
    let on_stack = |shard, tag: &str| LoadOptions {
        remote: Some(remote.clone()),
        tag: Some(tag.into()),
        ..options(shard)
    };
    let (a, b) = (
        on_stack(Shard { index: 0, count: 2 }, "one"),
        on_stack(Shard { index: 1, count: 2 }, "one"),
    );
    let (a, b) = tokio::join!(load::run(&a), load::run(&b));
    let again = load::run(&on_stack(Shard::WHOLE, "two")).await.unwrap();
    let (a, b) = (a.unwrap(), b.unwrap());
    for r in [&a, &b, &again] {
        let md = r.to_markdown();
        assert!(r.passed(), "{md}");
        assert!(r.recorded.events.applied > 20, "{md}");
        assert!(r.config.stamped_on_receipt, "{md}");
        assert!(md.contains("harness receiving"), "{md}");
    }
    let merged = LoadReport::merge(&[a.clone(), b]).unwrap();
    assert_eq!(
        merged.recorded.events.applied,
        plan::plan(&options(Shard::WHOLE).plan).len() as u64
    );
    let other_run = LoadReport::merge(&[a, again]).unwrap_err();
    assert!(other_run.to_string().contains("tag"), "{other_run}");
    stack.stop().await;
}

/// Watching the targets by reading their SCIM connectors instead of their audit streams: every
/// event is seen, and the report states the resolution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_the_scim_connectors_sees_every_event() {
    let o = LoadOptions {
        poll: Some(Duration::from_millis(20)),
        ..options(Shard::WHOLE)
    };
    let r = load::run(&o).await.unwrap();
    let md = r.to_markdown();
    assert!(r.passed(), "{md}");
    assert_eq!(
        r.recorded.events.applied,
        plan::plan(&o.plan).len() as u64,
        "{md}"
    );
    assert_eq!(r.config.poll_ms, Some(20));
    assert!(md.contains("read every 20 ms"), "{md}");
}
