//! XML answers for clients that ask for them (`Accept: application/xml`), in TeamCity's shape:
//! scalars become attributes, objects child elements, and an array under a key repeats that
//! element (`"user": [..]` -> `<user/><user/>`). Requests are read as JSON only.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use serde_json::Value;

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
    let Ok(xml) = document(&root, &value) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
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

/// The answer as an XML document under `root`, written by quick-xml (which escapes text and
/// attribute values).
fn document(root: &str, value: &Value) -> std::io::Result<Vec<u8>> {
    let mut w = Writer::new(Vec::new());
    w.write_event(Event::Decl(BytesDecl::new(
        "1.0",
        Some("UTF-8"),
        Some("yes"),
    )))?;
    element(&mut w, root, value)?;
    Ok(w.into_inner())
}

fn element(w: &mut Writer<Vec<u8>>, name: &str, value: &Value) -> std::io::Result<()> {
    match value {
        Value::Null => Ok(()),
        Value::Array(items) => items.iter().try_for_each(|v| element(w, name, v)),
        Value::Object(map) => {
            let attrs: Vec<(&str, String)> = map
                .iter()
                .filter(|(_, v)| is_scalar(v))
                .map(|(k, v)| (k.as_str(), text(v)))
                .collect();
            let start = w
                .create_element(name)
                .with_attributes(attrs.iter().map(|(k, v)| (*k, v.as_str())));
            let children: Vec<(&String, &Value)> =
                map.iter().filter(|(_, v)| writes_element(v)).collect();
            if children.is_empty() {
                start.write_empty()?;
            } else {
                start.write_inner_content(|w| {
                    children.iter().try_for_each(|(k, v)| element(w, k, v))
                })?;
            }
            Ok(())
        }
        scalar => {
            w.create_element(name)
                .write_text_content(BytesText::new(&text(scalar)))?;
            Ok(())
        }
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Object(_) | Value::Array(_))
}

/// Whether `v`, under a key, becomes at least one child element.
fn writes_element(v: &Value) -> bool {
    match v {
        Value::Object(_) => true,
        Value::Array(items) => items.iter().any(|i| !i.is_null()),
        _ => false,
    }
}

/// A scalar as text, with the characters XML 1.0 cannot carry (most controls) replaced.
fn text(v: &Value) -> String {
    let raw = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    raw.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
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
        let xml = String::from_utf8(document("user", &user).unwrap()).unwrap();
        insta::assert_snapshot!(xml, @r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><user id="1" username="a&amp;b"><properties count="1"><property name="k" value="&lt;v&gt;"/></properties><groups count="0"/></user>"#);
    }

    #[test]
    fn hostile_values_read_back_as_they_were_or_as_a_replacement() {
        use quick_xml::events::Event;
        let name = "<a href=\"x\">'&amp;'</a>\u{1}\u{7}ok";
        let user = json!({"username": name, "text": {"v": ["]]>", "\u{2}"]}});
        let xml = document("user", &user).unwrap();
        let mut reader = quick_xml::Reader::from_reader(xml.as_slice());
        let (mut seen_name, mut texts, mut buf) = (None, Vec::new(), Vec::new());
        let mut text = String::new();
        loop {
            match reader.read_event_into(&mut buf).unwrap() {
                Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"user" => {
                    let attr = e.try_get_attribute("username").unwrap().unwrap();
                    seen_name = Some(attr.unescape_value().unwrap().into_owned());
                }
                Event::Text(t) => text.push_str(&t.decode().unwrap()),
                // quick-xml hands an entity over on its own.
                Event::GeneralRef(r) => {
                    let name = r.decode().unwrap();
                    text.push_str(quick_xml::escape::resolve_predefined_entity(&name).unwrap());
                }
                Event::End(e) if e.name().as_ref() == b"v" => texts.push(std::mem::take(&mut text)),
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        assert_eq!(
            seen_name.as_deref(),
            Some("<a href=\"x\">'&amp;'</a>\u{FFFD}\u{FFFD}ok")
        );
        assert_eq!(texts, ["]]>", "\u{FFFD}"]);
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
