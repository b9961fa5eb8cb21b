//! What every connector must do alike, whatever its product: tests written once over the
//! `Connector` trait, run by each mock's test file through `connector_contract!`.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{ScimCalls, USER};

/// Calls to the product itself, with its admin token.
#[allow(async_fn_in_trait)] // test worlds only, never sent across threads
pub trait ProductCalls {
    async fn product(&self, method: Method, path: &str, body: Option<Value>)
        -> (StatusCode, Value);

    /// The simulator's view of what `username` may do (`/_sim/permissions`).
    async fn sim_permissions(&self, username: &str) -> Value {
        let path = format!("/_sim/permissions/username:{username}");
        let (status, body) = self.product(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Whether the simulator's audit chain verifies.
    async fn audit_chain_is_valid(&self) -> bool {
        let (_, chain) = self.product(Method::GET, "/_sim/events/verify", None).await;
        chain["valid"] == true
    }
}

/// A product with its SCIM connector, started for a test.
#[allow(async_fn_in_trait)] // test worlds only, never sent across threads
pub trait Connector: ScimCalls + ProductCalls + Sized {
    /// A policy under which group `a` grants something and group `b` the same and more.
    const OVERLAPPING_POLICY: &'static str;

    /// Starts the product and its connector under `policy` (the built-in one when `None`),
    /// keeping their data in `data` (durably) when given.
    async fn start(policy: Option<&str>, data: Option<&Path>) -> Self;
    async fn stop(self);
    /// What the product grants `username` now, as it reports it: one entry per grant.
    async fn grants(&self, username: &str) -> BTreeSet<String>;
    /// Creates `username` in the product itself, named "Left Behind", as a crash between the
    /// native create and the connector's link would leave it.
    async fn leave_behind(&self, username: &str, external_id: &str);
    /// The display names of the product's accounts called `username`.
    async fn accounts(&self, username: &str) -> Vec<String>;
}

/// Writes one `#[tokio::test]` per contract test for the connector type `$world`.
#[macro_export]
macro_rules! connector_contract {
    ($world:ty) => {
        mod contract {
            use $crate::connector as c;

            #[tokio::test]
            async fn a_grant_from_two_groups_survives_losing_one() {
                c::a_grant_from_two_groups_survives_losing_one::<$world>().await;
            }

            #[tokio::test]
            async fn a_retried_create_adopts_what_a_crash_left_behind() {
                c::a_retried_create_adopts_what_a_crash_left_behind::<$world>().await;
            }

            #[tokio::test]
            async fn a_restart_keeps_users_groups_and_their_links() {
                c::a_restart_keeps_users_groups_and_their_links::<$world>().await;
            }
        }
    };
}

pub async fn a_grant_from_two_groups_survives_losing_one<C: Connector>() {
    let w = C::start(Some(C::OVERLAPPING_POLICY), None).await;
    let cy = w.user("cy").await;
    let dee = w.user("dee").await;
    let a = w.group("A", "a", &[&cy, &dee]).await;
    let b = w.group("B", "b", &[&cy]).await;
    let from_a = w.grants("dee").await;
    let from_both = w.grants("cy").await;
    assert!(!from_a.is_empty(), "group a grants something");
    assert!(
        from_a.is_subset(&from_both) && from_a != from_both,
        "b grants more: {from_a:?} {from_both:?}"
    );
    let (status, _) = w.scim(Method::DELETE, &format!("/Groups/{b}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(w.grants("cy").await, from_a, "what a grants too stays");
    let (status, _) = w.scim(Method::DELETE, &format!("/Groups/{a}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(w.grants("cy").await, BTreeSet::new());
    w.stop().await;
}

/// A crash between the product's create and the connector's own write leaves an account
/// behind: the IdP's retried create adopts it; a namesake with another externalId is refused.
pub async fn a_retried_create_adopts_what_a_crash_left_behind<C: Connector>() {
    let w = C::start(None, None).await;
    w.leave_behind("olga", "x-olga").await;
    w.leave_behind("nina", "someone-else").await;
    let olga = w.user("olga").await;
    assert_eq!(
        w.accounts("olga").await,
        ["Given olga"],
        "one account, brought up to the create"
    );
    let (status, body) = w
        .patch(
            &format!("/Users/{olga}"),
            json!([{"op": "replace", "path": "displayName", "value": "Olga"}]),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the adopted account is linked: {body}"
    );
    let (status, body) = w
        .scim(
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": "nina", "externalId": "x-nina"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "someone else's account: {body}"
    );
    assert_eq!(w.accounts("nina").await, ["Left Behind"], "left alone");
    w.stop().await;
}

pub async fn a_restart_keeps_users_groups_and_their_links<C: Connector>() {
    let dir = tempfile::tempdir().unwrap();
    let (ann, eng, granted) = {
        let w = C::start(None, Some(dir.path())).await;
        let ann = w.user("ann").await;
        let eng = w.group("Engineering", "engineering", &[&ann]).await;
        let granted = w.grants("ann").await;
        assert!(!granted.is_empty(), "Engineering grants something");
        w.stop().await;
        (ann, eng, granted)
    };
    let w = C::start(None, Some(dir.path())).await;
    assert_eq!(w.grants("ann").await, granted);
    let (status, _) = w.scim(Method::GET, &format!("/Users/{ann}"), None).await;
    assert_eq!(status, StatusCode::OK);
    // The links survived too: a change after the restart reaches the same group.
    let (status, _) = w
        .patch(
            &format!("/Groups/{eng}"),
            json!([{"op": "remove", "path": "members"}]),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(w.grants("ann").await, BTreeSet::new());
    assert!(w.audit_chain_is_valid().await);
    w.stop().await;
}
