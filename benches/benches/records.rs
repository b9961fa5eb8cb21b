//! A mock's record store (`mockkit::sim::RecordStore`, behind the IdP and both mocks): one
//! change of one record and its audit event, and of three records and theirs, in a store
//! already holding 1,000 records and their events. Background durability: CPU costs.
use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, Criterion};
use mockkit::sim::{RecordState, RecordStore};
use scim::error::ScimError;
use serde_json::{json, Value};

#[derive(Default)]
struct Records(BTreeMap<String, Value>);

impl RecordState for Records {
    type Record = (String, Value);
    type Error = ScimError;
    fn key(record: &Self::Record) -> String {
        record.0.clone()
    }
    fn put(&mut self, record: Self::Record) {
        self.0.insert(record.0, record.1);
    }
    fn remove(&mut self, record: &Self::Record) {
        self.0.remove(&record.0);
    }
    fn records(&self) -> Vec<Self::Record> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// About the size of the IdP's user record.
fn record(i: usize, round: usize) -> (String, Value) {
    (
        format!("user/{i:06}"),
        json!({"id": format!("00u{i:017}"), "status": "ACTIVE", "round": round,
               "profile": {"login": format!("user{i:06}@example.com"), "firstName": "Ada",
                           "lastName": format!("Lovelace{i}"), "email": format!("user{i:06}@example.com")},
               "created": "2026-12-05T00:00:00.000Z", "lastUpdated": "2026-12-05T00:00:00.000Z"}),
    )
}

fn changes(c: &mut Criterion) {
    let Ok(store) = RecordStore::<Records>::temporary() else {
        panic!("cannot open a temporary store")
    };
    let write = |keys: usize, round: usize| {
        let outcome = store.change_replayable(|_, c| {
            for k in 0..keys {
                let (key, value) = record((round * 7 + k * 13) % 1000, round);
                c.event("user.updated", &key, json!({"round": round, "keys": keys}));
                c.put((key, value));
            }
            Ok::<(), ScimError>(())
        });
        if let Err(e) = outcome {
            panic!("a change failed: {e}")
        }
    };
    for round in 0..1000 {
        write(1, round);
    }
    let mut round = 1000;
    let mut group = c.benchmark_group("record_store");
    for (keys, name) in [
        (1, "one_record_and_its_event"),
        (3, "three_records_and_their_events"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                round += 1;
                write(keys, round);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, changes);
criterion_main!(benches);
