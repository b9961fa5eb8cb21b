//! OAuth 2.0 client credentials (RFC 6749 §4.4) from both ends. A [`TokenSource`] fetches an
//! access token before it is needed and again before it expires, authenticating as the client
//! by `client_secret_basic`, `client_secret_post` or `private_key_jwt` (RFC 7523 §2.2); the
//! harness calls SCIM endpoints with it and mock-idp pushes with it. An [`Issuer`] mints the
//! JWT access tokens (RFC 9068) mock-idp's token endpoint gives, and a [`Verifier`] is what a
//! SCIM endpoint checks them with.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// `client_assertion_type` of `private_key_jwt` (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    Key(String),
    #[error("cannot reach the token endpoint {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error("the token endpoint {url} refused the client: {status} {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the token endpoint {url} answered without an access_token: {body}")]
    Malformed { url: String, body: String },
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A private key that signs JWTs, with the algorithm its kind implies.
#[derive(Clone)]
pub struct SigningKey {
    key: EncodingKey,
    alg: Algorithm,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({:?}, ****)", self.alg)
    }
}

/// The JWS algorithm for a PEM private key: ES256/ES384 for P-256/P-384, RS256 for RSA,
/// EdDSA for Ed25519.
fn algorithm_of(pem: &str) -> Result<Algorithm, OAuthError> {
    let pair = rcgen::KeyPair::from_pem(pem)
        .map_err(|e| OAuthError::Key(format!("not a PEM private key: {e}")))?;
    let alg = pair.algorithm();
    if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        Ok(Algorithm::ES256)
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        Ok(Algorithm::ES384)
    } else if alg == &rcgen::PKCS_ED25519 {
        Ok(Algorithm::EdDSA)
    } else if alg == &rcgen::PKCS_RSA_SHA256 {
        Ok(Algorithm::RS256)
    } else {
        Err(OAuthError::Key(format!(
            "a {alg:?} key: use a P-256, P-384, Ed25519 or RSA key"
        )))
    }
}

impl SigningKey {
    pub fn from_pem(pem: &str) -> Result<Self, OAuthError> {
        let alg = algorithm_of(pem)?;
        let bad = |e: jsonwebtoken::errors::Error| OAuthError::Key(format!("unusable key: {e}"));
        let key = match alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .map_err(bad)?;
        Ok(SigningKey { key, alg })
    }

    /// A new P-256 key: the signer, its private key PEM and its public key PEM.
    pub fn generate() -> Result<(Self, String, String), OAuthError> {
        let pair = rcgen::KeyPair::generate().map_err(|e| OAuthError::Key(e.to_string()))?;
        let private = pair.serialize_pem();
        Ok((Self::from_pem(&private)?, private, pair.public_key_pem()))
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// A JWT of these claims, signed.
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, OAuthError> {
        jsonwebtoken::encode(&Header::new(self.alg), claims, &self.key)
            .map_err(|e| OAuthError::Key(format!("cannot sign: {e}")))
    }
}

/// A public key (PEM) that checks JWTs signed with `alg`.
#[derive(Clone)]
pub struct VerifyingKey {
    key: DecodingKey,
    alg: Algorithm,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({:?})", self.alg)
    }
}

impl VerifyingKey {
    pub fn from_public_pem(pem: &str, alg: Algorithm) -> Result<Self, OAuthError> {
        let bad = |e: jsonwebtoken::errors::Error| OAuthError::Key(format!("unusable key: {e}"));
        let key = match alg {
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem.as_bytes()),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem.as_bytes()),
            _ => DecodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .map_err(bad)?;
        Ok(VerifyingKey { key, alg })
    }

    /// The claims of `jwt` if its signature, `exp`, `iss` and `aud` hold, `exp` with `leeway`
    /// seconds for clock skew.
    fn check<C: serde::de::DeserializeOwned>(
        &self,
        jwt: &str,
        issuer: &str,
        audience: &str,
        leeway: u64,
    ) -> Result<C, String> {
        let mut validation = Validation::new(self.alg);
        validation.leeway = leeway;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        jsonwebtoken::decode::<C>(jwt, &self.key, &validation)
            .map(|d| d.claims)
            .map_err(|e| e.to_string())
    }
}

