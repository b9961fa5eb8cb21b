//! Filters over HTTP (RFC 7644 §3.4.2.2).
use super::*;

async fn people() -> Server {
    let s = Server::start().await;
    for (name, title, active, emp) in [
        ("alice", "Engineer", true, "100"),
        ("Bob", "Manager", false, "200"),
        ("carol", "engineer", true, "300"),
        ("dave", "", true, ""),
    ] {
        let mut body = user_body(name);
        if !title.is_empty() {
            body["title"] = json!(title);
        }
        body["active"] = json!(active);
        if !emp.is_empty() {
            body["schemas"] = json!([USER, ENT]);
            body[ENT] = json!({"employeeNumber": emp});
        }
        body["externalId"] = json!(format!("EXT-{name}"));
        assert_eq!(s.post("/Users", body).await.status, 201);
    }
    s
}

async fn check(s: &Server, filter: &str, expected: &[&str]) {
    assert_eq!(
        s.users_matching(filter).await,
        expected.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "{filter}"
    );
}

#[tokio::test]
async fn p_filter_01_to_04_every_operator() {
    let s = people().await;
    check(&s, r#"userName eq "alice""#, &["alice"]).await;
    check(&s, r#"userName ne "alice""#, &["Bob", "carol", "dave"]).await;
    check(&s, r#"title co "gine""#, &["alice", "carol"]).await;
    check(&s, r#"userName sw "b""#, &["Bob"]).await;
    check(&s, r#"userName ew "OL""#, &["carol"]).await;
    check(&s, r#"title pr"#, &["Bob", "alice", "carol"]).await;
    check(&s, r#"userName gt "bob""#, &["carol", "dave"]).await;
    check(&s, r#"userName ge "bob""#, &["Bob", "carol", "dave"]).await;
    check(&s, r#"userName lt "bob""#, &["alice"]).await;
    check(&s, r#"userName le "bob""#, &["Bob", "alice"]).await;
    check(
        &s,
        r#"meta.created gt "2000-01-01T00:00:00Z""#,
        &["Bob", "alice", "carol", "dave"],
    )
    .await;
    check(&s, r#"meta.created lt "2000-01-01T00:00:00+01:00""#, &[]).await;
}

#[tokio::test]
async fn p_filter_05_12_ordering_booleans_and_bad_syntax_are_invalid_filter() {
    let s = people().await;
    for f in [
        "active gt true",
        "userName eq",
        "userName xx \"a\"",
        "(userName pr",
        "userName eq \"a\" )",
        "emails[type eq \"work\"",
        "title eq unquoted",
    ] {
        let r = s.get(&format!("/Users?filter={}", urlencode(f))).await;
        r.assert_error(400, Some("invalidFilter"));
        assert!(
            r.body["detail"].as_str().unwrap().contains("offset") || f.starts_with("active"),
            "{f}: {}",
            r.body["detail"]
        );
    }
}

#[tokio::test]
async fn p_filter_06_07_i_okta_02_case_rules() {
    let s = people().await;
    check(&s, r#"USERNAME EQ "ALICE""#, &["alice"]).await;
    check(&s, r#"externalId eq "ext-alice""#, &[]).await;
    check(&s, r#"externalId eq "EXT-alice""#, &["alice"]).await;
    check(&s, r#"title eq "ENGINEER""#, &["alice", "carol"]).await;
}

#[tokio::test]
async fn p_filter_08_09_precedence_and_grouping() {
    let s = people().await;
    check(
        &s,
        r#"userName eq "dave" or title pr and active eq false"#,
        &["Bob", "dave"],
    )
    .await;
    check(
        &s,
        r#"(userName eq "dave" or title pr) and active eq false"#,
        &["Bob"],
    )
    .await;
    check(
        &s,
        r#"not (title pr) or userName eq "alice""#,
        &["alice", "dave"],
    )
    .await;
    check(
        &s,
        r#"not (userName eq "alice" or userName eq "Bob")"#,
        &["carol", "dave"],
    )
    .await;
}

#[tokio::test]
async fn p_filter_10_11_13_multi_valued_complex_and_literals() {
    let s = people().await;
    check(
        &s,
        r#"emails.value co "@corp""#,
        &["Bob", "alice", "carol", "dave"],
    )
    .await;
    check(
        &s,
        r#"emails[type eq "work" and value sw "car"]"#,
        &["carol"],
    )
    .await;
    check(&s, r#"name.givenName eq "alice""#, &["alice"]).await;
    check(&s, r#"title eq "a \"quoted\" title""#, &[]).await;
    check(&s, r#"active eq true and title eq null"#, &["dave"]).await;
}

#[tokio::test]
async fn p_filter_14_and_i_entra_05_schema_and_idp_filters() {
    let s = people().await;
    check(
        &s,
        &format!("schemas eq \"{ENT}\""),
        &["Bob", "alice", "carol"],
    )
    .await;
    check(
        &s,
        r#"userName eq "alice" and externalId eq "EXT-alice""#,
        &["alice"],
    )
    .await;
    check(
        &s,
        r#"emails[type eq "work"].value eq "carol@corp.example""#,
        &["carol"],
    )
    .await;
    check(&s, &format!("{ENT}:employeeNumber eq \"200\""), &["Bob"]).await;
}

#[tokio::test]
async fn x_info_01_unknown_attributes_are_an_invalid_filter() {
    let s = people().await;
    s.get("/Users?filter=shoeSize%20eq%20%2242%22")
        .await
        .assert_error(400, Some("invalidFilter"));
}
