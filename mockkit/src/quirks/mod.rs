//! Named quirks of a mock's SCIM endpoint. Each breaks one RFC 7644 / RFC 7643 behaviour (or one
//! IdP expectation) on purpose, by rewriting the request before the engine sees it or the answer
//! after; the conformance suite proves with them that its checks can fail (`docs/conformance.md`
//! has the check -> quirk table).
//!
//! A quirk is one `Quirk` item in the list of the topic it breaks (`transport`, `query`,
//! `lists`, `writes`, `patch`, `bulk`, `discovery`, `representation`, `errors`): its name, what it
//! breaks, and what it does: refuse the request, rewrite it, rewrite the answer (or two of
//! these). Adding one is adding that item, and its row in the conformance test's quirk table.

mod bulk;
mod discovery;
mod errors;
mod lists;
mod patch;
mod query;
mod representation;
mod transport;
mod writes;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::sim::{Quirks, Simulated};
use scim::error::ScimError;
use scim::ScimType;

/// The answer a quirk gives a request itself, if it refuses it.
type Refusal = fn(&Call<'_>) -> Option<Response>;
/// Rewrites a request.
type Rewrite = fn(&mut Call<'_>);
/// Rewrites an answer.
type OnAnswer = fn(&Call<'_>, &mut Answer);

/// One switchable misbehaviour of a SCIM endpoint.
#[derive(Debug)]
pub struct Quirk {
    pub name: &'static str,
    /// What it breaks, and where the RFC (or the IdP's guide) asks for it.
    pub breaks: &'static str,
    refusal: Option<Refusal>,
    rewrite: Option<Rewrite>,
    answer: Option<OnAnswer>,
}

impl Quirk {
    const NONE: Quirk = Quirk {
        name: "",
        breaks: "",
        refusal: None,
        rewrite: None,
        answer: None,
    };

    const fn refusal(name: &'static str, breaks: &'static str, f: Refusal) -> Quirk {
        Quirk {
            name,
            breaks,
            refusal: Some(f),
            ..Quirk::NONE
        }
    }

    const fn rewrite(name: &'static str, breaks: &'static str, f: Rewrite) -> Quirk {
        Quirk {
            name,
            breaks,
            rewrite: Some(f),
            ..Quirk::NONE
        }
    }

    const fn answer(name: &'static str, breaks: &'static str, f: OnAnswer) -> Quirk {
        Quirk {
            name,
            breaks,
            answer: Some(f),
            ..Quirk::NONE
        }
    }

    /// A quirk that also rewrites the answer (one that remembers what it saw, or refuses what
    /// it broke on the way in).
    const fn and_answer(self, f: OnAnswer) -> Quirk {
        Quirk {
            answer: Some(f),
            ..self
        }
    }
}

/// Every topic's quirks; within a request or an answer, switched-on quirks act in this order:
/// the resources are rewritten before a list quirk reshapes the list around them
/// (`scim-list-loose` last of those), and error bodies last, a list quirk's 404 included.
const TOPICS: &[&[Quirk]] = &[
    transport::QUIRKS,
    query::QUIRKS,
    writes::QUIRKS,
    patch::QUIRKS,
    bulk::QUIRKS,
    discovery::QUIRKS,
    representation::QUIRKS,
    lists::QUIRKS,
    errors::QUIRKS,
];

/// Every SCIM quirk.
pub fn all() -> impl Iterator<Item = &'static Quirk> {
    TOPICS.iter().flat_map(|topic| topic.iter())
}

/// Every SCIM quirk's name and what it breaks, as `Quirks::new` takes them.
pub fn named() -> impl Iterator<Item = (&'static str, &'static str)> {
    all().map(|q| (q.name, q.breaks))
}

/// Largest body a quirk buffers to rewrite (above the engine's own limits, so they still apply).
const BUFFER_LIMIT: usize = 64 << 20;

/// A request on its way to the engine, as the quirks see and rewrite it.
struct Call<'a> {
    method: Method,
    path: String,
    params: Vec<(String, String)>,
    headers: HeaderMap,
    /// The body of a POST, PUT or PATCH as it arrived (empty for other methods).
    raw: Bytes,
    /// That body as JSON, when it is JSON; rewritten by the quirks.
    body: Option<Value>,
    /// What a stateful quirk remembers between requests.
    quirks: &'a Quirks,
}

impl Call<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn param_mut(&mut self, name: &str) -> Option<&mut String> {
        self.params
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    fn drop_params(&mut self, names: &[&str]) {
        self.params.retain(|(k, _)| !names.contains(&k.as_str()));
    }

    fn last_segment(&self) -> &str {
        self.path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("")
    }

    /// A create (`POST /Users`) or replacement (`PUT /Users/{id}`) of `endpoint`'s resources.
    fn writes_to(&self, endpoint: &str) -> bool {
        let segment = match self.method {
            Method::POST => 0,
            Method::PUT => 1,
            _ => return false,
        };
        self.path.trim_end_matches('/').rsplit('/').nth(segment) == Some(endpoint)
    }

    fn is_search(&self) -> bool {
        self.method == Method::POST && self.last_segment() == ".search"
    }

    /// The RFC 9865 cursor the request pages with: from a .search body, or else the query.
    fn cursor(&self) -> Option<&str> {
        if self.is_search() {
            self.body.as_ref()?.get("cursor")?.as_str()
        } else {
            self.param("cursor")
        }
    }

    /// Sets (or with `None` drops) a paging parameter where the request carries its paging.
    fn set_paging(&mut self, name: &str, value: Option<String>) {
        if self.is_search() {
            if let Some(o) = self.body.as_mut().and_then(Value::as_object_mut) {
                match value {
                    Some(v) => o.insert(name.into(), json!(v)),
                    None => o.remove(name),
                };
            }
        } else {
            match (value, self.param_mut(name)) {
                (Some(v), Some(old)) => *old = v,
                (Some(_), None) => {}
                (None, _) => self.params.retain(|(k, _)| !k.eq_ignore_ascii_case(name)),
            }
        }
    }

    fn is_discovery(&self) -> bool {
        ["ServiceProviderConfig", "Schemas", "ResourceTypes"]
            .iter()
            .any(|d| self.path.contains(&format!("/{d}")))
    }

    /// Whether the answer holds Users or Groups (a resource, or a list of them): not
    /// discovery's answers, nor Bulk's.
    fn answers_resources(&self) -> bool {
        !self.is_discovery() && self.last_segment() != "Bulk"
    }

    fn is_service_provider_config(&self) -> bool {
        self.last_segment() == "ServiceProviderConfig"
    }

    /// The object body of a POST or PUT.
    fn written_object(&mut self) -> Option<&mut Map<String, Value>> {
        if !matches!(self.method, Method::POST | Method::PUT) {
            return None;
        }
        self.body.as_mut()?.as_object_mut()
    }

    /// What the client sent in a POST or PUT.
    fn sent(&self, attribute: &str) -> Option<&Value> {
        if !matches!(self.method, Method::POST | Method::PUT) {
            return None;
        }
        self.body.as_ref()?.get(attribute)
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Value> {
        self.quirks.memory()
    }
}

/// An answer on its way back, as the quirks see and rewrite it.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    /// The body as JSON; `None` when it is empty or not JSON.
    body: Option<Value>,
}

impl Answer {
    fn json(&mut self, status: StatusCode, body: Value) {
        self.status = status;
        self.body = Some(body);
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/scim+json"),
        );
    }

    fn empty(&mut self, status: StatusCode) {
        self.status = status;
        self.body = None;
    }

    fn error(&mut self, status: StatusCode, detail: &str) {
        let body = ScimError::new(status.as_u16(), None, detail).body();
        self.json(status, body);
    }

    /// The body of an error answer.
    fn error_body(&mut self) -> Option<&mut Map<String, Value>> {
        if self.status.as_u16() < 400 {
            return None;
        }
        self.body.as_mut()?.as_object_mut()
    }

    /// The ServiceProviderConfig this answer is.
    fn service_provider_config<'a>(&'a mut self, call: &Call<'_>) -> Option<&'a mut Value> {
        if !call.is_service_provider_config() {
            return None;
        }
        self.body.as_mut()
    }

    /// A discovery answer other than the ServiceProviderConfig (/Schemas, /ResourceTypes).
    fn discovery<'a>(&'a mut self, call: &Call<'_>) -> Option<&'a mut Value> {
        if !call.is_discovery() || call.is_service_provider_config() {
            return None;
        }
        self.body.as_mut()
    }

    /// The ListResponse of a query of resources.
    fn list<'a>(&'a mut self, call: &Call<'_>) -> Option<&'a mut Map<String, Value>> {
        if !call.answers_resources() {
            return None;
        }
        self.body
            .as_mut()?
            .as_object_mut()
            .filter(|o| o.contains_key("Resources"))
    }

    /// The resources of a list, or of one that the answer is (not discovery's nor Bulk's).
    fn each_resource(&mut self, call: &Call<'_>, mut f: impl FnMut(&mut Map<String, Value>)) {
        if !call.answers_resources() {
            return;
        }
        let Some(body) = self.body.as_mut() else {
            return;
        };
        if let Some(items) = body.get_mut("Resources").and_then(Value::as_array_mut) {
            items
                .iter_mut()
                .filter_map(Value::as_object_mut)
                .for_each(f);
        } else if let Some(o) = body.as_object_mut().filter(|o| o.contains_key("id")) {
            f(o);
        }
    }
}

