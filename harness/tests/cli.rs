//! The `scimlab` binary as a user runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// `scimlab`, run from the repository root as the README does.
fn scimlab() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scimlab"));
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    cmd
}

#[test]
fn ci_writes_the_report_contract_and_passes() {
    let dir = tempfile::tempdir().unwrap();
    let out = scimlab()
        // The test runs the debug binary, about ten times slower than release.
        .args(["ci", "--load-rate", "10", "--report"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    for key in [
        "tool", "version", "command", "started", "finished", "verdict", "summary",
    ] {
        assert!(report.get(key).is_some(), "report.json lacks {key}");
    }
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["summary"]["smoke"]["failed"], 0);
    for target in ["engine", "space-scim", "teamcity-scim"] {
        let checks = &report["summary"]["conformance"][target]["checks"];
        assert_eq!(checks["failed"]["total"], 0, "{target}");
        assert!(checks["passed"]["MUST"].as_u64().unwrap() > 40, "{target}");
        assert!(dir
            .path()
            .join(format!("conformance-{target}/junit.xml"))
            .exists());
    }
    let space_steps = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["target"] != "engine" && s["ok"] == true)
        .count();
    assert!(
        space_steps >= 30,
        "smoke through the connectors: {space_steps}"
    );
    assert!(report["summary"]["smoke"]["passed"].as_u64().unwrap() >= 25);
    let index = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    let links: Vec<&str> = index
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert_eq!(
        links.len(),
        7,
        "smoke, 3 conformance, scenarios, load, report.json: {links:?}"
    );
    for link in links {
        assert!(dir.path().join(link).exists(), "index.html links {link}");
    }
    assert_eq!(
        index.matches(r#"<tr class="part pass">"#).count(),
        6,
        "{index}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let load = &report["summary"]["load"];
    assert_eq!(load["verdict"], "pass", "{stdout}");
    let events = &load["summary"]["events"];
    assert!(events["sent"].as_u64().unwrap() >= 200, "{events}");
    assert_eq!(events["sent"], events["applied"], "{events}");
    assert_eq!(
        (events["lost"].as_u64(), events["pending"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(load["summary"]["oracle"]["mismatches"], 0);
    let phases = load["summary"]["phases"].as_array().unwrap();
    assert_eq!(
        phases.len(),
        5,
        "the fault-free start and four fault phases"
    );
    for file in [
        "report.json",
        "junit.xml",
        "summary.md",
        "index.html",
        "throughput.svg",
    ] {
        assert!(dir.path().join("load").join(file).exists(), "load/{file}");
    }
    assert!(stdout.contains("load pass: "), "{stdout}");
    let scenarios = &report["summary"]["scenarios"];
    assert_eq!(scenarios["failed"], 0, "{stdout}");
    assert!(scenarios["runs"].as_u64().unwrap() >= 22, "{scenarios}");
    assert!(dir.path().join("scenarios/report.json").exists());
    let idp_steps = report["steps"].as_array().map(|steps| {
        steps
            .iter()
            .filter(|s| s["target"] == "idp" && s["ok"] == true)
            .count()
    });
    assert_eq!(
        idp_steps,
        Some(9),
        "joiner and leaver through the IdP to both connectors"
    );
}

#[test]
fn load_and_up_refuse_bad_flags_before_starting_anything() {
    // Servers that are not there: what is refused must be refused before any is called.
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets.toml");
    let end = |name: &str| format!("[{name}]\nurl = \"http://127.0.0.1:9\"\ntoken = \"t\"\n");
    let file = format!(
        "dialect = \"okta\"\n{}{}{}",
        end("idp"),
        end("space"),
        end("teamcity")
    );
    std::fs::write(&targets, file).unwrap();
    let targets = targets.to_str().unwrap();
    for (args, says) in [
        (&["load", "--rate", "0"][..], "--rate"),
        (&["load", "--faults", "5xx=200%"][..], "not within 0..100%"),
        (
            &["load", "--phase", "99s:5xx=1%", "--duration", "10"][..],
            "starts after the run ends",
        ),
        (&["load", "--shard", "2/2"][..], "0 <= i < n"),
        (&["load", "--tag", "a b"][..], "--tag"),
        (
            &["load", "--targets", targets, "--faults", "kill=space:1s"][..],
            "not scimlab's to stop",
        ),
        (
            &["load", "--targets", targets, "--quirk", "space:x"][..],
            "refused with --targets",
        ),
        (
            &["load", "--targets", targets, "--poll-ms", "50"][..],
            "give [space] a `scim` URL",
        ),
        (&["load", "--targets", "nope.toml"][..], "nope.toml"),
        (
            &["up", "--data", "nope-data", "--policies", "nope-policies"][..],
            "nope-policies/space-idp.toml",
        ),
        (
            &["report", "merge", "nope-a.json", "nope-b.json"][..],
            "nope-a.json",
        ),
    ] {
        let out = scimlab().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn scenario_runs_a_file_and_names_the_line_of_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = scimlab()
        .args([
            "scenario",
            "scenarios/leaver.yaml",
            "--dialect",
            "entra",
            "--report",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("pass leaver with live tokens [entra]"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["summary"]["runs"], 1);
    for file in ["junit.xml", "summary.md"] {
        assert!(dir.path().join(file).exists(), "{file}");
    }

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: bad\nsteps:\n  - hire: {user: a}\n  - terminate: {user: b}\n",
    )
    .unwrap();
    let out = scimlab().arg("scenario").arg(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.yaml:4: step 2 (terminate): user \"b\" is not hired"),
        "{stderr}"
    );
}

/// A running `scimlab up`, killed (SIGKILL) when dropped, so a failing test leaves no server behind.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `scimlab up` on a data folder, checks its start-up lines, returns it and its
/// endpoints by name.
fn start_up(data: &std::path::Path) -> (Running, std::collections::BTreeMap<String, String>) {
    let (child, endpoints, extras) = start_up_with(data, &[]);
    assert!(extras.is_empty(), "{extras:?}");
    (child, endpoints)
}

/// As `start_up`, with more flags; also the lines `up` prints besides endpoints (`ca PATH`,
/// `oauth URL client_id=...`), by their first word.
fn start_up_with(
    data: &std::path::Path,
    flags: &[&str],
) -> (
    Running,
    std::collections::BTreeMap<String, String>,
    std::collections::BTreeMap<String, String>,
) {
    let mut child = scimlab()
        .args(["up", "--port", "0", "--token", "tok", "--data"])
        .arg(data)
        .args(flags)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Running(child);
    let scheme = if flags.contains(&"--tls") {
        "https"
    } else {
        "http"
    };
    let mut endpoints = std::collections::BTreeMap::new();
    let mut extras = std::collections::BTreeMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line == "ready" {
            break;
        }
        if let Some((word @ ("ca" | "oauth"), rest)) = line.split_once(' ') {
            extras.insert(word.to_owned(), rest.to_owned());
            continue;
        }
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts.len(), 3, "{line}");
        assert_eq!(parts[2], "token=tok", "{line}");
        assert!(
            parts[1].starts_with(&format!("{scheme}://127.0.0.1:")),
            "{line}"
        );
        endpoints.insert(parts[0].to_owned(), parts[1].to_owned());
    }
    let names: Vec<&str> = endpoints.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "idp",
            "scim",
            "space",
            "space-scim",
            "teamcity",
            "teamcity-scim"
        ]
    );
    (child, endpoints, extras)
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (child, endpoints) = start_up(dir.path());
    let client = scim::tls::ClientTls::default().client().unwrap();
    let create = |base: String, count: usize| {
        let client = client.clone();
        async move {
            let mut ids = Vec::new();
            for i in 0..count {
                let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("crash-{i}")});
                let resp = client
                    .post(format!("{base}/Users"))
                    .bearer_auth("tok")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 201);
                let v: serde_json::Value = resp.json().await.unwrap();
                ids.push(v["id"].as_str().unwrap().to_owned());
            }
            ids
        }
    };
    let created = rt.block_on(create(endpoints["scim"].clone(), 200));
    let through_space = rt.block_on(create(endpoints["space-scim"].clone(), 50));
    // SIGKILL: no shutdown hook runs, so only what was flushed before each 201 can be there.
    drop(child);
    let (child, endpoints) = start_up(dir.path());
    let url = &endpoints["scim"];
    let (space_found, profiles_found) = rt.block_on(async {
        let (mut scim, mut native) = (0, 0);
        for (i, id) in through_space.iter().enumerate() {
            let resp = client
                .get(format!("{}/Users/{id}", endpoints["space-scim"]))
                .bearer_auth("tok")
                .send()
                .await
                .unwrap();
            scim += usize::from(resp.status() == 200);
            let resp = client
                .get(format!(
                    "{}/api/http/team-directory/profiles/username:crash-{i}",
                    endpoints["space"]
                ))
                .bearer_auth("tok")
                .send()
                .await
                .unwrap();
            native += usize::from(resp.status() == 200);
        }
        (scim, native)
    });
    assert_eq!(
        (space_found, profiles_found),
        (50, 50),
        "the connector's users and their Space profiles survive kill -9"
    );
    let (found, duplicate_status) = rt.block_on(async {
        let mut found = 0;
        for id in &created {
            let resp = client.get(format!("{url}/Users/{id}")).bearer_auth("tok").send().await.unwrap();
            found += usize::from(resp.status() == 200);
        }
        let dup = client
            .post(format!("{url}/Users"))
            .bearer_auth("tok")
            .json(&serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "CRASH-7"}))
            .send()
            .await
            .unwrap();
        (found, dup.status().as_u16())
    });
    drop(child);
    assert_eq!(
        found,
        created.len(),
        "every acknowledged create is there after kill -9"
    );
    assert_eq!(
        duplicate_status, 409,
        "the index rebuilt at open still enforces uniqueness"
    );
}

