//! The token endpoint: each client authentication method gets a token that the resource
//! server's verifier accepts; every wrong request gets RFC 6749 §5.2's error and status, and
//! never a token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use mock_idp::oauth::{OAuthClient, OAuthServer, TOKEN_PATH};
use mock_idp::{launch, EngineConfig, Launched, Options};
use scim::oauth::{
    ClientAuth, Credentials, Issuer, SigningKey, TokenSource, Verifier, VerifyingKey,
};
use serde_json::Value;

struct Setup {
    idp: Launched,
    verifier: Verifier,
    client_key: SigningKey,
    http: reqwest::Client,
}

/// A token request's form fields.
type Form<'a> = Vec<(&'a str, &'a str)>;
/// HTTP Basic's client id and secret, if sent.
type Basic<'a> = Option<(&'a str, &'a str)>;

const ID: &str = "client-1";
const SECRET: &str = "s3cret with spaces & symbols";

async fn setup() -> Setup {
    setup_living(Duration::from_secs(60)).await
}

/// An IdP whose access tokens live `lifetime`.
async fn setup_living(lifetime: Duration) -> Setup {
    let (issuer_key, _, issuer_public) = SigningKey::generate().unwrap();
    let alg = issuer_key.algorithm();
    let (client_key, _, client_public) = SigningKey::generate().unwrap();
    let server = OAuthServer::new(
        Issuer::new(issuer_key, "idp", "scim", lifetime),
        vec![OAuthClient {
            id: ID.into(),
            secret: Some(SECRET.into()),
            public_key: Some(
                VerifyingKey::from_public_pem(&client_public, client_key.algorithm()).unwrap(),
            ),
        }],
    );
    let idp = launch(Options {
        port: 0,
        data: None,
        token: "admin".into(),
        durable: false,
        engine: EngineConfig::default(),
        sim_token: None,
        tls: Default::default(),
        oauth: Some(Arc::new(server)),
    })
    .await
    .unwrap();
    let verifier = Verifier::new(
        VerifyingKey::from_public_pem(&issuer_public, alg).unwrap(),
        "idp",
        "scim",
    );
    let http = scim::tls::ClientTls::default().client().unwrap();
    Setup {
        idp,
        verifier,
        client_key,
        http,
    }
}

impl Setup {
    fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.idp.url)
    }

    fn source(&self, auth: ClientAuth) -> Arc<TokenSource> {
        TokenSource::new(
            Credentials {
                token_url: self.token_url(),
                client_id: ID.into(),
                auth,
                scope: None,
            },
            self.http.clone(),
        )
    }

    /// POSTs a form (with `basic` as HTTP Basic when given): status, body, headers.
    async fn post(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.post(self.token_url()).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        (status, resp.json().await.unwrap_or(Value::Null), headers)
    }
}

