//! The token endpoint, `POST /oauth2/v1/token` as on Okta's org authorization server: the
//! client credentials grant (RFC 6749 §4.4) for registered clients, which authenticate by
//! `client_secret_basic`, `client_secret_post` or `private_key_jwt` (RFC 7523 §2.2), and get a
//! signed JWT access token (RFC 9068) that expires. Errors are RFC 6749 §5.2's
//! `{"error", "error_description"}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use scim::oauth::{Issuer, VerifyingKey, ASSERTION_TYPE};
use serde_json::json;

use crate::Idp;

/// Where the endpoint lives under the IdP's URL.
pub const TOKEN_PATH: &str = "/oauth2/v1/token";
/// The only scope this server grants, and the one given when none is asked.
pub const SCOPE: &str = "scim";

/// A client the token endpoint knows: a secret, a public key, or both.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub id: String,
    pub secret: Option<String>,
    pub public_key: Option<VerifyingKey>,
}

/// The authorization server: who may ask, and what it signs with.
#[derive(Debug)]
pub struct OAuthServer {
    pub issuer: Issuer,
    pub clients: Vec<OAuthClient>,
    /// `jti`s of assertions already used, until they expire (RFC 7523 §3: no replay).
    seen: Mutex<HashMap<String, u64>>,
}

impl OAuthServer {
    pub fn new(issuer: Issuer, clients: Vec<OAuthClient>) -> Self {
        OAuthServer {
            issuer,
            clients,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, id: &str) -> Option<&OAuthClient> {
        self.clients.iter().find(|c| c.id == id)
    }

    /// False when `jti` was seen before; remembers it until `exp`.
    fn first_use(&self, jti: &str, exp: u64) -> bool {
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, until| *until >= now);
        seen.insert(jti.to_owned(), exp).is_none()
    }
}

/// An RFC 6749 §5.2 error answer.
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: String,
    /// The client tried HTTP Basic: a 401 then names the scheme (§5.2).
    basic: bool,
}

fn refuse(status: StatusCode, error: &'static str, description: impl Into<String>) -> Refusal {
    Refusal {
        status,
        error,
        description: description.into(),
        basic: false,
    }
}

fn invalid_request(description: impl Into<String>) -> Refusal {
    refuse(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_client(description: impl Into<String>) -> Refusal {
    refuse(StatusCode::UNAUTHORIZED, "invalid_client", description)
}

fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        let mut resp = (self.status, Json(body)).into_response();
        if self.basic && self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"scimlab-idp\""),
            );
        }
        no_store(resp)
    }
}

/// The form's parameters; one given twice is an error (RFC 6749 §3.2).
fn form(headers: &HeaderMap, raw: &Bytes) -> Result<HashMap<String, String>, Refusal> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(raw)
        .map_err(|e| invalid_request(format!("the body is not a form: {e}")))?;
    let mut out = HashMap::new();
    for (k, v) in pairs {
        if out.insert(k.clone(), v).is_some() {
            return Err(invalid_request(format!("{k} is given more than once")));
        }
    }
    Ok(out)
}

/// HTTP Basic's client id and secret, as sent.
fn basic(headers: &HeaderMap) -> Option<Result<(String, String), Refusal>> {
    scim::auth::credentials(headers, &["Basic"])?;
    Some(scim::auth::basic(headers).ok_or(Refusal {
        basic: true,
        ..invalid_client("the Basic credentials are not base64 of id:secret")
    }))
}

/// RFC 6749 §2.3.1's form decoding of a Basic credential part.
fn unform(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The client that authenticated, by whichever one method it used.
fn authenticate<'a>(
    server: &'a OAuthServer,
    token_url: &str,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<&'a OAuthClient, Refusal> {
    let by_basic = basic(headers);
    let by_post = params.contains_key("client_secret");
    let by_assertion = params.contains_key("client_assertion");
    if usize::from(by_basic.is_some()) + usize::from(by_post) + usize::from(by_assertion) > 1 {
        return Err(invalid_request(
            "more than one client authentication method (RFC 6749 §2.3)",
        ));
    }
    let secret_matches = |id: &str, secret: &str| {
        server.client(id).filter(|c| {
            c.secret
                .as_ref()
                .is_some_and(|s| scim::auth::is_one_of(std::slice::from_ref(s), secret))
        })
    };
    if let Some(found) = by_basic {
        let (id, secret) = found?;
        // Form-decoded as the RFC says, or as sent: many clients do not encode.
        let decoded = secret_matches(&unform(&id), &unform(&secret));
        return decoded
            .or_else(|| secret_matches(&id, &secret))
            .ok_or(Refusal {
                basic: true,
                ..invalid_client("unknown client or wrong secret")
            });
    }
    if by_post {
        let id = params.get("client_id").map_or("", String::as_str);
        let secret = params.get("client_secret").map_or("", String::as_str);
        return secret_matches(id, secret)
            .ok_or_else(|| invalid_client("unknown client or wrong secret"));
    }
    if by_assertion {
        if params.get("client_assertion_type").map(String::as_str) != Some(ASSERTION_TYPE) {
            return Err(invalid_request(format!(
                "client_assertion_type must be {ASSERTION_TYPE}"
            )));
        }
        let id = params
            .get("client_id")
            .ok_or_else(|| invalid_request("client_id is required with client_assertion"))?;
        let client = server
            .client(id)
            .ok_or_else(|| invalid_client("unknown client"))?;
        let key = client
            .public_key
            .as_ref()
            .ok_or_else(|| invalid_client("this client has no key for private_key_jwt"))?;
        let assertion = params.get("client_assertion").map_or("", String::as_str);
        let (jti, exp) = scim::oauth::check_assertion(assertion, key, id, token_url)
            .map_err(|e| invalid_client(format!("the client assertion was refused: {e}")))?;
        if !server.first_use(&jti, exp) {
            return Err(invalid_client("the client assertion was used before (jti)"));
        }
        return Ok(client);
    }
    Err(invalid_client(
        "no client authentication: use HTTP Basic, client_secret or client_assertion",
    ))
}

pub async fn token(State(idp): State<Arc<Idp>>, headers: HeaderMap, raw: Bytes) -> Response {
    let Some(server) = &idp.oauth else {
        return refuse(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "this IdP has no authorization server (start it with OAuth clients)",
        )
        .into_response();
    };
    let token_url = format!("{}{TOKEN_PATH}", idp.base_url);
    let answer = (|| {
        let params = form(&headers, &raw)?;
        match params.get("grant_type").map(String::as_str) {
            Some("client_credentials") => {}
            Some(other) => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    format!("{other}: only client_credentials is supported"),
                ))
            }
            None => return Err(invalid_request("grant_type is required")),
        }
        let client = authenticate(server, &token_url, &headers, &params)?;
        let scope = match params
            .get("scope")
            .map(|s| s.split_whitespace().collect::<Vec<_>>())
        {
            None => SCOPE,
            Some(asked) if asked == [SCOPE] => SCOPE,
            Some(asked) => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    format!("{}: only {SCOPE:?} is granted", asked.join(" ")),
                ))
            }
        };
        let (access_token, expires_in) =
            server.issuer.mint(&client.id, Some(scope)).map_err(|e| {
                refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    e.to_string(),
                )
            })?;
        Ok(json!({"access_token": access_token, "token_type": "Bearer",
            "expires_in": expires_in, "scope": scope}))
    })();
    match answer {
        Ok(body) => no_store(Json(body).into_response()),
        Err(refusal) => refusal.into_response(),
    }
}
