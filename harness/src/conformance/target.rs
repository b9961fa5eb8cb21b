//! The server under test, and the wire log of every exchange with it.

use std::time::{Duration, Instant};

use reqwest::Method;
use scim::tls::ClientTls;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Tls(#[from] scim::tls::TlsError),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// How the suite authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Bearer(String),
    /// `user:password`.
    Basic(String),
    /// OAuth 2.0 access tokens, fetched before the first request and again before they expire.
    OAuth(std::sync::Arc<scim::oauth::TokenSource>),
}

/// A SCIM base URL and how to reach it.
#[derive(Debug, Clone)]
pub struct Target {
    pub base: String,
    pub auth: Auth,
    client: reqwest::Client,
    /// Largest response body read; a larger one is an error of that request.
    max_body: usize,
    /// Headers sent with every request (an API key, say); their values are masked in logs.
    extra: Vec<(String, String)>,
    /// Server certificates are not checked (`--insecure`).
    pub insecure: bool,
    /// Times a 429 is waited out and retried.
    retries_on_429: u32,
}

/// The response body cap when none is given: far above any SCIM page of `filter.maxResults`
/// resources, far below what a hostile server could make the client hold.
pub const DEFAULT_MAX_BODY: usize = 8 << 20;

/// One request and its response, as a vendor needs to see it; credentials are masked.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    pub method: String,
    pub url: String,
    pub request_headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    pub status: u16,
    pub response_headers: Vec<(String, String)>,
    /// The body as logged (cut at `MAX_LOGGED_BODY`).
    pub response_body: String,
    pub millis: f64,
    /// The whole body parsed as JSON, before any cut.
    #[serde(skip)]
    parsed: Option<Value>,
}

/// Longest a single request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// True when the connection went away under a sent request (reset, closed before the answer).
fn dropped(e: &reqwest::Error) -> bool {
    e.is_request() && !e.is_connect() && !e.is_timeout()
}

/// A 429 is retried this many times, waiting as `Retry-After` says (at most `MAX_RETRY_WAIT`).
const RETRIES_ON_429: u32 = 3;
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);
/// Response bodies kept in the log are cut at this many bytes.
const MAX_LOGGED_BODY: usize = 16 * 1024;

impl Exchange {
    pub fn json(&self) -> Option<Value> {
        self.parsed.clone()
    }

