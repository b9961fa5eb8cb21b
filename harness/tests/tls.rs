//! `scimlab conformance` over HTTPS: each certificate problem is one line naming it and exit 2,
//! within 5 s; a client certificate reaches a server that asks for one; `--insecure` runs and
//! is said in every report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use scim::tls::{Authority, Issued, ServerTls};

/// A SCIM provider served over `tls` on 127.0.0.1:0, token `t`; its base URL.
async fn scim_over(tls: Option<ServerTls>) -> (scim::serve::Servers, String) {
    let mut servers = scim::serve::Servers::new(tls);
    let (listener, base) = servers.bind(0).await.unwrap();
    let config = scim::ProviderConfig {
        base_url: base.clone(),
        ..Default::default()
    };
    let state = scim::AppState {
        provider: scim::Provider::temporary(config).unwrap(),
        tokens: vec!["t".into()],
        oauth: None,
    };
    servers.serve(listener, scim::app(state));
    (servers, base)
}

fn server(issued: &Issued, client_ca: Option<&str>) -> ServerTls {
    ServerTls::from_pem(&issued.cert_pem, &issued.key_pem, client_ca).unwrap()
}

/// `common::conformance`, off the runtime's threads.
async fn conformance(base: &str, flags: &[&str], report: &Path) -> (Option<i32>, String, Duration) {
    let (base, report) = (base.to_owned(), report.to_owned());
    let flags: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        common::conformance(&base, &flags, &report)
    })
    .await
    .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_certificate_problem_is_named_and_nothing_is_tested() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::generate().unwrap();
    let ca = write(dir.path(), "ca.pem", &authority.ca_pem);
    let loopback = authority.issue(&["127.0.0.1"]).unwrap();
    let elsewhere = authority.issue(&["scim.example.com"]).unwrap();
    let expired = authority
        .issue_with(&["127.0.0.1"], |p| {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        })
        .unwrap();
    let (s1, untrusted) = scim_over(Some(server(&loopback, None))).await;
    let (s2, wrong_name) = scim_over(Some(server(&elsewhere, None))).await;
    let (s3, outdated) = scim_over(Some(server(&expired, None))).await;
    let (s4, plain) = scim_over(None).await;
    let plain_as_https = plain.replace("http://", "https://");
    let report = dir.path().join("report");
    for (base, flags, says) in [
        (&untrusted, &[][..], "authority this client does not trust"),
        (&wrong_name, &["--ca-cert", &ca][..], "not valid for host"),
        (&outdated, &["--ca-cert", &ca][..], "has expired"),
        (&plain_as_https, &[][..], "did not answer in TLS"),
    ] {
        let (code, text, took) = conformance(base, flags, &report).await;
        assert_eq!(code, Some(2), "{base}: {text}");
        assert!(
            text.contains("could not test") && text.contains(says),
            "{base}: {text}"
        );
        assert!(!text.contains("passed"), "no check verdicts: {text}");
        assert!(took < Duration::from_secs(5), "{base}: {took:?}");
    }
    // Trusting the CA, the first server is tested.
    let (code, text, _) = conformance(&untrusted, &["--ca-cert", &ca], &report).await;
    assert_eq!(code, Some(0), "{text}");
    for s in [s1, s2, s3, s4] {
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_certificate_reaches_a_server_that_wants_one() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::generate().unwrap();
    let ca = write(dir.path(), "ca.pem", &authority.ca_pem);
    let client = authority.issue(&["scimlab-client"]).unwrap();
    let cert = write(dir.path(), "client.pem", &client.cert_pem);
    let key = write(dir.path(), "client-key.pem", &client.key_pem);
    let loopback = authority.issue(&["127.0.0.1"]).unwrap();
    let (servers, base) = scim_over(Some(server(&loopback, Some(&authority.ca_pem)))).await;
    let report = dir.path().join("report");
    let select = ["--select", "P-DISC"];

    let (code, text, _) =
        conformance(&base, &[&["--ca-cert", &ca][..], &select].concat(), &report).await;
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--client-cert"), "{text}");

    let with_identity = [
        &[
            "--ca-cert",
            &ca,
            "--client-cert",
            &cert,
            "--client-cert-key",
            &key,
        ][..],
        &select,
    ]
    .concat();
    let (code, text, _) = conformance(&base, &with_identity, &report).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("conformance pass: "), "{text}");

    // A key without its certificate is refused before anything is called.
    let (code, text, _) = conformance(&base, &["--client-cert-key", &key], &report).await;
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--client-cert"), "{text}");
    servers.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn insecure_runs_and_every_report_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::generate().unwrap();
    let loopback = authority.issue(&["127.0.0.1"]).unwrap();
    let (servers, base) = scim_over(Some(server(&loopback, None))).await;
    let report = dir.path().join("report");
    let (code, text, _) = conformance(&base, &["--insecure", "--select", "P-DISC"], &report).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("NOT checked"), "terminal: {text}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    assert!(json["notices"][0].as_str().unwrap().contains("NOT checked"));
    for file in ["summary.md", "junit.xml"] {
        let body = std::fs::read_to_string(report.join(file)).unwrap();
        assert!(body.contains("NOT checked"), "{file}");
    }
    servers.stop().await;
}

/// A proxy that refuses everything and remembers each request line it got.
fn refusing_proxy() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut first = String::new();
            let _ = BufReader::new(stream.try_clone().unwrap()).read_line(&mut first);
            log.lock().unwrap().push(first.trim().to_owned());
            let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn https_proxy_and_no_proxy_are_honoured() {
    let (proxy, seen) = refusing_proxy();
    let dir = tempfile::tempdir().unwrap();
    let run = |no_proxy: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_scimlab"));
        cmd.args([
            "conformance",
            "https://scim.example.invalid/v2",
            "--token",
            "t",
            "--report",
        ])
        .arg(dir.path())
        .env("HTTPS_PROXY", &proxy)
        .env("NO_PROXY", no_proxy);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let out = run("").await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("CONNECT scim.example.invalid:443")),
        "{:?}",
        seen.lock().unwrap()
    );
    seen.lock().unwrap().clear();
    let out = run("scim.example.invalid").await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        seen.lock().unwrap().is_empty(),
        "NO_PROXY bypasses the proxy"
    );
}
