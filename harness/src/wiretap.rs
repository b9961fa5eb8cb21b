//! A metering proxy between the embedded IdP and a SCIM endpoint the run did not start. The
//! IdP pushes to the proxy on loopback; the proxy forwards each request unchanged and counts
//! it by operation (`PATCH /Groups/{id}`) and status, times it, notes whether each 429 carried
//! `Retry-After`, and holds the run's caps: `--max-rate` paces requests, `--max-requests`
//! answers 503 once reached (the IdP keeps the change and retries later; the run stops).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::load::report::{Hist, Latency};

/// The most a request or response body may carry through the proxy.
const MAX_BODY: usize = 32 << 20;

/// Limits on what the run sends to the endpoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caps {
    /// Requests per second, at most.
    pub max_rate: Option<f64>,
    /// Requests in all, at most.
    pub max_requests: Option<u64>,
}

#[derive(Debug, Default)]
struct Tally {
    /// (operation, status) -> request latency.
    by: BTreeMap<(String, u16), Hist>,
    /// When the next request may go, under `max_rate`.
    next_slot: Option<Instant>,
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    caps: Caps,
    sent: AtomicU64,
    capped: AtomicBool,
    throttled_with_retry_after: AtomicU64,
    throttled_without: AtomicU64,
    tally: Mutex<Tally>,
}

/// The proxy, running.
#[derive(Debug)]
pub struct Wiretap {
    /// Where the IdP pushes.
    pub url: String,
    shared: Arc<Shared>,
    servers: scim::serve::Servers,
}

/// What the proxy saw, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Traffic {
    /// Requests that reached the endpoint (those refused past `--max-requests` are not).
    pub requests: u64,
    /// Per operation and status: count and latency of the endpoint's answer.
    pub operations: Vec<Operation>,
    pub throttled_with_retry_after: u64,
    pub throttled_without_retry_after: u64,
    /// `--max-requests` was reached: later requests were refused here.
    pub capped: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    pub operation: String,
    pub status: u16,
    pub latency: Latency,
}

impl Wiretap {
    /// Starts the proxy on loopback in front of `upstream` (a SCIM base URL), reaching it
    /// with `tls`: answers within 30 s, redirects passed back rather than followed.
    pub async fn start(
        upstream: &str,
        tls: &scim::tls::ClientTls,
        caps: Caps,
    ) -> std::io::Result<Wiretap> {
        let client = tls
            .builder()
            .map_err(std::io::Error::other)?
            .timeout(std::time::Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client,
            caps,
            sent: AtomicU64::new(0),
            capped: AtomicBool::new(false),
            throttled_with_retry_after: AtomicU64::new(0),
            throttled_without: AtomicU64::new(0),
            tally: Mutex::new(Tally::default()),
        });
        let mut servers = scim::serve::Servers::new(None);
        let (listener, url) = servers.bind(0).await?;
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        servers.serve(listener, app);
        Ok(Wiretap {
            url,
            shared,
            servers,
        })
    }

    /// `--max-requests` has been reached.
    pub fn capped(&self) -> bool {
        self.shared.capped.load(Ordering::Relaxed)
    }

    pub fn traffic(&self) -> Traffic {
        let tally = self.shared.tally.lock().unwrap_or_else(|p| p.into_inner());
        Traffic {
            // The first `max_requests` went through; the rest were refused here.
            requests: self
                .shared
                .sent
                .load(Ordering::Relaxed)
                .min(self.shared.caps.max_requests.unwrap_or(u64::MAX)),
            operations: tally
                .by
                .iter()
                .map(|((operation, status), hist)| Operation {
                    operation: operation.clone(),
                    status: *status,
                    latency: hist.summary(),
                })
                .collect(),
            throttled_with_retry_after: self
                .shared
                .throttled_with_retry_after
                .load(Ordering::Relaxed),
            throttled_without_retry_after: self.shared.throttled_without.load(Ordering::Relaxed),
            capped: self.capped(),
        }
    }

    pub async fn stop(self) {
        self.servers.stop().await;
    }
}

/// `PATCH /Groups/{id}`: the method, the resource type and whether an id follows.
pub fn operation(method: &str, path: &str) -> String {
    let mut parts = path
        .split('?')
        .next()
        .unwrap_or("")
        .trim_matches('/')
        .split('/');
    let kind = parts.next().unwrap_or("");
    match parts.next() {
        Some(_) => format!("{method} /{kind}/{{id}}"),
        None => format!("{method} /{kind}"),
    }
}

fn refused(status: StatusCode, why: &str) -> Response {
    let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.as_u16().to_string(), "detail": why});
    (status, axum::Json(body)).into_response()
}

async fn forward(State(tap): State<Arc<Shared>>, req: Request) -> Response {
    let n = tap.sent.fetch_add(1, Ordering::Relaxed) + 1;
    if tap.caps.max_requests.is_some_and(|max| n > max) {
        tap.capped.store(true, Ordering::Relaxed);
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "scimlab: --max-requests reached; this request did not reach the endpoint",
        );
    }
    if let Some(rate) = tap.caps.max_rate {
        let wait = {
            let mut t = tap.tally.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let slot = t.next_slot.map_or(now, |s| s.max(now));
            t.next_slot = Some(slot + Duration::from_secs_f64(1.0 / rate));
            slot - now
        };
        tokio::time::sleep(wait).await;
    }
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let op = operation(parts.method.as_str(), &path);
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "scimlab: request body too large",
        );
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            headers.append(name.clone(), value.clone());
        }
    }
    let started = Instant::now();
    let answer = tap
        .client
        .request(parts.method.clone(), format!("{}{path}", tap.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            // The IdP sees what it would see from an unreachable endpoint: it retries.
            let status = if e.is_timeout() {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            record(&tap, op, status.as_u16(), started);
            return refused(
                status,
                &format!("scimlab: the endpoint did not answer: {e}"),
            );
        }
    };
    let status = answer.status();
    if status == StatusCode::TOO_MANY_REQUESTS {
        let counter = match answer.headers().contains_key("retry-after") {
            true => &tap.throttled_with_retry_after,
            false => &tap.throttled_without,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    let mut out = Response::builder().status(status);
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            out = out.header(name, value);
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    record(&tap, op, status.as_u16(), started);
    out.body(Body::from(bytes))
        .unwrap_or_else(|_| refused(StatusCode::BAD_GATEWAY, "scimlab: bad answer headers"))
}

fn record(tap: &Shared, op: String, status: u16, started: Instant) {
    let micros = started.elapsed().as_micros() as u64;
    tap.tally
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .by
        .entry((op, status))
        .or_default()
        .record(micros);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_name_the_resource_not_the_id() {
        assert_eq!(operation("PATCH", "/Groups/abc"), "PATCH /Groups/{id}");
        assert_eq!(
            operation("GET", "/Users?filter=userName%20eq%20%22a%22"),
            "GET /Users"
        );
        assert_eq!(operation("POST", "/Users"), "POST /Users");
    }
}