/// How a client proves who it is to the token endpoint.
#[derive(Clone)]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret (RFC 6749 §2.3.1).
    SecretBasic(String),
    /// `client_id` and `client_secret` in the form body.
    SecretPost(String),
    /// A JWT signed with the client's key (RFC 7523 §2.2).
    PrivateKeyJwt(SigningKey),
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClientAuth::SecretBasic(_) => "client_secret_basic",
            ClientAuth::SecretPost(_) => "client_secret_post",
            ClientAuth::PrivateKeyJwt(_) => "private_key_jwt",
        })
    }
}

/// A client registered at a token endpoint.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub token_url: String,
    pub client_id: String,
    pub auth: ClientAuth,
    pub scope: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Assertion {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    iat: u64,
    jti: String,
}

/// Clock skew allowed on an access token's `exp`: the issuer and the resource server usually
/// share a clock (here one process), and an expired token must stop working soon.
const ACCESS_TOKEN_LEEWAY: u64 = 5;
/// A client's clock may be further off.
const ASSERTION_LEEWAY: u64 = 60;

/// A token is fetched again when less than this share of its life is left (at most a minute).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// A token endpoint that gives no `expires_in` is asked again after this long.
const UNSTATED_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Cached {
    token: String,
    refresh_at: Instant,
}

/// Access tokens for one client, fetched when needed and again before they expire; callers
/// at the same moment share one fetch.
#[derive(Debug)]
pub struct TokenSource {
    credentials: Credentials,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<Cached>>,
    fetches: std::sync::atomic::AtomicU64,
}

impl TokenSource {
    pub fn new(credentials: Credentials, http: reqwest::Client) -> Arc<Self> {
        Arc::new(TokenSource {
            credentials,
            http,
            cached: tokio::sync::Mutex::new(None),
            fetches: Default::default(),
        })
    }

    /// How many tokens were fetched so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A token good for a while yet.
    pub async fn bearer(&self) -> Result<String, OAuthError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(c.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Forgets the token (a server refused it): the next call fetches another.
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<Cached, OAuthError> {
        let c = &self.credentials;
        let url = c.token_url.clone();
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        if let Some(scope) = &c.scope {
            form.push(("scope", scope.clone()));
        }
        let mut request = self.http.post(&url);
        match &c.auth {
            // RFC 6749 §2.3.1: both parts form-encoded before Basic's base64.
            ClientAuth::SecretBasic(secret) => {
                request = request.basic_auth(form_encode(&c.client_id), Some(form_encode(secret)));
            }
            ClientAuth::SecretPost(secret) => {
                form.push(("client_id", c.client_id.clone()));
                form.push(("client_secret", secret.clone()));
            }
            ClientAuth::PrivateKeyJwt(key) => {
                let now = now_secs();
                let assertion = key.sign(&Assertion {
                    iss: c.client_id.clone(),
                    sub: c.client_id.clone(),
                    aud: url.clone(),
                    exp: now + 300,
                    iat: now,
                    jti: uuid::Uuid::new_v4().to_string(),
                })?;
                form.push(("client_id", c.client_id.clone()));
                form.push(("client_assertion_type", ASSERTION_TYPE.to_owned()));
                form.push(("client_assertion", assertion));
            }
        }
        let asked = Instant::now();
        let resp = request
            .form(&form)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| OAuthError::Unreachable {
                url: url.clone(),
                why: crate::tls::explain(&e).unwrap_or_else(|| e.to_string()),
            })?;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(512).collect();
        if !(200..300).contains(&status) {
            return Err(OAuthError::Refused { url, status, body });
        }
        #[derive(Deserialize)]
        struct Answer {
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let answer: Answer =
            serde_json::from_str(&body).map_err(|_| OAuthError::Malformed { url, body })?;
        // Capped: a server's number must not overflow the clock.
        let life = answer
            .expires_in
            .map_or(UNSTATED_LIFETIME, Duration::from_secs)
            .min(Duration::from_secs(86_400));
        let margin = REFRESH_MARGIN.min(life / 5);
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Cached {
            token: answer.access_token,
            refresh_at: asked + life - margin,
        })
    }
}

fn form_encode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

/// The claims of an access token (RFC 9068 §2.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Mints access tokens: signed JWTs for one audience that expire.
#[derive(Debug)]
pub struct Issuer {
    key: SigningKey,
    pub name: String,
    pub audience: String,
    pub lifetime: Duration,
}