    /// A fixed exchange for report tests.
    #[cfg(test)]
    pub(crate) fn canned(method: &str, url: &str, status: u16, body: &str) -> Exchange {
        Exchange {
            method: method.into(),
            url: url.into(),
            request_headers: vec![("authorization".into(), "Bearer ****".into())],
            request_body: None,
            status,
            response_headers: vec![("content-type".into(), "application/scim+json".into())],
            response_body: body.into(),
            millis: 1.0,
            parsed: serde_json::from_str(body).ok(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.response_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Target {
    /// Reaching `base` over plain HTTP, or HTTPS checked against the system's authorities.
    pub fn new(base: &str, auth: Auth) -> Result<Target, TargetError> {
        Self::with_tls(base, auth, &ClientTls::default())
    }

    /// Reaching `base` with this TLS config.
    pub fn with_tls(base: &str, auth: Auth, tls: &ClientTls) -> Result<Target, TargetError> {
        // Redirects are answers to judge, not to follow: a SCIM endpoint that redirects to a
        // login page is misconfigured, and following it would test the login page.
        // Idle connections are dropped before common servers' 5 s keep-alive ends (Node,
        // Apache), so a request never goes out on a connection the server is closing.
        let client = tls
            .builder()?
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(4))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Target {
            base: base.trim_end_matches('/').to_owned(),
            auth,
            client,
            max_body: DEFAULT_MAX_BODY,
            extra: Vec::new(),
            insecure: tls.insecure,
            retries_on_429: RETRIES_ON_429,
        })
    }

    /// The same target, answering a 429 as it comes instead of waiting and retrying: for the
    /// check that provokes one.
    pub fn without_retries(&self) -> Target {
        Target {
            retries_on_429: 0,
            ..self.clone()
        }
    }

    /// The same target, sending these headers with every request.
    pub fn with_headers(self, extra: Vec<(String, String)>) -> Target {
        let extra = extra
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        Target { extra, ..self }
    }

    /// The same target, reading response bodies up to `bytes` only.
    pub fn with_max_body(self, bytes: usize) -> Target {
        Target {
            max_body: bytes,
            ..self
        }
    }

    /// The same server reached with another credential.
    pub fn with_auth(&self, auth: Auth) -> Target {
        Target {
            auth,
            ..self.clone()
        }
    }

    pub async fn get(&self, path: &str) -> Result<Exchange, String> {
        self.send(Method::GET, path, None, &[]).await
    }

    /// Sends a request to a path under the base URL (or to an absolute URL the server gave).
    /// `headers` may override `Content-Type`, `Accept` and `Authorization` (`""` removes it).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Exchange, String> {
        let body_text = body.map(Value::to_string);
        self.send_raw(method, path, body_text, headers).await
    }

    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Result<Exchange, String> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut attempt = 0;
        let mut retried_drop = false;
        loop {
            let mut wanted: Vec<(String, String)> =
                vec![("accept".into(), "application/scim+json".into())];
            if body.is_some() {
                wanted.push(("content-type".into(), "application/scim+json".into()));
            }
            match &self.auth {
                Auth::None => {}
                Auth::Bearer(t) => wanted.push(("authorization".into(), format!("Bearer {t}"))),
                Auth::Basic(up) => wanted.push((
                    "authorization".into(),
                    format!("Basic {}", base64(up.as_bytes())),
                )),
                Auth::OAuth(source) => {
                    let token = source
                        .bearer()
                        .await
                        .map_err(|e| format!("{method} {url}: no access token: {e}"))?;
                    wanted.push(("authorization".into(), format!("Bearer {token}")));
                }
            }
            for (k, v) in &self.extra {
                wanted.retain(|(name, _)| name != k);
                wanted.push((k.clone(), v.clone()));
            }
            for (k, v) in headers {
                wanted.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
                if !v.is_empty() {
                    wanted.push((k.to_ascii_lowercase(), (*v).to_owned()));
                }
            }
            let mut req = self.client.request(method.clone(), &url);
            for (k, v) in &wanted {
                req = req.header(k.as_str(), v.as_str());
            }
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            let started = Instant::now();
            let mut resp = match req.send().await {
                Ok(resp) => resp,
                // A connection the server dropped under a request is retried once when the
                // request is idempotent, as RFC 9110 §9.2.2 allows: a keep-alive race is no
                // finding about the server.
                Err(e) if dropped(&e) && method.is_idempotent() && !retried_drop => {
                    retried_drop = true;
                    continue;
                }
                Err(e) => return Err(format!("{method} {url}: {}", why_unreachable(&url, &e))),
            };
            let status = resp.status().as_u16();
            let response_headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        v.to_str().unwrap_or("<binary>").to_owned(),
                    )
                })
                .collect();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            // Read as a stream, so a hostile or broken server cannot make the client hold more
            // than `max_body`.
            let mut bytes = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| {
                format!(
                    "{method} {url}: reading the body: {}",
                    why_unreachable(&url, &e)
                )
            })? {
                if bytes.len() + chunk.len() > self.max_body {
                    return Err(format!(
                        "{method} {url}: the response body is larger than {} bytes (--max-body-bytes); reading stopped there",
                        self.max_body
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if status == 429 && attempt < self.retries_on_429 {
                attempt += 1;
                tokio::time::sleep(
                    Duration::from_secs(retry_after.unwrap_or(1)).min(MAX_RETRY_WAIT),
                )
                .await;
                continue;
            }
            return Ok(Exchange {
                method: method.to_string(),
                url: url.clone(),
                request_headers: wanted
                    .into_iter()
                    .map(|(k, v)| {
                        if k == "authorization" {
                            (k, mask(&v))
                        } else if self.extra.iter().any(|(name, _)| *name == k) {
                            (k, "****".to_owned())
                        } else {
                            (k, v)
                        }
                    })
                    .collect(),
                request_body: body.clone(),
                status,
                response_headers,
                parsed: serde_json::from_str(&text).ok(),
                response_body: cut(text),
                millis: started.elapsed().as_secs_f64() * 1000.0,
            });
        }
    }
}

/// Why a request got no answer, in words that say what to fix.
fn why_unreachable(url: &str, e: &reqwest::Error) -> String {
    let chain = {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    };
    let lower = chain.to_ascii_lowercase();
    if let Some(tls) = scim::tls::explain(e) {
        tls
    } else if e.is_timeout() {
        format!("no complete answer within {} s", REQUEST_TIMEOUT.as_secs())
    } else if lower.contains("connection refused") {
        "connection refused: nothing listens there".into()
    } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
        "the host name does not resolve (DNS)".into()
    } else if url.starts_with("https://") && dropped(e) {
        // TLS 1.3 servers refuse a missing client certificate after the handshake, by an
        // alert the client meets only as the connection going away (closed, reset, cancelled,
        // a broken pipe: the wording depends on the moment), never as a connect error.
        format!(
            "the server closed the connection right after the TLS handshake; if it wants a \
             client certificate, give --client-cert and --client-cert-key ({chain})"
        )
    } else {
        chain
    }
}

/// True when the URL's host is on loopback.
pub fn is_loopback(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    host == "localhost" || host.starts_with("127.") || url.contains("://[::1]")
}

/// Keeps the scheme and hides the credential.
fn mask(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, _)) => format!("{scheme} ****"),
        None => "****".into(),
    }
}

fn cut(mut text: String) -> String {
    if text.len() > MAX_LOGGED_BODY {
        let mut end = MAX_LOGGED_BODY;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("…(cut)");
    }
    text
}

fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_base64_and_masked_in_logs() {
        assert_eq!(base64(b"u:p"), "dTpw");
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(mask("Bearer secret-token"), "Bearer ****");
    }
}
