//! `scimlab ci`: the README's main job. It starts the SCIM engine, mock-space and
//! mock-teamcity (each a native API and its SCIM connector) on loopback with a fresh data
//! folder, drives a joiner / mover / leaver round trip through each SCIM endpoint over HTTP
//! (through the connectors it also checks the resulting native permissions), runs the
//! conformance suite against all three, every scenario, and a short load run with fault
//! phases, and writes the report contract's `report.json` and `summary.md`, and `index.html`
//! over every part (each part's own reports go to `conformance-<target>/`, `scenarios/` and
//! `load/`).

use harness::mock_target::{field_is, TargetName};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use chrono::{SecondsFormat, Utc};
use clap::Args;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::serve;
use harness::conformance::{
    self, report as conformance_report, Auth, Options, Outcome, Profile, Target,
};
use harness::load::plan::{Mix, PlanOptions, Shard};
use harness::load::{self, LoadOptions};
use harness::scenario;
use harness::scenario::model::Dialect;
use harness::targets::Targets;

#[derive(Debug, Args)]
pub struct CiArgs {
    /// Where to write the report (default: reports/ci-<UTC timestamp>).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Events per second of the load run (lower it for a debug build or a slow machine, so
    /// the run is about the faults rather than a backlog).
    #[arg(long, default_value_t = 50.0)]
    pub load_rate: f64,
}

/// The main job's load run: short, with every kind of fault in turn, on durable servers.
fn load_options(rate: f64) -> anyhow::Result<LoadOptions> {
    if !(rate > 0.0 && rate <= 10_000.0) {
        anyhow::bail!("--load-rate must be in (0, 10000]");
    }
    let phases = [
        "6s:5xx=5%,429=2%",
        "12s:latency=20ms,drop=1%",
        "16s:kill=teamcity:2s",
        "20s:none",
    ]
    .iter()
    .map(|p| p.parse())
    .collect::<Result<Vec<_>, String>>()
    .map_err(anyhow::Error::msg)?;
    Ok(LoadOptions {
        plan: PlanOptions {
            rate,
            duration_s: 24.0,
            ramp_s: 2.0,
            users: 200,
            max_events: None,
            mix: Mix::default(),
            seed: 1,
        },
        shard: Shard::WHOLE,
        phases,
        dialect: Dialect::Okta,
        policies: PathBuf::from("scenarios/policies"),
        settle: std::time::Duration::from_secs(90),
        max_p99_ms: None,
        progress: false,
        durable: true,
        quirks: Vec::new(),
        remote: None,
        tag: None,
        poll: None,
    })
}

struct Step {
    target: String,
    name: String,
    ok: bool,
    detail: String,
    millis: f64,
}

struct Smoke {
    client: Client,
    target: String,
    base: String,
    token: String,
    steps: Vec<Step>,
}

impl Smoke {
    /// Repeats a GET until `check` passes, for up to ten seconds; records one step.
    async fn eventually(
        &mut self,
        name: &str,
        path: &str,
        check: impl Fn(&Value) -> Result<(), String>,
    ) -> Value {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let v = self
                .step(name, Method::GET, path, None, StatusCode::OK, |v| check(v))
                .await;
            if self.steps.last().is_some_and(|s| s.ok) || Instant::now() >= deadline {
                return v;
            }
            self.steps.pop();
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// Sends one request and records whether the answer had the expected status and passed `check`.
    /// A `path` that is a whole URL goes there instead of to the SCIM base.
    async fn step(
        &mut self,
        name: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        expect: StatusCode,
        check: impl FnOnce(&Value) -> Result<(), String>,
    ) -> Value {
        let started = Instant::now();
        let mut req = self
            .client
            .request(
                method,
                if path.starts_with("http") {
                    path.to_owned()
                } else {
                    format!("{}{path}", self.base)
                },
            )
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let outcome = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if status != expect {
                    Err((format!("expected {expect}, got {status}: {text}"), value))
                } else {
                    check(&value).map(|_| value.clone()).map_err(|e| (e, value))
                }
            }
            Err(e) => Err((format!("request failed: {e}"), Value::Null)),
        };
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        let (ok, detail, value) = match outcome {
            Ok(v) => (true, String::new(), v),
            Err((why, v)) => (false, why, v),
        };
        self.steps.push(Step {
            target: self.target.clone(),
            name: name.to_owned(),
            ok,
            detail,
            millis,
        });
        value
    }
}

