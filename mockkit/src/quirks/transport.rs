//! Headers, credentials, media types, versions and parameters (RFC 7644 §2, §3.1, §3.8, §3.13,
//! §3.14).

use axum::http::{header, HeaderValue, StatusCode};

use super::{list, refuse, scim_json, Quirk};
use scim::ScimType;

pub(super) const QUIRKS: &[Quirk] = &[
    Quirk::answer(
        "scim-no-location",
        "no Location header on a create (RFC 7644 §3.3)",
        |_, a| drop(a.headers.remove(header::LOCATION)),
    ),
    Quirk::answer(
        "scim-no-www-authenticate",
        "401 without WWW-Authenticate (RFC 7235 §3.1)",
        |_, a| drop(a.headers.remove(header::WWW_AUTHENTICATE)),
    ),
    Quirk::answer(
        "scim-plain-json",
        "answers typed application/json, not application/scim+json (RFC 7644 §3.1)",
        |_, a| {
            a.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        },
    ),
    Quirk::answer(
        "scim-no-etag",
        "no ETag headers (RFC 7644 §3.14)",
        |_, a| drop(a.headers.remove(header::ETAG)),
    ),
    Quirk::answer(
        "scim-etag-unstable",
        "a new ETag on every answer (RFC 7232 §2.3)",
        |_, a| {
            let Some(tag) = a.headers.get(header::ETAG).and_then(|t| t.to_str().ok()) else {
                return;
            };
            let fresh = format!(
                "{}-{}\"",
                tag.trim_end_matches('"'),
                uuid::Uuid::new_v4().simple()
            );
            if let Ok(v) = HeaderValue::from_str(&fresh) {
                a.headers.insert(header::ETAG, v);
            }
        },
    ),
    Quirk::rewrite(
        "scim-if-match-ignored",
        "If-Match is ignored (RFC 7644 §3.14)",
        |call| {
            call.headers.remove(header::IF_MATCH);
        },
    ),
    Quirk::answer(
        "scim-no-auth",
        "requests without a credential are served (RFC 7644 §2)",
        |_, a| {
            if a.status == StatusCode::UNAUTHORIZED {
                a.json(StatusCode::OK, list(Vec::new()));
            }
        },
    ),
    Quirk::refusal(
        "scim-accept-scim-json-only",
        "Accept: application/json is refused with 406 (RFC 7644 §3.8)",
        |call| {
            let accept = call
                .headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !accept.is_empty() && !accept.contains("scim+json") && !accept.contains("*/*") {
                return refuse(406, None, "only application/scim+json is served");
            }
            None
        },
    ),
    Quirk::refusal(
        "scim-ascii-only",
        "request bodies with non-ASCII characters are refused (RFC 7644 §3.8)",
        |call| {
            if call.raw.is_ascii() {
                return None;
            }
            refuse(
                400,
                Some(ScimType::InvalidValue),
                "only ASCII text is accepted",
            )
        },
    ),
    Quirk::refusal(
        "scim-any-version",
        "any /vN/ prefix is answered as if it were supported (RFC 7644 §3.13)",
        |call| {
            let versioned = call.path.split('/').any(|s| {
                s.len() > 1 && s.starts_with('v') && s[1..].bytes().all(|b| b.is_ascii_digit())
            });
            if !versioned {
                return None;
            }
            Some(scim_json(StatusCode::OK, &list(Vec::new())))
        },
    ),
    Quirk::refusal(
        "scim-strict-parameters",
        "unknown query parameters are refused (RFC 7644 §3.4.2)",
        |call| {
            const KNOWN: &[&str] = &[
                "filter",
                "attributes",
                "excludedAttributes",
                "sortBy",
                "sortOrder",
                "startIndex",
                "count",
            ];
            match call
                .params
                .iter()
                .find(|(k, _)| !KNOWN.contains(&k.as_str()))
            {
                Some((k, _)) => refuse(
                    400,
                    Some(ScimType::InvalidValue),
                    &format!("unknown parameter {k}"),
                ),
                None => None,
            }
        },
    ),
    Quirk::refusal(
        "scim-me-404",
        "/Me answers 404 instead of 501 (RFC 7644 §3.11)",
        |call| {
            if call.last_segment() == "Me" {
                return refuse(404, None, "no such resource");
            }
            None
        },
    ),
];