#[tokio::test]
async fn each_client_authentication_method_gets_a_token_the_verifier_accepts() {
    let s = setup().await;
    for auth in [
        ClientAuth::SecretBasic(SECRET.into()),
        ClientAuth::SecretPost(SECRET.into()),
        ClientAuth::PrivateKeyJwt(s.client_key.clone()),
    ] {
        let what = format!("{auth:?}");
        let source = s.source(auth);
        let token = source.bearer().await.unwrap();
        let claims = s.verifier.check(&token).unwrap();
        assert_eq!(claims.client_id, ID, "{what}");
        assert_eq!(claims.scope.as_deref(), Some("scim"), "{what}");
        // Cached until near expiry: a second call does not fetch again.
        assert_eq!(source.bearer().await.unwrap(), token, "{what}");
        assert_eq!(source.fetches(), 1, "{what}");
    }
    let (status, body, headers) = s
        .post(&[("grant_type", "client_credentials")], Some((ID, SECRET)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 60);
    assert_eq!(headers["cache-control"], "no-store");
    s.idp.stop().await;
}

#[tokio::test]
async fn every_wrong_request_gets_its_rfc_error_and_no_token() {
    let s = setup().await;
    let grant = ("grant_type", "client_credentials");
    let wrong = s.post(&[grant], Some((ID, "wrong"))).await;
    assert_eq!(
        (wrong.0, wrong.1["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(wrong.2.contains_key("www-authenticate"), "Basic was tried");
    let cases: Vec<(Form, Basic, u16, &str)> = vec![
        (vec![grant], None, 401, "invalid_client"),
        (
            vec![grant, ("client_id", "nobody"), ("client_secret", SECRET)],
            None,
            401,
            "invalid_client",
        ),
        (
            vec![("grant_type", "password")],
            Some((ID, SECRET)),
            400,
            "unsupported_grant_type",
        ),
        (vec![], Some((ID, SECRET)), 400, "invalid_request"),
        (
            vec![grant, grant],
            Some((ID, SECRET)),
            400,
            "invalid_request",
        ),
        (
            vec![grant, ("scope", "admin")],
            Some((ID, SECRET)),
            400,
            "invalid_scope",
        ),
        (
            vec![grant, ("client_id", ID), ("client_secret", SECRET)],
            Some((ID, SECRET)),
            400,
            "invalid_request",
        ),
        (
            vec![
                grant,
                ("client_id", ID),
                ("client_assertion", "x.y.z"),
                ("client_assertion_type", "other"),
            ],
            None,
            400,
            "invalid_request",
        ),
        (
            vec![
                grant,
                ("client_id", ID),
                ("client_assertion", "not.a.jwt"),
                ("client_assertion_type", scim::oauth::ASSERTION_TYPE),
            ],
            None,
            401,
            "invalid_client",
        ),
    ];
    for (form, basic, status, error) in cases {
        let (got, body, _) = s.post(&form, basic).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{form:?}"
        );
        assert!(body.get("access_token").is_none(), "{form:?}");
    }
    // Not a form at all.
    let resp = s
        .http
        .post(s.token_url())
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .basic_auth(ID, Some(SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // A token signed by another key, or an expired one, is refused by the verifier.
    let (other, _, _) = SigningKey::generate().unwrap();
    let forged = Issuer::new(other, "idp", "scim", Duration::from_secs(60))
        .mint(ID, Some("scim"))
        .unwrap()
        .0;
    assert!(s.verifier.check(&forged).is_err());
    s.idp.stop().await;
}

#[tokio::test]
async fn a_client_assertion_cannot_be_replayed() {
    let s = setup().await;
    // One assertion, made as the token source makes it, sent twice.
    let assertion = {
        #[derive(serde::Serialize)]
        struct A<'a> {
            iss: &'a str,
            sub: &'a str,
            aud: &'a str,
            exp: u64,
            iat: u64,
            jti: &'a str,
        }
        let now = chrono::Utc::now().timestamp() as u64;
        let url = s.token_url();
        let claims = A {
            iss: ID,
            sub: ID,
            aud: &url,
            exp: now + 60,
            iat: now,
            jti: "once",
        };
        s.client_key.sign(&claims).unwrap()
    };
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", ID),
        ("client_assertion_type", scim::oauth::ASSERTION_TYPE),
        ("client_assertion", assertion.as_str()),
    ];
    assert_eq!(s.post(&form, None).await.0, 200);
    let (status, body, _) = s.post(&form, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("used before"));
    s.idp.stop().await;
}

#[tokio::test]
async fn a_token_is_fetched_again_before_it_expires() {
    let s = setup_living(Duration::from_secs(1)).await;
    let source = s.source(ClientAuth::SecretBasic(SECRET.into()));
    let first = source.bearer().await.unwrap();
    // The source refreshes with a fifth of the lifetime left: after 0.8 s here.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let second = source.bearer().await.unwrap();
    assert_ne!(first, second);
    assert_eq!(source.fetches(), 2);
    // A token the server refused is forgotten: the next call fetches another.
    source.forget().await;
    source.bearer().await.unwrap();
    assert_eq!(source.fetches(), 3);
    s.idp.stop().await;
}
