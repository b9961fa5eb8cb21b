//! Filters, attribute selection, sorting and index paging (RFC 7644 §3.4.2).

use axum::http::Method;
use serde_json::{json, Value};

use super::{refuse, Call, Quirk};
use scim::ScimType;

pub(super) const QUIRKS: &[Quirk] = &[
    Quirk::rewrite(
        "scim-filter-ignores-and",
        "a filter `A and B` is read as `A` (RFC 7644 §3.4.2.2)",
        |call| {
            if let Some(filter) = call.param_mut("filter") {
                if let Some(i) = filter.to_ascii_lowercase().find(" and ") {
                    filter.truncate(i);
                }
            }
        },
    ),
    Quirk::refusal(
        "scim-filter-no-ordering",
        "filters with gt, ge, lt or le are refused (RFC 7644 §3.4.2.2)",
        |call| {
            if has_word(call, &[" gt ", " ge ", " lt ", " le "]) {
                return refuse(
                    400,
                    Some(ScimType::InvalidFilter),
                    "gt, ge, lt and le are not supported",
                );
            }
            None
        },
    ),
    Quirk::rewrite(
        "scim-filter-no-not",
        "`not (...)` in a filter is read as `(...)` (RFC 7644 §3.4.2.2)",
        |call| {
            if let Some(filter) = call.param_mut("filter") {
                *filter = replace_ci(&replace_ci(filter, "not (", "("), "not(", "(");
            }
        },
    ),
    Quirk::rewrite(
        "scim-filter-primary-value-only",
        "`emails.value` in a filter looks at the primary email only (RFC 7644 §3.4.2.2)",
        |call| {
            if let Some(filter) = call.param_mut("filter") {
                *filter = replace_ci(filter, "emails.value", "emails[primary eq true].value");
            }
        },
    ),
    Quirk::refusal(
        "scim-filter-keywords-refused",
        "filters comparing with true, false or null are refused (RFC 7644 §3.4.2.2)",
        |call| {
            let keywords = [" true ", " false ", " null ", " true)", " false)", " null)"];
            if has_word(call, &keywords) {
                return refuse(
                    400,
                    Some(ScimType::InvalidFilter),
                    "compare with strings only",
                );
            }
            None
        },
    ),
    Quirk::answer(
        "scim-filter-case-exact",
        "`userName eq` compares case-sensitively (RFC 7643 §4.1)",
        |call, a| {
            let Some(name) = call.param("filter").and_then(user_name_literal) else {
                return;
            };
            let Some(o) = a.list(call) else { return };
            if let Some(items) = o.get_mut("Resources").and_then(Value::as_array_mut) {
                items.retain(|r| r["userName"] == json!(name));
                let n = items.len();
                o.insert("totalResults".into(), json!(n));
            }
        },
    ),
    Quirk::refusal(
        "scim-value-filters-refused",
        "a filter with a value path (`emails[value eq ...]`) is refused (RFC 7644 §3.4.2.2)",
        |call| {
            if call.param("filter").is_some_and(|f| f.contains('[')) {
                return refuse(
                    400,
                    Some(ScimType::InvalidFilter),
                    "value filters are not supported",
                );
            }
            None
        },
    ),
    Quirk::refusal(
        "scim-urn-paths-refused",
        "fully qualified attribute URNs are refused in parameters and PATCH (RFC 7644 §3.10)",
        |call| {
            let in_query = call.params.iter().any(|(k, v)| {
                ["filter", "attributes", "excludedAttributes", "sortBy"].contains(&k.as_str())
                    && v.to_ascii_lowercase().contains("urn:")
            });
            let in_patch = call.method == Method::PATCH
                && call.body.as_ref().is_some_and(|b| {
                    b.to_string()
                        .contains("urn:ietf:params:scim:schemas:extension")
                });
            if in_query || in_patch {
                return refuse(
                    400,
                    Some(ScimType::InvalidPath),
                    "attribute URNs are not supported",
                );
            }
            None
        },
    ),
    Quirk::rewrite(
        "scim-attributes-ignored",
        "attributes and excludedAttributes are ignored (RFC 7644 §3.4.2.5)",
        |call| {
            call.drop_params(&["attributes", "excludedAttributes"]);
        },
    ),
    Quirk::answer(
        "scim-attributes-strict",
        "with attributes, or excludedAttributes=id, id is left out (RFC 7643 §2.2)",
        |call, a| {
            let drops_id = call.param("attributes").is_some()
                || call
                    .param("excludedAttributes")
                    .is_some_and(|x| x.split(',').any(|a| a.trim().eq_ignore_ascii_case("id")));
            if drops_id {
                a.each_resource(call, |r| drop(r.remove("id")));
            }
        },
    ),
    Quirk::answer(
        "scim-sort-reversed",
        "sorted results come in reverse (RFC 7644 §3.4.2.3)",
        |call, a| {
            if call.param("sortBy").is_none() {
                return;
            }
            if let Some(o) = a.list(call) {
                if let Some(items) = o.get_mut("Resources").and_then(Value::as_array_mut) {
                    items.reverse();
                }
            }
        },
    ),
    Quirk::rewrite(
        "scim-no-paging",
        "startIndex and count are ignored (RFC 7644 §3.4.2.4)",
        |call| {
            call.drop_params(&["startIndex", "count"]);
        },
    ),
];

/// Whether the filter holds one of `words` (lower case, padded with the spaces or parenthesis
/// around them).
fn has_word(call: &Call<'_>, words: &[&str]) -> bool {
    let filter = call.param("filter").unwrap_or("").to_ascii_lowercase();
    let padded = format!(" {filter} ");
    words.iter().any(|w| padded.contains(w))
}

/// `text` with every case-insensitive occurrence of `from` (ASCII) replaced by `to`.
fn replace_ci(text: &str, from: &str, to: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(i) = lower[at..].find(from) {
        out.push_str(&text[at..at + i]);
        out.push_str(to);
        at += i + from.len();
    }
    out.push_str(&text[at..]);
    out
}

/// The literal of a filter `userName eq "..."`, when the filter is exactly that.
fn user_name_literal(filter: &str) -> Option<String> {
    let rest = filter
        .trim()
        .strip_prefix("userName eq ")
        .or_else(|| filter.trim().strip_prefix("USERNAME EQ "))?;
    serde_json::from_str::<String>(rest.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_ignores_case_and_keeps_the_rest() {
        assert_eq!(
            replace_ci("a NOT (b) and not(c)", "not (", "("),
            "a (b) and not(c)"
        );
        assert_eq!(
            replace_ci("EMAILS.VALUE co \"x\"", "emails.value", "e"),
            "e co \"x\""
        );
    }

    #[test]
    fn a_user_name_literal_is_read_only_from_a_plain_eq() {
        assert_eq!(
            user_name_literal(r#"userName eq "Ab\"c""#),
            Some("Ab\"c".into())
        );
        assert_eq!(user_name_literal(r#"userName eq "a" and x pr"#), None);
    }
}
