//! The provider's store paths at 1k, 10k and 100k users: create, get by id, and `userName eq`
//! lookups, which go through the in-memory index and must cost the same at every size.
//! Durability here is the background mode, so these are CPU costs; the durable (flushed) rate
//! is measured over HTTP by `benches/load.sh`.
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use scim::provider::{Provider, ProviderConfig};
use scim::query::ListQuery;
use scim::Durability;
use serde_json::json;

const USERS: usize = 0;

fn user(i: usize) -> serde_json::Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("user{i:06}@example.com"),
           "externalId": format!("ext-{i}"), "active": true, "name": {"givenName": "U", "familyName": format!("N{i}")},
           "emails": [{"value": format!("user{i:06}@example.com"), "type": "work", "primary": true}]})
}

fn populated(rt: &tokio::runtime::Runtime, n: usize) -> (Provider, Vec<String>) {
    let config = ProviderConfig {
        durability: Durability::Background,
        ..Default::default()
    };
    let Ok(p) = Provider::temporary(config) else {
        panic!("cannot open a temporary store")
    };
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        if let Ok(v) = rt.block_on(p.create(USERS, &user(i))) {
            ids.push(v.id);
        }
    }
    (p, ids)
}

fn store(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    let mut group = c.benchmark_group("store");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for n in [1_000, 10_000, 100_000] {
        let (p, ids) = populated(&rt, n);
        let mut next = n;
        group.bench_with_input(BenchmarkId::new("create", n), &n, |b, _| {
            b.iter(|| {
                next += 1;
                rt.block_on(p.create(USERS, &user(next)))
            })
        });
        let id = &ids[ids.len() / 2];
        group.bench_with_input(BenchmarkId::new("get_by_id", n), &n, |b, _| {
            b.iter(|| p.get(USERS, black_box(id)))
        });
        let q = ListQuery {
            filter: Some(format!("userName eq \"USER{:06}@EXAMPLE.COM\"", n / 2)),
            start_index: 1,
            ..Default::default()
        };
        group.bench_with_input(BenchmarkId::new("username_eq_lookup", n), &n, |b, _| {
            b.iter(|| p.list(Some(USERS), black_box(&q)))
        });
    }
    group.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);