/// The scimlab SCIM servers take pushes from Okta and Entra alike, so `ci` holds them to both
/// profiles, with the default large group.
fn ci_conformance() -> Options {
    Options {
        profiles: vec![Profile::Okta, Profile::Entra],
        large_group: conformance::DEFAULT_LARGE_GROUP,
        ..Options::default()
    }
}

pub async fn run(args: CiArgs) -> anyhow::Result<ExitCode> {
    let load_options = load_options(args.load_rate)?;
    let started = Utc::now();
    let stamp = started.format("%Y%m%dT%H%M%SZ").to_string();
    let report_dir = args
        .report
        .unwrap_or_else(|| crate::default_report_dir("ci"));
    let data_dir = std::env::temp_dir().join(format!("scimlab-ci-{}-{stamp}", std::process::id()));
    let token = serve::generate_token();
    let engine = serve::start(
        0,
        &data_dir.join("scim"),
        token.clone(),
        scim::Durability::Flush,
        None,
        None,
        None,
    )
    .await?;
    let targets = Targets::start(Some(data_dir.clone()), &token, true).await?;

    let client = scim::tls::ClientTls::default().client()?;
    let mut steps = Vec::new();
    let mut suites = Vec::new();
    let mut scim_urls = vec![("engine".to_owned(), engine.url.clone(), None)];
    for (t, urls) in &targets.mocks {
        scim_urls.push((format!("{t}-scim"), urls.scim_url.clone(), Some((*t, urls))));
    }
    for (target, url, mock) in scim_urls {
        let mut smoke = Smoke {
            client: client.clone(),
            target: target.clone(),
            base: url.clone(),
            token: token.clone(),
            steps: Vec::new(),
        };
        drive(&mut smoke).await;
        if let Some((t, urls)) = mock {
            drive_native(&mut smoke, t, &urls.native_url).await;
        }
        steps.append(&mut smoke.steps);
        let auth = Auth::Bearer(token.clone());
        suites.push((
            target,
            conformance::run(Target::new(&url, auth)?, ci_conformance()).await,
        ));
    }
    let mut smoke = Smoke {
        client: client.clone(),
        target: "idp".into(),
        base: targets.idp.url.clone(),
        token: token.clone(),
        steps: Vec::new(),
    };
    drive_idp(&mut smoke, &targets).await;
    steps.append(&mut smoke.steps);
    targets.stop().await;
    engine.stop().await;
    std::fs::remove_dir_all(&data_dir)
        .with_context(|| format!("cannot remove {}", data_dir.display()))?;
    let scenario_runs = run_scenarios().await?;
    let load_report = load::run(&load_options).await?;

    let failed = steps.iter().filter(|s| !s.ok).count();
    let verdict = if failed == 0
        && !suites
            .iter()
            .any(|(_, suite)| suite.fails(false) || suite.incomplete())
        && scenario_runs.iter().all(|r| r.passed)
        && load_report.passed()
    {
        "pass"
    } else {
        "fail"
    };
    let finished = Utc::now();
    let report = json!({
        "tool": "scimlab",
        "version": env!("CARGO_PKG_VERSION"),
        "command": "ci",
        "started": started.to_rfc3339_opts(SecondsFormat::Millis, true),
        "finished": finished.to_rfc3339_opts(SecondsFormat::Millis, true),
        "verdict": verdict,
        "summary": {
            "smoke": {"passed": steps.len() - failed, "failed": failed},
            "conformance": suites.iter().map(|(target, suite)| (target.to_string(), conformance_report::to_json(suite, false)["summary"].clone())).collect::<serde_json::Map<_, _>>(),
            "scenarios": scenario::to_json(&scenario_runs)["summary"].clone(),
            "load": {"verdict": load_report.verdict, "summary": load_report.summary},
            "durability": "flush before acknowledge",
        },
        "steps": steps.iter().map(|s| json!({"target": s.target, "name": s.name, "ok": s.ok, "detail": s.detail, "ms": (s.millis * 1000.0).round() / 1000.0})).collect::<Vec<_>>(),
    });
    std::fs::create_dir_all(&report_dir)
        .with_context(|| format!("cannot create {}", report_dir.display()))?;
    std::fs::write(
        report_dir.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(
        report_dir.join("summary.md"),
        summary_markdown(&steps, verdict),
    )?;
    scenario::write(&scenario_runs, &report_dir.join("scenarios"))?;
    load::write(&load_report, &report_dir.join("load"))?;
    for (target, suite) in &suites {
        conformance_report::write(
            suite,
            &report_dir.join(format!("conformance-{target}")),
            false,
        )?;
    }
    let scenarios_failed = scenario_runs.iter().filter(|r| !r.passed).count();
    let mut parts = vec![Part {
        name: "smoke".into(),
        verdict: if failed == 0 { "pass" } else { "fail" }.into(),
        detail: format!("{} steps passed, {failed} failed", steps.len() - failed),
        link: "summary.md".into(),
    }];
    for (target, suite) in &suites {
        parts.push(Part {
            name: format!("conformance on {target}"),
            verdict: conformance_report::verdict(suite, false).into(),
            detail: format!(
                "{} passed, {} failed, {} blocked",
                suite.count(None, |o| *o == Outcome::Passed),
                suite.count(None, |o| matches!(o, Outcome::Failed(_))),
                suite.count(None, |o| matches!(o, Outcome::Blocked(_)))
            ),
            link: format!("conformance-{target}/report.html"),
        });
    }
    parts.push(Part {
        name: "scenarios".into(),
        verdict: if scenarios_failed == 0 {
            "pass"
        } else {
            "fail"
        }
        .into(),
        detail: format!(
            "{} passed, {scenarios_failed} failed",
            scenario_runs.len() - scenarios_failed
        ),
        link: "scenarios/summary.md".into(),
    });
    parts.push(Part {
        name: "load".into(),
        verdict: load_report.verdict.clone(),
        detail: format!(
            "{} events sent, {} applied, {} lost",
            load_report.recorded.events.sent,
            load_report.recorded.events.applied,
            load_report.recorded.events.lost
        ),
        link: "load/index.html".into(),
    });
    std::fs::write(report_dir.join("index.html"), index_html(verdict, &parts))?;

    for s in &steps {
        println!(
            "{} {:<10} {:<42} {:>8.2} ms {}",
            if s.ok { "ok  " } else { "FAIL" },
            s.target,
            s.name,
            s.millis,
            s.detail
        );
    }
    for (target, suite) in &suites {
        println!("conformance on {target}:");
        print!("{}", conformance_report::to_terminal(suite, false));
    }
    print!("{}", scenario::to_terminal(&scenario_runs));
    let events = &load_report.recorded.events;
    let latency = load_report.recorded.overall.summary();
    println!(
        "load {}: {} events sent, {} applied, {} pending, {} lost; p50 {} ms, p99 {} ms, max {} ms; oracle: {} of {} people differ",
        load_report.verdict,
        events.sent,
        events.applied,
        events.pending,
        events.lost,
        latency.p50,
        latency.p99,
        latency.max,
        load_report.recorded.oracle_mismatches,
        load_report.recorded.oracle_checked
    );
    for failure in load_report.recorded.failures(None) {
        println!("load FAIL: {failure}");
    }
    let conformance: Vec<String> = suites
        .iter()
        .map(|(target, suite)| {
            let passed = suite
                .results
                .iter()
                .filter(|r| r.outcome == Outcome::Passed)
                .count();
            format!("{target} {passed} of {}", suite.results.len())
        })
        .collect();
    println!(
        "scimlab ci: {verdict}: smoke {} passed, {failed} failed; conformance passed on {}; report in {}",
        steps.len() - failed,
        conformance.join(", "),
        report_dir.display()
    );
    Ok(if verdict == "pass" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One part of the run on `index.html`: its verdict, a line of figures, its own report.
struct Part {
    name: String,
    verdict: String,
    detail: String,
    link: String,
}

/// `index.html`: every part of the run with its verdict and a link to its report; offline, and
/// its script marks the rows it laid out for the browser check.
fn index_html(verdict: &str, parts: &[Part]) -> String {
    use harness::escape_html as escape;
    let rows: String = parts
        .iter()
        .map(|p| {
            format!(
                r#"<tr class="part {v}"><td><a href="{link}">{name}</a></td><td>{v}</td><td>{detail}</td></tr>"#,
                link = escape(&p.link),
                name = escape(&p.name),
                v = escape(&p.verdict),
                detail = escape(&p.detail),
            )
        })
        .collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>scimlab ci: {verdict}</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}}
th{{background:#f5f5f5}}tr.fail td:nth-child(2),tr.incomplete td:nth-child(2){{color:#b00;font-weight:bold}}tr.pass td:nth-child(2){{color:#070}}</style></head>
<body data-verdict="{verdict}" data-expected="{expected}"><h1>scimlab ci: {verdict}</h1>
<table><tr><th>part</th><th>verdict</th><th>figures</th></tr>{rows}</table>
<p>The whole run as data: <a href="report.json">report.json</a>.</p>
<script>
(function () {{
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.part"));
  var laidOut = rows.filter(function (r) {{ return r.getBoundingClientRect().height > 0; }}).length;
  document.body.setAttribute("data-rendered", laidOut + "/" + rows.length);
}})();
</script></body></html>
"#,
        expected = parts.len(),
    )
}

fn summary_markdown(steps: &[Step], verdict: &str) -> String {
    let mut md =
        format!("# scimlab ci: {verdict}\n\n| target | step | result | ms | detail |\n|---|---|---|---|---|\n");
    for s in steps {
        md.push_str(&format!(
            "| {} | {} | {} | {:.2} | {} |\n",
            s.target,
            s.name,
            if s.ok { "ok" } else { "FAIL" },
            s.millis,
            s.detail.replace('|', "\\|")
        ));
    }
    md.push_str("\nThe load run's summary is in `load/summary.md`.\n");
    md
}

/// Joiner, mover and leaver through the provider, checking what a client would rely on.
async fn drive(s: &mut Smoke) {
    const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    s.step(
        "discovery: ServiceProviderConfig",
        Method::GET,
        "/ServiceProviderConfig",
        None,
        StatusCode::OK,
        |v| field_is(v, "/patch/supported", json!(true)),
    )
    .await;
    s.step(
        "joiner: look-up before create finds nobody",
        Method::GET,
        "/Users?filter=userName%20eq%20%22ci.alice%22",
        None,
        StatusCode::OK,
        |v| field_is(v, "/totalResults", json!(0)),
    )
    .await;
    let user = s
        .step("joiner: create user", Method::POST, "/Users", Some(json!({"schemas": [USER], "userName": "ci.alice", "active": true, "emails": [{"value": "alice@ci.example", "type": "work", "primary": true}]})), StatusCode::CREATED, |v| field_is(v, "/userName", json!("ci.alice")))
        .await;
    let id = user["id"].as_str().unwrap_or("missing").to_owned();
    let group = s
        .step("joiner: create group with the user", Method::POST, "/Groups", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "ci-engineering", "members": [{"value": id}]})), StatusCode::CREATED, |v| field_is(v, "/members/0/value", json!(id)))
        .await;
    let gid = group["id"].as_str().unwrap_or("missing").to_owned();
    s.step(
        "joiner: user lists the group",
        Method::GET,
        &format!("/Users/{id}"),
        None,
        StatusCode::OK,
        |v| field_is(v, "/groups/0/value", json!(gid)),
    )
    .await;
    s.step("mover: replace the title (PATCH)", Method::PATCH, &format!("/Users/{id}"), Some(json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "Staff Engineer"}]})), StatusCode::OK, |v| field_is(v, "/title", json!("Staff Engineer"))).await;
    s.step("mover: leave the group", Method::PATCH, &format!("/Groups/{gid}"), Some(json!({"schemas": [PATCH], "Operations": [{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]})), StatusCode::NO_CONTENT, |_| Ok(())).await;
    s.step(
        "mover: the group is empty",
        Method::GET,
        &format!("/Groups/{gid}"),
        None,
        StatusCode::OK,
        |v| {
            if v.get("members").is_none() {
                Ok(())
            } else {
                Err(format!("members left: {}", v["members"]))
            }
        },
    )
    .await;
    s.step("leaver: deactivate (Okta form)", Method::PATCH, &format!("/Users/{id}"), Some(json!({"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": false}}]})), StatusCode::OK, |v| field_is(v, "/active", json!(false))).await;
    s.step(
        "leaver: still readable while inactive",
        Method::GET,
        "/Users?filter=active%20eq%20false",
        None,
        StatusCode::OK,
        |v| field_is(v, "/totalResults", json!(1)),
    )
    .await;
    s.step(
        "leaver: delete",
        Method::DELETE,
        &format!("/Users/{id}"),
        None,
        StatusCode::NO_CONTENT,
        |_| Ok(()),
    )
    .await;
    s.step(
        "leaver: gone",
        Method::GET,
        &format!("/Users/{id}"),
        None,
        StatusCode::NOT_FOUND,
        |v| field_is(v, "/status", json!("404")),
    )
    .await;
}

