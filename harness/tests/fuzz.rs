//! Fuzzing with proptest generators: everything a client or a scenario author can hand
//! scimlab's parsers (filters, PATCH paths and operations, resource bodies, the Okta search
//! expression, strict JSON, scenario YAML) is answered, never with a panic, a hang or
//! unbounded memory.
//!
//! `SCIMLAB_FUZZ_CASES` sets the cases per target: CI runs 2,000; the long run in
//! docs/security.md runs 150,000 per target (over 1,000,000 inputs in all).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use scim::filter::Filter;
use scim::json::{parse_unique, Keys};
use scim::patch::{apply_patch, parse_patch_request};
use scim::path::PatchPath;
use scim::resource::{normalize_resource, Leniency};
use scim::schema::{group_resource, user_resource};
use serde_json::{json, Map, Value};

/// One input that takes longer than this is a hang.
const SLOWEST_INPUT: Duration = Duration::from_secs(2);
/// The test process's peak resident memory may not pass this.
const MOST_MEMORY_KB: u64 = 1 << 20;

fn cases() -> u32 {
    std::env::var("SCIMLAB_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

/// Runs `check` on `cases()` inputs from `strategy`; fails on a panic, an input slower than
/// `SLOWEST_INPUT`, or a peak memory over `MOST_MEMORY_KB`.
fn fuzz<S: Strategy>(name: &str, strategy: S, check: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let started = Instant::now();
    runner
        .run(&strategy, |input| {
            let t = Instant::now();
            check(input);
            prop_assert!(t.elapsed() < SLOWEST_INPUT, "took {:?}", t.elapsed());
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let peak = common::peak_memory_kb();
    eprintln!(
        "{name}: {} inputs in {:.1} s, peak memory {} MB",
        cases(),
        started.elapsed().as_secs_f64(),
        peak / 1024
    );
    assert!(peak < MOST_MEMORY_KB, "{name}: peak memory {peak} kB");
}

/// Text made of a filter's own tokens, so the parser gets past its first byte.
fn filter_like() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "userName",
            "emails",
            "name.givenName",
            "meta.lastModified",
            "members",
            "value",
            "urn:ietf:params:scim:schemas:core:2.0:User:userName",
            "active",
            "x",
            "eq",
            "ne",
            "co",
            "sw",
            "ew",
            "gt",
            "ge",
            "lt",
            "le",
            "pr",
            "and",
            "or",
            "not",
            "(",
            ")",
            "[",
            "]",
            "\"a\"",
            "\"\\\"\"",
            "\"\\u0000\"",
            "true",
            "false",
            "null",
            "1",
            "-1.5e3",
            "2024-01-01T00:00:00Z",
            ".",
            " ",
            "  ",
        ])
        .prop_map(str::to_owned),
        "\\PC{1,3}",
    ];
    prop::collection::vec(token, 0..40).prop_map(|t| t.join(" "))
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![filter_like(), "\\PC{0,120}", ".{0,120}"]
}

