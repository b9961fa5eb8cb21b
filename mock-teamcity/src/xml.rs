//! XML answers for clients that ask for them (`Accept: application/xml`), in TeamCity's shape:
//! scalars become attributes, objects child elements, and an array under a key repeats that
//! element (`"user": [..]` -> `<user/><user/>`). Requests are read as JSON only.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value};

/// The largest JSON answer converted; bigger ones go out as JSON.
const MAX_CONVERTED: usize = 16 << 20;

pub async fn negotiate(req: Request, next: Next) -> Response {
    let wants_xml = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            let a = a.to_ascii_lowercase();
            (a.contains("application/xml") || a.contains("text/xml"))
                && !a.contains("application/json")
        });
    let root = root_element(req.uri().path());
    let resp = next.run(req).await;
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/json"));
    if !wants_xml || !is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_CONVERTED).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>{}",
        element(&root, &value)
    );
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(xml))
}

/// The root element TeamCity uses for a path: the collection or the single entity.
fn root_element(path: &str) -> String {
    let segments: Vec<&str> = path
        .trim_start_matches(crate::rest::HTTP_AUTH)
        .trim_start_matches("/app/rest/")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let name = match segments.as_slice() {
        ["userGroups"] => "groups",
        ["userGroups", _] => "group",
        [.., "parent-groups"] => "groups",
        [.., "roles", _, _] => "role",
        [.., "groups", _] => "group",
        [.., "tokens"] => "tokens",
        [.., "permissions"] => "permissionAssignments",
        ["users", _] => "user",
        ["projects", _] => "project",
        [.., last] => last,
        [] => "response",
    };
    name.to_owned()
}

fn element(name: &str, value: &Value) -> String {
    match value {
        Value::Object(map) => object(name, map),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(|v| element(name, v)).collect(),
        scalar => format!("<{name}>{}</{name}>", escape(&text(scalar))),
    }
}

fn object(name: &str, map: &Map<String, Value>) -> String {
    let mut attrs = String::new();
    let mut children = String::new();
    for (k, v) in map {
        match v {
            Value::Null => {}
            Value::Object(_) | Value::Array(_) => children.push_str(&element(k, v)),
            scalar => attrs.push_str(&format!(" {k}=\"{}\"", escape(&text(scalar)))),
        }
    }
    if children.is_empty() {
        format!("<{name}{attrs}/>")
    } else {
        format!("<{name}{attrs}>{children}</{name}>")
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn teamcity_shapes_become_attributes_and_repeated_elements() {
        let user = json!({"id": 1, "username": "a&b", "name": null,
            "properties": {"count": 1, "property": [{"name": "k", "value": "<v>"}]},
            "groups": {"count": 0, "group": []}});
        insta::assert_snapshot!(element("user", &user), @r#"<user id="1" username="a&amp;b"><properties count="1"><property name="k" value="&lt;v&gt;"/></properties><groups count="0"/></user>"#);
    }

    #[test]
    fn root_elements_follow_the_path() {
        for (path, root) in [
            ("/app/rest/users", "users"),
            ("/httpAuth/app/rest/users/id:1", "user"),
            ("/app/rest/users/id:1", "user"),
            ("/app/rest/users/id:1/roles", "roles"),
            ("/app/rest/users/id:1/roles/PROJECT_VIEWER/g", "role"),
            ("/app/rest/users/id:1/groups/key:A", "group"),
            ("/app/rest/userGroups/key:A", "group"),
            ("/app/rest/projects", "projects"),
            ("/app/rest/projects/id:X", "project"),
        ] {
            assert_eq!(root_element(path), root, "{path}");
        }
    }
}
