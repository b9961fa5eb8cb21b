//! Filter parsing and evaluation.
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use scim::filter::Filter;
use scim::schema::user_resource;
use serde_json::json;

const FILTERS: &[(&str, &str)] = &[
    ("okta_lookup", r#"userName eq "alice@example.com""#),
    (
        "entra_lookup",
        r#"emails[type eq "work"].value eq "alice@example.com" and externalId eq "0042""#,
    ),
    (
        "nested",
        r#"(title co "eng" or userName sw "a") and not (active eq false) and meta.lastModified gt "2024-01-01T00:00:00Z""#,
    ),
];

fn filters(c: &mut Criterion) {
    let def = user_resource();
    let doc = json!({
        "userName": "alice@example.com", "externalId": "0042", "active": true, "title": "Engineer",
        "emails": [{"value": "alice@example.com", "type": "work"}, {"value": "a@home.example", "type": "home"}],
        "meta": {"lastModified": "2025-05-01T10:00:00Z"}
    });
    let doc = doc.as_object().cloned().unwrap_or_default();
    let mut parse = c.benchmark_group("filter_parse");
    for (name, text) in FILTERS {
        parse.bench_function(*name, |b| b.iter(|| Filter::parse(black_box(text))));
    }
    parse.finish();
    let mut eval = c.benchmark_group("filter_eval");
    for (name, text) in FILTERS {
        let Ok(f) = Filter::parse(text) else { continue };
        let Ok(compiled) = f.compile(&def) else {
            continue;
        };
        eval.bench_function(*name, |b| b.iter(|| compiled.matches(black_box(&doc))));
    }
    eval.finish();
}

criterion_group!(benches, filters);
criterion_main!(benches);