/// An error the quirk answers with itself.
fn refuse(status: u16, scim_type: Option<ScimType>, detail: &str) -> Option<Response> {
    Some(ScimError::new(status, scim_type, detail).into_response())
}

fn scim_json(status: StatusCode, v: &Value) -> Response {
    let mut resp = (status, v.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/scim+json"),
    );
    resp
}

fn list(resources: Vec<Value>) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": resources.len(),
           "startIndex": 1, "itemsPerPage": resources.len(), "Resources": resources})
}

/// The quirks switched on, in the order they act; with none on (nearly every request), the
/// list is not walked.
fn switched_on(active: &BTreeSet<String>) -> Vec<&'static Quirk> {
    if active.is_empty() {
        return Vec::new();
    }
    all().filter(|q| active.contains(q.name)).collect()
}

fn rewrite_answer(on: &[&Quirk], call: &Call<'_>, answer: &mut Answer) {
    for f in on.iter().filter_map(|q| q.answer) {
        f(call, answer);
    }
}

/// Middleware for a mock's SCIM endpoint: applies whichever quirks are switched on.
pub async fn middleware(
    State(sim): State<Arc<dyn Simulated>>,
    req: Request,
    next: Next,
) -> Response {
    let quirks = &sim.controls().quirks;
    // Every request of every connector passes here: with no quirk on it costs a lock read.
    let on = switched_on(&quirks.active());
    if on.is_empty() {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let writes = matches!(parts.method, Method::POST | Method::PUT | Method::PATCH);
    let (raw, passed_body) = if writes {
        let raw = axum::body::to_bytes(body, BUFFER_LIMIT)
            .await
            .unwrap_or_default();
        (raw, None)
    } else {
        (Bytes::new(), Some(body))
    };
    let params: Vec<(String, String)> = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let body = serde_json::from_slice::<Value>(&raw).ok();
    let mut call = Call {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        params: params.clone(),
        headers: std::mem::take(&mut parts.headers),
        raw,
        body: body.clone(),
        quirks,
    };
    if let Some(refused) = on.iter().filter_map(|q| q.refusal).find_map(|f| f(&call)) {
        return refused;
    }
    for f in on.iter().filter_map(|q| q.rewrite) {
        f(&mut call);
    }
    if call.params != params {
        let query = serde_urlencoded::to_string(&call.params).unwrap_or_default();
        if let Ok(uri) = format!("{}?{query}", call.path).parse() {
            parts.uri = uri;
        }
    }
    // No answer rewrite reads the request's headers.
    parts.headers = std::mem::take(&mut call.headers);
    let body = match (passed_body, &call.body) {
        (Some(untouched), _) => untouched,
        (None, Some(v)) if call.body != body => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Body::from(v.to_string())
        }
        (None, _) => Body::from(call.raw.clone()),
    };
    let resp = next.run(Request::from_parts(parts, body)).await;
    if on.iter().all(|q| q.answer.is_none()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, BUFFER_LIMIT)
        .await
        .unwrap_or_default();
    let read = serde_json::from_slice::<Value>(&bytes).ok();
    let mut answer = Answer {
        status: parts.status,
        headers: std::mem::take(&mut parts.headers),
        body: read.clone(),
    };
    rewrite_answer(&on, &call, &mut answer);
    parts.status = answer.status;
    parts.headers = answer.headers;
    let body = if answer.status == StatusCode::NO_CONTENT {
        Body::empty()
    } else if answer.body == read {
        Body::from(bytes)
    } else {
        Body::from(answer.body.map(|v| v.to_string()).unwrap_or_default())
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the answer rewrites of `names` as the middleware does.
    fn answer_with(names: &[&str], call: &Call<'_>, body: Value) -> Value {
        let mut a = Answer {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Some(body),
        };
        let active = names.iter().map(|n| n.to_string()).collect();
        rewrite_answer(&switched_on(&active), call, &mut a);
        a.body.unwrap_or_default()
    }

    #[test]
    fn resources_are_rewritten_before_a_list_quirk_reshapes_the_list() {
        let quirks = Quirks::new(named());
        let call = Call {
            method: Method::GET,
            path: "/Users".into(),
            params: Vec::new(),
            headers: HeaderMap::new(),
            raw: Bytes::new(),
            body: None,
            quirks: &quirks,
        };
        let listed = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 1, "Resources": [{"id": "1", "active": true}]});
        let both = answer_with(&["scim-list-loose", "scim-string-booleans"], &call, listed);
        assert_eq!(both["resources"][0]["active"], json!("True"), "{both}");
        assert_eq!(both["totalResults"], json!("1"));
    }

    #[test]
    fn every_quirk_has_one_name_and_a_rewrite() {
        let mut names = std::collections::BTreeSet::new();
        for q in all() {
            assert!(q.name.starts_with("scim-"), "{}", q.name);
            assert!(names.insert(q.name), "{} twice", q.name);
            assert!(
                q.refusal.is_some() || q.rewrite.is_some() || q.answer.is_some(),
                "{}",
                q.name
            );
            assert!(
                q.breaks.contains("RFC") || q.breaks.contains("guide"),
                "{}",
                q.name
            );
        }
    }
}