/// Through the Space connector: a joiner in a policy group gets the policy's project roles in
/// Space, a leaver keeps a readable profile and loses them.
/// A joiner and a leaver through the IdP, provisioned to both connectors by its engine.
async fn drive_idp(s: &mut Smoke, targets: &Targets) {
    const LOGIN: &str = "ci.idp@example.test";
    let hired = s
        .step(
            "idp joiner: hire",
            Method::POST,
            "/api/v1/users?activate=true",
            Some(json!({"profile": {"login": LOGIN, "email": LOGIN, "firstName": "Ida", "lastName": "Pe"}})),
            StatusCode::OK,
            |_| Ok(()),
        )
        .await;
    let id = hired["id"].as_str().unwrap_or("missing").to_owned();
    for app in targets.apps.values() {
        s.step(
            "idp joiner: assign to the connector's app",
            Method::POST,
            &format!("/api/v1/apps/{app}/users"),
            Some(json!({"id": id, "scope": "USER"})),
            StatusCode::OK,
            |_| Ok(()),
        )
        .await;
    }
    let filter = format!("/Users?filter=userName%20eq%20%22{LOGIN}%22");
    let active = |want: bool| {
        move |v: &Value| match v["Resources"][0]["active"].as_bool() {
            Some(a) if a == want => Ok(()),
            other => Err(format!("expected active={want}, got {other:?}")),
        }
    };
    for url in targets.mocks.values().map(|m| &m.scim_url) {
        s.eventually(
            "idp joiner: provisioned to the connector",
            &format!("{url}{filter}"),
            active(true),
        )
        .await;
    }
    s.step(
        "idp leaver: deactivate",
        Method::POST,
        &format!("/api/v1/users/{id}/lifecycle/deactivate"),
        None,
        StatusCode::OK,
        |_| Ok(()),
    )
    .await;
    for url in targets.mocks.values().map(|m| &m.scim_url) {
        s.eventually(
            "idp leaver: deactivated in the connector",
            &format!("{url}{filter}"),
            active(false),
        )
        .await;
    }
    s.eventually(
        "idp leaver: both deliveries in the System Log",
        "/api/v1/logs?filter=eventType%20eq%20%22application.provision.user.deactivate%22",
        |v| {
            let ok = v.as_array().map(|a| {
                a.iter()
                    .filter(|e| e["outcome"]["result"] == "SUCCESS")
                    .count()
            });
            if ok == Some(2) {
                Ok(())
            } else {
                Err(format!("expected 2 successful deactivations, got {ok:?}"))
            }
        },
    )
    .await;
}