#[test]
fn up_prints_its_endpoint_then_ready_and_serves_scim() {
    let dir = tempfile::tempdir().unwrap();
    let (child, endpoints) = start_up(dir.path());
    let url = &endpoints["scim"];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        scim::tls::ClientTls::default()
            .client()
            .unwrap()
            .get(format!("{url}/Users"))
            .bearer_auth("tok")
            .send()
            .await
            .map(|r| r.status())
    });
    drop(child);
    assert_eq!(status.unwrap(), 200);
    assert!(
        dir.path().join("scim").exists(),
        "data lives under DATA/scim"
    );
}

/// Under GitHub Actions a conformance run annotates each MUST failure and appends its summary
/// to `$GITHUB_STEP_SUMMARY`; elsewhere it prints no workflow command.
#[test]
fn conformance_annotates_must_failures_under_github_actions() {
    let dir = tempfile::tempdir().unwrap();
    let (child, endpoints) = start_up(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let quirk = rt.block_on(async {
        scim::tls::ClientTls::default()
            .client()
            .unwrap()
            .put(format!("{}/_sim/quirks", endpoints["space"]))
            .bearer_auth("tok")
            .json(&["scim-no-www-authenticate"])
            .send()
            .await
            .map(|r| r.status())
    });
    assert_eq!(quirk.unwrap(), 200);
    let summary = dir.path().join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let run = |github: &str| {
        scimlab()
            .args(["conformance", &endpoints["space-scim"], "--token", "tok"])
            .args(["--select", "P-AUTH", "--report"])
            .arg(dir.path().join(format!("report-{github}")))
            .env("GITHUB_ACTIONS", github)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .output()
            .unwrap()
    };
    let annotated = run("true");
    let stdout = String::from_utf8_lossy(&annotated.stdout);
    assert_eq!(annotated.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("::error title=P-AUTH-02 (MUST) 401 carries WWW-Authenticate::the 401 has no WWW-Authenticate header"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("::error").count(), 1, "{stdout}");
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(
        written.starts_with("earlier step\n"),
        "appended, not replaced"
    );
    assert!(written.contains("P-AUTH-02"), "{written}");
    let plain = run("false");
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("::error"));
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), written);
    drop(child);
}