/// Any JSON value, leaning to SCIM's attribute names.
fn scim_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "schemas",
            "userName",
            "USERNAME",
            "name",
            "givenName",
            "emails",
            "value",
            "type",
            "primary",
            "active",
            "members",
            "displayName",
            "externalId",
            "id",
            "meta",
            "groups",
            "password",
            "addresses",
            "formatted",
            "manager",
            "op",
            "path",
            "Operations",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z$.:\\[\\]]{1,10}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        Just(json!("urn:ietf:params:scim:schemas:core:2.0:User")),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn a_user() -> Map<String, Value> {
    let v = json!({"id": "u1", "userName": "alice", "active": true,
        "name": {"givenName": "Alice", "familyName": "Doe"},
        "emails": [{"value": "a@x.test", "type": "work", "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}});
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn filters() {
    let def = user_resource();
    let user = a_user();
    fuzz("filter", any_text(), |text| {
        if let Ok(f) = Filter::parse(&text) {
            let printed = f.to_string();
            let again = Filter::parse(&printed).expect("a printed filter parses");
            assert_eq!(again, f, "{text:?} printed as {printed:?}");
            if let Ok(compiled) = f.compile(&def) {
                let _ = compiled.matches(&user);
            }
        }
    });
}

#[test]
fn okta_search_expressions() {
    let user = json!({"id": "00u1", "status": "ACTIVE",
        "profile": {"login": "a@x.test", "email": "a@x.test", "firstName": "A", "lastName": "B",
            "department": "R&D", "tags": ["x", "y"]},
        "lastUpdated": "2026-01-01T00:00:00.000Z"});
    fuzz("okta search", any_text(), |text| {
        if let Ok(f) = Filter::parse(&text) {
            let _ = mock_idp::api::matches(&f, &user);
        }
    });
}

#[test]
fn patch_paths() {
    let path_like = prop::collection::vec(
        prop::sample::select(vec![
            "emails",
            "[",
            "]",
            "type eq \"work\"",
            ".",
            "value",
            "members",
            "value eq \"x\"",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:",
            "manager",
            "name",
            "givenName",
            " ",
            "\"",
            "not",
            "(",
            ")",
            "and",
        ]),
        0..12,
    )
    .prop_map(|t| t.concat());
    fuzz("patch path", prop_oneof![path_like, "\\PC{0,60}"], |text| {
        let _ = PatchPath::parse(&text);
    });
}

#[test]
fn patch_operations() {
    let (user_def, group_def) = (user_resource(), group_resource());
    let user = a_user();
    let group = json!({"id": "g1", "displayName": "Devs", "members": [{"value": "u1"}]});
    let group = group.as_object().cloned().unwrap_or_default();
    let op = (
        prop::sample::select(vec!["add", "replace", "remove", "Replace", "frob"]),
        prop::option::of(prop_oneof![
            prop::sample::select(vec![
                "emails",
                "emails[type eq \"work\"].value",
                "emails[primary eq true]",
                "members",
                "members[value eq \"u1\"]",
                "name.givenName",
                "active",
                "userName",
                "displayName",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                "meta.created",
            ])
            .prop_map(str::to_owned),
            "\\PC{0,20}",
        ]),
        scim_json(),
    )
        .prop_map(|(op, path, value)| {
            let mut o = json!({"op": op, "value": value});
            if let Some(p) = path {
                o["path"] = json!(p);
            }
            o
        });
    let body = prop::collection::vec(op, 0..8).prop_map(|ops| {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
    });
    fuzz("patch operations", body, |body| {
        if let Ok(ops) = parse_patch_request(&body) {
            let _ = apply_patch(&user_def, &user, &ops);
            let _ = apply_patch(&group_def, &group, &ops);
        }
    });
}

#[test]
fn resource_bodies() {
    let (user_def, group_def) = (user_resource(), group_resource());
    fuzz("resource body", scim_json(), |body| {
        for leniency in [
            Leniency::default(),
            Leniency {
                boolean_strings: true,
            },
        ] {
            if let Ok(n) = normalize_resource(&user_def, &body, leniency) {
                // What was accepted is a valid body in turn.
                let mut again = n.attrs.clone();
                again.insert(
                    "schemas".into(),
                    json!(["urn:ietf:params:scim:schemas:core:2.0:User"]),
                );
                let second = normalize_resource(&user_def, &Value::Object(again), leniency);
                assert!(second.is_ok(), "{body} accepted, then {second:?}");
            }
            let _ = normalize_resource(&group_def, &body, leniency);
        }
    });
}

#[test]
fn strict_json() {
    let bytes = prop_oneof![
        scim_json().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..200),
        "[\\[\\]{}\":,a-z0-9 ]{0,200}".prop_map(String::into_bytes),
    ];
    fuzz("strict json", bytes, |bytes| {
        for keys in [Keys::Exact, Keys::CaseInsensitive] {
            if let Ok(v) = parse_unique(&bytes, keys) {
                let plain: Value = serde_json::from_slice(&bytes).expect("serde_json agrees");
                assert_eq!(v, plain);
            }
        }
    });
}

#[test]
fn scenario_yaml() {
    let files: Vec<String> = std::fs::read_dir("../scenarios")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    assert!(files.len() >= 10, "the scenario library was not found");
    let count = files.len();
    // A real scenario, then a few edits: a line dropped, doubled or moved, text put in.
    let edit = (0..4u8, any::<prop::sample::Index>(), "\\PC{0,8}");
    let input = (0..count, prop::collection::vec(edit, 0..6));
    let path = std::path::Path::new("fuzz.yaml");
    fuzz("scenario yaml", input, |(file, edits)| {
        let mut lines: Vec<String> = files[file].lines().map(str::to_owned).collect();
        for (kind, at, text) in edits {
            if lines.is_empty() {
                break;
            }
            let i = at.index(lines.len());
            match kind {
                0 => {
                    lines.remove(i);
                }
                1 => lines.insert(i, lines[i].clone()),
                2 => {
                    let cut = lines[i]
                        .char_indices()
                        .nth(text.len() % 7)
                        .map_or(0, |c| c.0);
                    lines[i].insert_str(cut, &text);
                }
                _ => {
                    let line = lines.remove(i);
                    let j = (i + text.len()) % (lines.len() + 1);
                    lines.insert(j, format!("  {line}"));
                }
            }
        }
        let _ = harness::scenario::Scenario::parse(path, &lines.join("\n"));
    });
}
