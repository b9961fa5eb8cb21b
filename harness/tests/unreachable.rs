//! `scimlab conformance` against servers that cannot be tested: each gets one clear line and
//! exit 2 ("could not test"), never check verdicts about a server that was never reached; and
//! a server that sends a huge body cannot make the client hold it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

use std::time::Duration;

use harness::conformance::{Auth, Target};

/// A server on 127.0.0.1:0 that answers every request with `answer(request line, stream)`,
/// each connection on a thread of its own.
fn serve(answer: fn(&str, &mut TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                reader.read_line(&mut first).unwrap_or_default();
                // Skip the headers.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                answer(&first, &mut stream);
            });
        }
    });
    base
}

/// `common::conformance` with a report folder of its own.
fn conformance(base: &str, extra: &[&str]) -> (Option<i32>, String, Duration) {
    let report = tempfile::tempdir().unwrap();
    common::conformance(base, extra, report.path())
}

fn json(stream: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn a_closed_port_is_not_tested() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, text, took) = conformance(&format!("http://127.0.0.1:{port}"), &[]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("connection refused"), "{text}");
    assert!(!text.contains("passed"), "no verdict about checks: {text}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_login_page_a_redirect_and_refused_credentials_are_not_tested() {
    let html = serve(|_, s| {
        let body = "<html><body>Sign in</body></html>";
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    let redirect = serve(|_, s| {
        let _ = write!(
            s,
            "HTTP/1.1 302 Found\r\nLocation: https://sso.example.test/login\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    });
    let refusing = serve(|first, s| {
        if first.contains("/ServiceProviderConfig") {
            json(
                s,
                "200 OK",
                r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]}"#,
            );
        } else {
            json(
                s,
                "401 Unauthorized",
                r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401","detail":"bad token"}"#,
            );
        }
    });
    for (base, says) in [
        (html, "answered HTML"),
        (redirect, "redirects to https://sso.example.test/login"),
        (refusing, "credentials were refused"),
    ] {
        let (code, text, _) = conformance(&base, &[]);
        assert_eq!(code, Some(2), "{text}");
        assert!(text.contains(says), "{says}: {text}");
    }
}

#[test]
fn a_server_that_trickles_is_not_tested_past_the_time_limit() {
    let slow = serve(|_, s| {
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\nContent-Length: 1000\r\n\r\n"
        );
        for _ in 0..1000 {
            if s.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let (code, text, took) = conformance(&slow, &["--time-limit", "5"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("could not test"), "{text}");
    assert!(
        text.contains("did not finish within --time-limit 5 s"),
        "{text}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
}

/// A 200 MB answer: the client stops at its cap, and the process never holds it.
#[tokio::test]
async fn a_huge_body_is_cut_at_the_cap_in_bounded_memory() {
    let huge = serve(|_, s| {
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n",
            200 << 20
        );
        let chunk = vec![b' '; 64 << 10];
        for _ in 0..3200 {
            if s.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let before = common::peak_memory_kb();
    let target = Target::new(&huge, Auth::Bearer("t".into())).unwrap();
    let err = target.get("/ServiceProviderConfig").await.unwrap_err();
    assert!(err.contains("larger than 8388608 bytes"), "{err}");
    let grown = common::peak_memory_kb().saturating_sub(before);
    assert!(grown < 100 << 10, "peak memory grew by {grown} kB");
}

/// `--header`: sent with every request, masked in the wire log the reports show.
#[tokio::test]
async fn extra_headers_are_sent_and_masked() {
    let app = axum::Router::new().route(
        "/ServiceProviderConfig",
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            let key = headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_owned();
            axum::Json(serde_json::json!({"seen": key}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let target = Target::new(&base, Auth::None)
        .unwrap()
        .with_headers(vec![("X-Api-Key".into(), "k-secret".into())]);
    let e = target.get("/ServiceProviderConfig").await.unwrap();
    assert_eq!(e.json().unwrap()["seen"], "k-secret");
    let logged = serde_json::to_string(&e).unwrap();
    assert!(
        !logged.contains("k-secret\""),
        "the key leaked into the log: {logged}"
    );
    assert!(logged.contains("****"), "{logged}");
}