/// `up --tls`: every server over HTTPS under a CA in DATA/tls, and what runs against it with
/// `--ca-cert`: conformance on the three SCIM endpoints, a scenario and a short load through
/// the IdP's pushes (which cross HTTPS too).
#[test]
fn up_tls_serves_every_server_over_https_to_a_client_that_trusts_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (child, endpoints, extras) =
        start_up_with(dir.path(), &["--tls", "--policies", "scenarios/policies"]);
    let ca = extras["ca"].clone();
    assert_eq!(
        std::path::Path::new(&ca),
        dir.path().join("tls/ca.pem"),
        "the CA lives in the data folder"
    );
    for name in ["scim", "space-scim", "teamcity-scim"] {
        let report = dir.path().join(format!("report-{name}"));
        let stdout = succeeds(
            scimlab()
                .args(["conformance", &endpoints[name], "--token", "tok"])
                .args(["--ca-cert", &ca, "--report"])
                .arg(&report),
        );
        assert!(stdout.contains("conformance pass: "), "{name}: {stdout}");
    }
    // Without the CA, nothing is tested: the certificate problem is named.
    let out = scimlab()
        .args(["conformance", &endpoints["scim"], "--token", "tok"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not trust"), "{stderr}");

    let targets = targets_file(dir.path(), &endpoints);
    scenario_passes_on(&targets, dir.path());
    let stdout = succeeds(
        scimlab()
            .args(["load", "--rate", "5", "--duration", "3", "--users", "20"])
            .args(["--quiet", "--targets"])
            .arg(&targets)
            .arg("--report")
            .arg(dir.path().join("load")),
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("load/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["verdict"], "pass", "{stdout}");
    assert_eq!(report["summary"]["events"]["lost"], 0, "{stdout}");
    drop(child);
}

/// Runs `cmd`, which must succeed; its stdout.
fn succeeds(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The first-day joiner scenario passes on the servers `targets` names.
fn scenario_passes_on(targets: &std::path::Path, dir: &std::path::Path) {
    succeeds(
        scimlab()
            .args(["scenario", "scenarios/first-day-joiner.yaml", "--targets"])
            .arg(targets)
            .arg("--report")
            .arg(dir.join("scenario")),
    );
}

/// Writes a `--targets` file for the IdP and both targets `up` printed, trusting `up`'s CA.
fn targets_file(
    dir: &std::path::Path,
    endpoints: &std::collections::BTreeMap<String, String>,
) -> std::path::PathBuf {
    let targets = dir.join("targets.toml");
    let end = |name: &str| format!("[{name}]\nurl = \"{}\"\ntoken = \"tok\"\n", endpoints[name]);
    // The targets with their SCIM connectors, which `load --poll-ms` reads.
    let target = |name: &str| {
        format!(
            "{}scim = \"{}\"\n",
            end(name),
            endpoints[&format!("{name}-scim")]
        )
    };
    std::fs::write(
        &targets,
        format!(
            "dialect = \"okta\"\nca_cert = \"tls/ca.pem\"\n{}{}{}",
            end("idp"),
            target("space"),
            target("teamcity")
        ),
    )
    .unwrap();
    targets
}

/// `up --tls --oauth`: every SCIM endpoint takes only the IdP's access tokens. Conformance
/// with the printed client passes on all three (secret by Basic and by form, and
/// private_key_jwt); the static token is refused; a scenario passes with the IdP pushing
/// under OAuth.
#[test]
fn up_oauth_takes_only_the_idps_access_tokens_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (child, endpoints, extras) = start_up_with(
        dir.path(),
        &["--tls", "--oauth", "--policies", "scenarios/policies"],
    );
    let ca = extras["ca"].clone();
    let oauth: Vec<&str> = extras["oauth"].split(' ').collect();
    let value = |key: &str| {
        oauth
            .iter()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_owned()
    };
    let token_url = oauth[0];
    let (id, secret, key) = (
        value("client_id"),
        value("client_secret"),
        value("client_key"),
    );
    let client = |auth: &[&str]| {
        let mut flags = vec![
            "--ca-cert",
            &ca,
            "--oauth-token-url",
            token_url,
            "--client-id",
            &id,
        ];
        flags.extend_from_slice(auth);
        flags.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    for (name, auth) in [
        ("scim", client(&["--client-secret", &secret])),
        (
            "space-scim",
            client(&["--client-secret", &secret, "--client-auth", "post"]),
        ),
        ("teamcity-scim", client(&["--client-key", &key])),
    ] {
        let stdout = succeeds(
            scimlab()
                .args(["conformance", &endpoints[name]])
                .args(&auth)
                .arg("--report")
                .arg(dir.path().join(format!("report-{name}"))),
        );
        assert!(!stdout.contains(&secret), "the secret is never printed");
        let summary =
            std::fs::read_to_string(dir.path().join(format!("report-{name}/summary.md"))).unwrap();
        assert!(
            !summary.contains(&secret) && !summary.contains("eyJ"),
            "no secret nor token in the report"
        );
    }
    for name in ["scim", "space-scim", "teamcity-scim"] {
        let out = scimlab()
            .args([
                "conformance",
                &endpoints[name],
                "--token",
                "tok",
                "--ca-cert",
                &ca,
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains("credentials were refused"),
            "{name}: {stderr}"
        );
    }
    let wrong = scimlab()
        .args(["conformance", &endpoints["scim"]])
        .args(client(&["--client-secret", "wrong"]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("could not get an access token") && stderr.contains("invalid_client"),
        "{stderr}"
    );

    let targets = targets_file(dir.path(), &endpoints);
    scenario_passes_on(&targets, dir.path());
    // A load that reads the SCIM connectors (--poll-ms) does so with the OAuth client.
    let load = dir.path().join("load");
    succeeds(
        scimlab()
            .args(["load", "--rate", "5", "--duration", "2", "--users", "10"])
            .args(["--poll-ms", "100", "--quiet", "--targets"])
            .arg(&targets)
            .args(client(&["--client-secret", &secret]).iter().skip(2))
            .arg("--report")
            .arg(&load),
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(load.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["verdict"], "pass", "{report}");
    // Without the client, the refusal is said before the run, not found at its deadline.
    let out = scimlab()
        .args(["load", "--rate", "5", "--duration", "2", "--users", "10"])
        .args(["--poll-ms", "100", "--quiet", "--targets"])
        .arg(&targets)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    drop(child);
}