/// The smoke steps that read a mock target's own API after a SCIM joiner and leaver: what
/// the connector did to the product ([`harness::mock_target::NativeSmoke`]).
async fn drive_native(s: &mut Smoke, target: TargetName, native_url: &str) {
    const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
    const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    let smoke = target.mock().smoke();
    let permissions = format!("{native_url}/_sim/permissions/username:{}", smoke.user);
    let user = s
        .step(
            &format!("{target} joiner: create user"),
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": smoke.user})),
            StatusCode::CREATED,
            |_| Ok(()),
        )
        .await;
    let id = user["id"].as_str().unwrap_or("missing").to_owned();
    let group = json!({"schemas": [GROUP], "displayName": "Engineering",
        "externalId": "engineering", "members": [{"value": id}]});
    s.step(
        &format!("{target} joiner: join the engineering group"),
        Method::POST,
        "/Groups",
        Some(group),
        StatusCode::CREATED,
        |_| Ok(()),
    )
    .await;
    s.step(
        &format!("{target} joiner: may {}", smoke.joined_may),
        Method::GET,
        &format!("{permissions}{}", smoke.joined_query),
        None,
        StatusCode::OK,
        smoke.joined,
    )
    .await;
    let deactivate = json!({"schemas": [PATCH],
        "Operations": [{"op": "replace", "path": "active", "value": false}]});
    s.step(
        &format!("{target} leaver: deactivate"),
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(deactivate),
        StatusCode::OK,
        |v| field_is(v, "/active", json!(false)),
    )
    .await;
    s.step(
        &format!("{target} leaver: readable, no rights left"),
        Method::GET,
        &permissions,
        None,
        StatusCode::OK,
        smoke.left,
    )
    .await;
}

/// Every `scenarios/*.yaml`, each in its dialects, on servers of its own (a scenario `for:
/// scim` on scimlab's own SCIM engine).
async fn run_scenarios() -> anyhow::Result<Vec<scenario::ScenarioRun>> {
    let dir = Path::new("scenarios");
    let files = scenario::files_in(dir)
        .context("cannot list scenarios/ (scimlab ci runs from the repository root)")?;
    let loaded = scenario::load_all(&files)?;
    let engine = scenario::scim_run::ScimTargets::default();
    Ok(scenario::run_all(&loaded, &dir.join("policies"), None, None, &engine).await?)
}