impl Issuer {
    pub fn new(key: SigningKey, name: &str, audience: &str, lifetime: Duration) -> Self {
        Issuer {
            key,
            name: name.into(),
            audience: audience.into(),
            lifetime,
        }
    }

    /// An access token for `client_id` and its lifetime in seconds.
    pub fn mint(&self, client_id: &str, scope: Option<&str>) -> Result<(String, u64), OAuthError> {
        let now = now_secs();
        let life = self.lifetime.as_secs().max(1);
        let claims = AccessClaims {
            iss: self.name.clone(),
            sub: client_id.into(),
            aud: self.audience.clone(),
            exp: now + life,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            client_id: client_id.into(),
            scope: scope.map(str::to_owned),
        };
        Ok((self.key.sign(&claims)?, life))
    }
}

/// What a resource server checks an access token with: the issuer's public key, name and the
/// audience the tokens must be for.
#[derive(Debug, Clone)]
pub struct Verifier {
    key: VerifyingKey,
    issuer: String,
    audience: String,
}

impl Verifier {
    pub fn new(key: VerifyingKey, issuer: &str, audience: &str) -> Self {
        Verifier {
            key,
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }

    /// The token's claims if it is one of the issuer's, for this audience, and not expired.
    pub fn check(&self, token: &str) -> Result<AccessClaims, String> {
        self.key
            .check(token, &self.issuer, &self.audience, ACCESS_TOKEN_LEEWAY)
    }
}

/// The claims of a `private_key_jwt` client assertion, checked against the client's key: it
/// must name the client as `iss` and `sub` and the token endpoint as `aud`, and not be expired.
pub fn check_assertion(
    assertion: &str,
    key: &VerifyingKey,
    client_id: &str,
    token_url: &str,
) -> Result<(String, u64), String> {
    let claims: Assertion = key.check(assertion, client_id, token_url, ASSERTION_LEEWAY)?;
    if claims.sub != client_id {
        return Err("sub is not the client id".into());
    }
    Ok((claims.jti, claims.exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_passes_its_verifier_and_no_other() {
        let (key, _, public) = SigningKey::generate().unwrap();
        let issuer = Issuer::new(key, "idp", "scim", Duration::from_secs(60));
        let (token, life) = issuer.mint("c1", Some("scim")).unwrap();
        assert_eq!(life, 60);
        let public = VerifyingKey::from_public_pem(&public, Algorithm::ES256).unwrap();
        let claims = Verifier::new(public.clone(), "idp", "scim")
            .check(&token)
            .unwrap();
        assert_eq!(
            (claims.client_id.as_str(), claims.scope.as_deref()),
            ("c1", Some("scim"))
        );
        assert!(Verifier::new(public.clone(), "idp", "other")
            .check(&token)
            .is_err());
        assert!(Verifier::new(public.clone(), "evil", "scim")
            .check(&token)
            .is_err());
        let (_, _, stranger) = SigningKey::generate().unwrap();
        let stranger = VerifyingKey::from_public_pem(&stranger, Algorithm::ES256).unwrap();
        assert!(Verifier::new(stranger, "idp", "scim")
            .check(&token)
            .is_err());
        let mut forged = token.clone();
        forged.push('x');
        assert!(Verifier::new(public, "idp", "scim").check(&forged).is_err());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let (key, _, public) = SigningKey::generate().unwrap();
        let public = VerifyingKey::from_public_pem(&public, Algorithm::ES256).unwrap();
        let old = AccessClaims {
            iss: "idp".into(),
            sub: "c".into(),
            aud: "scim".into(),
            exp: now_secs() - 120,
            iat: now_secs() - 180,
            jti: "j".into(),
            client_id: "c".into(),
            scope: None,
        };
        let token = key.sign(&old).unwrap();
        let e = Verifier::new(public, "idp", "scim")
            .check(&token)
            .unwrap_err();
        assert!(e.contains("Expired"), "{e}");
    }

    #[test]
    fn a_key_of_each_kind_gets_its_algorithm() {
        let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        assert_eq!(
            SigningKey::from_pem(&ec.serialize_pem())
                .unwrap()
                .algorithm(),
            Algorithm::ES384
        );
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        assert_eq!(
            SigningKey::from_pem(&ed.serialize_pem())
                .unwrap()
                .algorithm(),
            Algorithm::EdDSA
        );
        assert!(SigningKey::from_pem("not a key").is_err());
    }
}
