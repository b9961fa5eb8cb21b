//! Every route of every server refuses a caller without valid credentials. The routes are read
//! from the routers themselves (axum prints its route table in `Debug`), not from a list kept
//! by hand, so a route added tomorrow is walked tomorrow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use reqwest::{Method, StatusCode};

const TOKEN: &str = "doors-admin-token";

/// Routes any caller may use: SCIM discovery, which RFC 7644 §4 lets a service provider
/// serve without authentication. (`/Me` authenticates, then answers 501.)
const OPEN: &[&str] = &[
    "/ServiceProviderConfig",
    "/ResourceTypes",
    "/ResourceTypes/{name}",
    "/Schemas",
    "/Schemas/{id}",
];

/// Routes where a client trades its own credentials for a token: no bearer opens them, and
/// bad credentials must get a 4xx and never a token.
const EXCHANGES: &[&str] = &[mock_idp::oauth::TOKEN_PATH];

/// The path patterns of a router's route table, fallbacks left out.
fn route_paths(router: &Router) -> Vec<String> {
    let table = format!("{router:?}");
    let routes = table
        .split("fallback_router:")
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut paths: Vec<String> = routes
        .split(": \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|p| p.starts_with('/'))
        .map(str::to_owned)
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// A concrete path for a pattern: every `{param}` and `{*rest}` becomes `x`.
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|s| if s.starts_with('{') { "x" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

fn is_open(pattern: &str) -> bool {
    let bare = pattern.strip_prefix("/v2").unwrap_or(pattern);
    OPEN.contains(&bare)
}

/// Calls every route of `router`, served at `base`, with every method and every kind of bad
/// credentials; returns what should have been refused and was not.
async fn walk(name: &str, base: &str, router: &Router) -> (usize, Vec<String>) {
    let client = scim::tls::ClientTls::default().client().unwrap();
    let bad: [(&str, Option<String>); 5] = [
        ("no credentials", None),
        ("a wrong bearer token", Some("Bearer not-the-token".into())),
        ("an empty bearer token", Some("Bearer ".into())),
        ("basic credentials", Some("Basic YWRtaW46YWRtaW4=".into())),
        (
            "the token under an unknown scheme",
            Some(format!("Token {TOKEN}")),
        ),
    ];
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let paths = route_paths(router);
    assert!(
        paths.len() > 5,
        "{name}: the route table could not be read: {paths:?}"
    );
    let mut wrong = Vec::new();
    for pattern in &paths {
        let url = format!("{base}{}", concrete(pattern));
        let mut refused = false;
        for method in &methods {
            for (what, header) in &bad {
                let mut req = client
                    .request(method.clone(), &url)
                    .header("content-type", "application/json")
                    .body("{}");
                if let Some(h) = header {
                    req = req.header("authorization", h);
                }
                let resp = req.send().await.unwrap();
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                let scim_error = body.contains("urn:ietf:params:scim:api:messages:2.0:Error");
                if name.ends_with("-scim") && status.is_client_error() && !scim_error {
                    wrong.push(format!(
                        "{name} {method} {pattern} with {what}: {status} without the SCIM error body: {body}"
                    ));
                }
                if status.is_server_error() {
                    wrong.push(format!("{name} {method} {pattern} with {what}: {status}"));
                }
                if EXCHANGES.contains(&pattern.as_str()) {
                    if !status.is_client_error() || body.contains("access_token") {
                        wrong.push(format!(
                            "{name} {method} {pattern} with {what}: {status} {body}"
                        ));
                    }
                    refused = true;
                    continue;
                }
                if is_open(pattern) {
                    continue;
                }
                match status {
                    StatusCode::UNAUTHORIZED => refused = true,
                    StatusCode::METHOD_NOT_ALLOWED => {}
                    other => wrong.push(format!("{name} {method} {pattern} with {what}: {other}")),
                }
            }
        }
        if !refused && !is_open(pattern) {
            wrong.push(format!("{name} {pattern}: no method answered 401"));
        }
    }
    (paths.len(), wrong)
}

async fn space(sim_token: Option<&str>) -> mock_space::Launched {
    mock_space::launch(mock_space::Options {
        port: 0,
        token: TOKEN.into(),
        policy: mock_space::Policy::default_policy(),
        serving: mock_space::Serving {
            scim_port: 0,
            data: None,
            scim_token: TOKEN.into(),
            sim_token: sim_token.map(str::to_owned),
            tls: Default::default(),
            scim_oauth: None,
            durable: false,
            lenient: false,
        },
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn every_route_refuses_a_caller_without_credentials() {
    let space = space(None).await;
    let teamcity = mock_teamcity::launch(mock_teamcity::Options {
        target: mock_teamcity::Target::Simulator { port: 0 },
        token: TOKEN.into(),
        policy: mock_teamcity::Policy::default_policy(),
        serving: mock_teamcity::Serving {
            scim_port: 0,
            data: None,
            scim_token: TOKEN.into(),
            sim_token: None,
            tls: Default::default(),
            scim_oauth: None,
            durable: false,
            lenient: false,
        },
    })
    .await
    .unwrap();
    let idp = mock_idp::launch(mock_idp::Options {
        port: 0,
        data: None,
        token: TOKEN.into(),
        durable: false,
        engine: mock_idp::EngineConfig::default(),
        sim_token: None,
        tls: Default::default(),
        // With an authorization server, so that its token endpoint is walked for real.
        oauth: Some(std::sync::Arc::new(mock_idp::oauth::OAuthServer::new(
            scim::oauth::Issuer::new(
                scim::oauth::SigningKey::generate().unwrap().0,
                "idp",
                "scim",
                std::time::Duration::from_secs(60),
            ),
            vec![mock_idp::oauth::OAuthClient {
                id: "admin".into(),
                secret: Some("not-admin".into()),
                public_key: None,
            }],
        ))),
    })
    .await
    .unwrap();
    // The SCIM connectors serve the engine's router; its table is read from a spare one.
    let provider = scim::Provider::temporary(scim::ProviderConfig::default()).unwrap();
    let scim_router = scim::app(scim::AppState {
        provider,
        tokens: vec![TOKEN.into()],
        oauth: None,
    });

    let tc = teamcity.teamcity.clone().unwrap();
    let walks = [
        (
            "space",
            space.space_url.clone(),
            mock_space::native_app(space.space.clone()),
        ),
        ("space-scim", space.scim_url.clone(), scim_router.clone()),
        (
            "teamcity",
            teamcity.teamcity_url.clone(),
            mock_teamcity::native_app(tc),
        ),
        ("teamcity-scim", teamcity.scim_url.clone(), scim_router),
        ("idp", idp.url.clone(), mock_idp::app(idp.idp.clone())),
    ];
    let mut wrong = Vec::new();
    for (name, base, router) in &walks {
        let (count, found) = walk(name, base, router).await;
        eprintln!("{name}: {count} routes walked");
        if name.ends_with("-scim") {
            assert!(count > 20, "{name}: {count} routes");
        } else {
            let sim = route_paths(router)
                .into_iter()
                .filter(|p| p.starts_with("/_sim"))
                .count();
            assert!(sim >= 7, "{name}: only {sim} /_sim routes were found");
        }
        wrong.extend(found);
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // The same control plane opens to the admin token, under either scheme and any case.
    let client = scim::tls::ClientTls::default().client().unwrap();
    for (base, scheme) in [
        (&space.space_url, "Bearer"),
        (&teamcity.teamcity_url, "bearer"),
        (&idp.url, "SSWS"),
        (&idp.url, "ssws"),
    ] {
        let status = client
            .get(format!("{base}/_sim/events/verify"))
            .header("authorization", format!("{scheme} {TOKEN}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK, "{base} with {scheme}");
    }
    space.stop().await;
    teamcity.stop().await;
    idp.stop().await;
}

#[tokio::test]
async fn a_sim_token_opens_the_control_plane_and_nothing_else() {
    let space = space(Some("sim-only")).await;
    let client = scim::tls::ClientTls::default().client().unwrap();
    let get = |path: &str| {
        client
            .get(format!("{}{path}", space.space_url))
            .bearer_auth("sim-only")
            .send()
    };
    assert_eq!(get("/_sim/faults").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        get("/api/http/team-directory/profiles")
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Anonymous: reset refused, and the data is still there.
    let reset = client
        .post(format!("{}/_sim/reset", space.space_url))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = reset.json().await.unwrap();
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    let projects = client
        .get(format!("{}/api/http/projects", space.space_url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(projects.contains("BACKEND"), "{projects}");
    space.stop().await;
}
