//! The provisioning engine over HTTP against a recording SCIM server: the exact wire traffic of
//! each dialect for a whole lifecycle (insta snapshots), retries, parking, ordering per user
//! under concurrency, and a kill -9 in the middle of a drain.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{fast_engine, start_idp, Api, Recorder};
use serde_json::{json, Value};

/// Replaces ids that change per run with stable names.
fn normalise(tape: Vec<Value>, names: &[(String, &str)]) -> Value {
    let mut text = serde_json::to_string(&tape).unwrap();
    for (id, name) in names {
        text = text.replace(id.as_str(), name);
    }
    serde_json::from_str(&text).unwrap()
}

/// Joiner, profile change, group push, rename, deactivate, reactivate, leaver: each step
/// drained before the next, so the tape is in a fixed order. Returns the normalised tape and
/// the target's final user.
async fn lifecycle(dialect: &str) -> (Value, Value) {
    let rec = Recorder::start().await;
    let idp = start_idp(fast_engine()).await;
    let api = Api::new(&idp.url);
    let app = api.scim_app("Target", dialect, &rec.url).await;

    let ann = api.hire("ann@example.test", "Ann", "Lee").await;
    api.assign(&app, &ann).await;
    api.drained(&app, 10).await;

    api.update_profile(&ann, json!({"lastName": "Lee-Smith", "title": "Engineer"}))
        .await;
    api.drained(&app, 10).await;

    let group = api
        .ok(
            "POST",
            "/api/v1/groups",
            Some(json!({"profile": {"name": "Engineering"}})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.ok("PUT", &format!("/api/v1/groups/{group}/users/{ann}"), None)
        .await;
    let push = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{app}/group-push/mappings"),
            Some(json!({"sourceGroupId": group})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.drained(&app, 10).await;

    api.ok(
        "PUT",
        &format!("/api/v1/groups/{group}"),
        Some(json!({"profile": {"name": "Platform"}})),
    )
    .await;
    api.drained(&app, 10).await;

    api.ok(
        "POST",
        &format!("/api/v1/users/{ann}/lifecycle/deactivate"),
        None,
    )
    .await;
    api.drained(&app, 10).await;
    api.ok(
        "POST",
        &format!("/api/v1/users/{ann}/lifecycle/activate"),
        None,
    )
    .await;
    api.drained(&app, 10).await;

    let scim_ann = api.target_id(&app, &ann).await;
    let scim_group = api
        .ok(
            "GET",
            &format!("/api/v1/apps/{app}/group-push/mappings/{push}"),
            None,
        )
        .await["targetGroupId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tape = rec.tape.take();
    let final_user = rec.get(&format!("/Users/{scim_ann}")).await;
    rec.tape.take();

    // Leaver: Okta's first DELETE deactivates, the second deletes.
    api.ok("DELETE", &format!("/api/v1/users/{ann}"), None)
        .await;
    api.ok("DELETE", &format!("/api/v1/users/{ann}"), None)
        .await;
    api.drained(&app, 10).await;

    tape.extend(rec.tape.take());
    let names = [
        (scim_ann, "<ann in target>"),
        (scim_group, "<group in target>"),
        (ann, "<ann in idp>"),
        (group, "<group in idp>"),
    ];
    let tape = normalise(tape, &names);
    idp.stop().await;
    (tape, final_user)
}

#[tokio::test]
async fn okta_dialect_wire_traffic() {
    let (tape, user) = lifecycle("okta").await;
    insta::assert_json_snapshot!("okta_lifecycle", tape);
    assert_eq!(user["active"], true);
    assert_eq!(user["title"], "Engineer");
    assert_eq!(user["name"]["familyName"], "Lee-Smith");
    // Okta never deletes a user in the target.
    let methods: Vec<&str> = tape
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    assert!(!methods.contains(&"DELETE"), "{methods:?}");
}

#[tokio::test]
async fn entra_dialect_wire_traffic() {
    let (tape, user) = lifecycle("entra").await;
    insta::assert_json_snapshot!("entra_lifecycle", tape);
    assert_eq!(user["active"], true);
    assert_eq!(user["name"]["familyName"], "Lee-Smith");
    let last = tape.as_array().unwrap().last().unwrap();
    assert_eq!(last["method"], "DELETE");
    assert_eq!(last["path"], "/Users/<ann in target>");
}

/// Entra cannot provision a null attribute (its known issues): clearing one sends nothing for
/// it, and a change that only clears sends no request at all. Okta's full PUT drops it.
#[tokio::test]
async fn a_cleared_attribute_is_skipped_by_entra_and_dropped_by_okta() {
    for dialect in ["entra", "okta"] {
        let rec = Recorder::start().await;
        let idp = start_idp(fast_engine()).await;
        let api = Api::new(&idp.url);
        let app = api.scim_app("Target", dialect, &rec.url).await;
        let ann = api.hire("ann@example.test", "Ann", "Lee").await;
        api.update_profile(&ann, json!({"title": "Engineer"})).await;
        api.assign(&app, &ann).await;
        api.drained(&app, 10).await;
        let scim_id = api.target_id(&app, &ann).await;
        rec.tape.take();
        api.update_profile(&ann, json!({"title": null})).await;
        api.drained(&app, 10).await;
        let cleared_only = rec.tape.take();
        api.update_profile(&ann, json!({"lastName": "Lee-Smith"}))
            .await;
        api.drained(&app, 10).await;
        let updated = rec.tape.take();
        let names = [
            (scim_id.clone(), "<ann in target>"),
            (ann.clone(), "<ann in idp>"),
        ];
        let tape = normalise([cleared_only.clone(), updated].concat(), &names);
        insta::assert_json_snapshot!(format!("{dialect}_null_update"), tape);
        let user = rec.get(&format!("/Users/{scim_id}")).await;
        match dialect {
            "entra" => {
                assert!(cleared_only.is_empty(), "entra: {cleared_only:?}");
                assert_eq!(user["title"], "Engineer", "entra leaves the old value");
            }
            _ => assert!(user.get("title").is_none(), "okta: {user}"),
        }
        assert_eq!(user["name"]["familyName"], "Lee-Smith", "{dialect}");
        idp.stop().await;
    }
}

/// Entra's manager is a reference: a PATCH after the create links the report to the manager's
/// id in the target, as a plain string; a new manager is a new PATCH.
#[tokio::test]
async fn entra_links_a_manager_by_its_target_id() {
    let rec = Recorder::start().await;
    let idp = start_idp(fast_engine()).await;
    let api = Api::new(&idp.url);
    let app = api.scim_app("Target", "entra", &rec.url).await;
    let boss = api.hire("boss@example.test", "Bo", "Ss").await;
    let carol = api.hire("carol@example.test", "Carol", "Ng").await;
    api.assign(&app, &boss).await;
    api.assign(&app, &carol).await;
    api.drained(&app, 10).await;
    rec.tape.take();

    let ann = api.hire("ann@example.test", "Ann", "Lee").await;
    api.update_profile(&ann, json!({"managerId": boss})).await;
    api.assign(&app, &ann).await;
    api.drained(&app, 10).await;
    // A new manager named by login; then one who is not in the app: nothing is sent for them.
    api.update_profile(&ann, json!({"managerId": "carol@example.test"}))
        .await;
    api.drained(&app, 10).await;
    let outsider = api.hire("dan@example.test", "Dan", "Po").await;
    api.update_profile(&ann, json!({"managerId": outsider}))
        .await;
    api.drained(&app, 10).await;

    let scim_ann = api.target_id(&app, &ann).await;
    let scim_boss = api.target_id(&app, &boss).await;
    let scim_carol = api.target_id(&app, &carol).await;
    let tape = rec.tape.take();
    let user = rec.get(&format!("/Users/{scim_ann}")).await;
    let names = [
        (scim_ann, "<ann in target>"),
        (scim_boss.clone(), "<boss in target>"),
        (scim_carol.clone(), "<carol in target>"),
        (ann, "<ann in idp>"),
    ];
    let tape = normalise(tape, &names);
    insta::assert_json_snapshot!("entra_manager", tape);
    let manager = &user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"];
    assert_eq!(manager["value"], scim_carol.as_str(), "{user}");
    assert_ne!(manager["value"], scim_boss.as_str());
    idp.stop().await;
}

#[tokio::test]
async fn assigning_a_group_provisions_its_members_and_features_gate_each_operation() {
    let rec = Recorder::start().await;
    let idp = start_idp(fast_engine()).await;
    let api = Api::new(&idp.url);
    let app = api.scim_app("Target", "okta", &rec.url).await;
    let group = api
        .ok(
            "POST",
            "/api/v1/groups",
            Some(json!({"profile": {"name": "Sales"}})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = api.hire("bob@example.test", "Bob", "Ng").await;
    let cy = api.hire("cy@example.test", "Cy", "Ode").await;
    for u in [&bob, &cy] {
        api.ok("PUT", &format!("/api/v1/groups/{group}/users/{u}"), None)
            .await;
    }
    assert!(rec.users().await.is_empty(), "nothing is assigned yet");
    api.ok(
        "PUT",
        &format!("/api/v1/apps/{app}/groups/{group}"),
        Some(json!({})),
    )
    .await;
    api.drained(&app, 10).await;
    assert_eq!(rec.users().await.len(), 2);
    let listed = api
        .ok("GET", &format!("/api/v1/apps/{app}/users"), None)
        .await;
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["scope"] == "GROUP"
            && u["syncState"] == "SYNCHRONIZED"
            && u["externalId"].is_string()));

    // Profile pushes off: a rename stays in the IdP.
    api.ok(
        "PUT",
        &format!("/api/v1/apps/{app}/features/USER_PROVISIONING"),
        Some(json!({"capabilities": {"update": {"profile": {"status": "DISABLED"}}}})),
    )
    .await;
    rec.tape.take();
    api.update_profile(&bob, json!({"firstName": "Robert"}))
        .await;
    // Leaving the assigned group is a leaver for the app: deactivated, never deleted.
    api.ok(
        "DELETE",
        &format!("/api/v1/groups/{group}/users/{cy}"),
        None,
    )
    .await;
    api.drained(&app, 10).await;
    let tape = rec.tape.take();
    assert_eq!(tape.len(), 1, "{tape:?}");
    assert_eq!(tape[0]["method"], "PATCH");
    assert_eq!(tape[0]["body"]["Operations"][0]["value"]["active"], false);
    idp.stop().await;
}

#[tokio::test]
async fn retries_honour_retry_after_then_park_and_resume_on_request() {
    let rec = Recorder::start().await;
    let idp = start_idp(fast_engine()).await;
    let api = Api::new(&idp.url);
    let app = api.scim_app("Target", "okta", &rec.url).await;

    rec.tape
        .fail_next(&[(503, None), (429, Some("1")), (500, None)]);
    let started = Instant::now();
    let dee = api.hire("dee@example.test", "Dee", "Fox").await;
    api.ok(
        "POST",
        &format!("/api/v1/apps/{app}/users"),
        Some(json!({"id": dee})),
    )
    .await;
    api.drained(&app, 10).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );
    let pushed = api
        .logs("eventType eq \"application.provision.user.push\"")
        .await;
    assert_eq!(pushed.len(), 1);
    let debug = &pushed[0]["debugContext"]["debugData"];
    assert_eq!(debug["attempts"], 4);
    assert_eq!(pushed[0]["outcome"]["result"], "SUCCESS");
    assert!(debug["latencyMs"].as_f64().unwrap() >= 1000.0);
    assert_eq!(rec.users().await.len(), 1);

    // A 400 is not retried: the entry is parked, the user's next change waits behind it.
    rec.tape.fail_next(&[(400, None)]);
    api.update_profile(&dee, json!({"title": "Lead"})).await;
    api.ok(
        "POST",
        &format!("/api/v1/users/{dee}/lifecycle/deactivate"),
        None,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let parked = loop {
        let parked = api
            .ok(
                "GET",
                &format!("/api/v1/apps/{app}/outbox?status=PARKED"),
                None,
            )
            .await;
        if !parked.as_array().unwrap().is_empty() {
            break parked;
        }
        assert!(Instant::now() < deadline, "nothing parked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(parked[0]["type"], "application.provision.user.push_profile");
    assert!(parked[0]["lastError"].as_str().unwrap().contains("400"));
    assert_eq!(
        api.outbox(&app).await.len(),
        2,
        "the deactivation waits behind it"
    );
    let failed = api.logs("outcome.result eq \"FAILURE\"").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["severity"], "WARN");
    let app_user = api
        .ok("GET", &format!("/api/v1/apps/{app}/users/{dee}"), None)
        .await;
    assert_eq!(app_user["syncState"], "ERROR");

    let retried = api
        .ok("POST", &format!("/api/v1/apps/{app}/outbox/retry"), None)
        .await;
    assert_eq!(retried["retried"], 1);
    api.drained(&app, 10).await;
    let user = &rec.users().await[0];
    assert_eq!(user["title"], "Lead");
    assert_eq!(user["active"], false);

    // Attempts run out: parked after max_attempts (4) tries of a 5xx.
    rec.tape.fail_next(&[(502, None); 4]);
    api.ok(
        "POST",
        &format!("/api/v1/users/{dee}/lifecycle/activate"),
        None,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = api.outbox(&app).await;
        if left.first().is_some_and(|e| e["status"] == "PARKED") {
            assert_eq!(left[0]["attempts"], 4);
            break;
        }
        assert!(Instant::now() < deadline, "not parked: {left:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    idp.stop().await;
}

#[tokio::test]
async fn order_per_user_holds_under_concurrency() {
    let rec = Recorder::start().await;
    *rec.tape.delay.lock().unwrap() = Duration::from_millis(2);
    let idp = start_idp(fast_engine()).await;
    let api = Api::new(&idp.url);
    let app = api.scim_app("Target", "entra", &rec.url).await;
    // Every request of one user's life is sent without waiting for delivery.
    let lives = (0..30).map(|i| {
        let api = api.clone();
        let app = app.clone();
        async move {
            let login = format!("u{i}@example.test");
            let id = api.hire(&login, "U", &format!("V{i}")).await;
            api.ok(
                "POST",
                &format!("/api/v1/apps/{app}/users"),
                Some(json!({"id": id})),
            )
            .await;
            api.update_profile(&id, json!({"title": "one"})).await;
            api.ok(
                "POST",
                &format!("/api/v1/users/{id}/lifecycle/deactivate"),
                None,
            )
            .await;
            api.ok(
                "POST",
                &format!("/api/v1/users/{id}/lifecycle/activate"),
                None,
            )
            .await;
            api.update_profile(&id, json!({"title": "two"})).await;
            login
        }
    });
    let logins = futures::future::join_all(lives).await;
    api.drained(&app, 30).await;

    let users = rec.users().await;
    assert_eq!(users.len(), 30);
    let by_id: BTreeMap<String, String> = users
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().to_owned(),
                u["userName"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rec.tape.take() {
        let path = r["path"].as_str().unwrap();
        let login = if r["method"] == "POST" {
            r["body"]["userName"].as_str().map(str::to_owned)
        } else {
            path.strip_prefix("/Users/")
                .and_then(|id| by_id.get(id).cloned())
        };
        let Some(login) = login else { continue };
        let step = match (r["method"].as_str().unwrap(), &r["body"]["Operations"][0]) {
            ("POST", _) => "create".to_owned(),
            ("PATCH", op) if op["path"] == "active" => {
                format!("active={}", op["value"].as_str().unwrap())
            }
            ("PATCH", op) if op["path"] == "title" => {
                format!("title={}", op["value"].as_str().unwrap())
            }
            (m, _) => m.to_owned(),
        };
        seen.entry(login).or_default().push(step);
    }
    for login in logins {
        assert_eq!(
            seen[&login],
            [
                "create",
                "title=one",
                "active=False",
                "active=True",
                "title=two"
            ],
            "{login}"
        );
    }
    for u in &users {
        assert_eq!(u["active"], true);
        assert_eq!(u["title"], "two");
    }
    idp.stop().await;
}
