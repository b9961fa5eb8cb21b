//! Credentials in an `Authorization` header, read and compared the same way by every server.

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

/// The credentials of an `Authorization` header whose scheme is one of `schemes`. Schemes are
/// compared without regard to case (RFC 7235 §2.1); blanks around the credentials are ignored.
pub fn credentials<'a>(headers: &'a HeaderMap, schemes: &[&str]) -> Option<&'a str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim_start().split_once(' ')?;
    schemes
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
        .then(|| rest.trim())
}

/// The credentials of an `Authorization` header written as `scheme` glued to them with no
/// blank (`SSWS00abc`), as Okta's Python SDK 3.x writes its API token; `None` otherwise.
pub fn glued<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (head, rest) = value.split_at_checked(scheme.len())?;
    (head.eq_ignore_ascii_case(scheme) && !rest.is_empty() && !rest.starts_with(' '))
        .then_some(rest)
}

/// HTTP Basic's user and password (RFC 7617), as sent; `None` when the header is not Basic,
/// or not base64 of `user:password`.
pub fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let encoded = credentials(headers, &["Basic"])?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Whether `presented` is one of `accepted`. Both sides are hashed first, so the time taken
/// depends neither on where two secrets differ nor on their lengths, and every accepted
/// secret is compared (no early return on a match).
pub fn is_one_of<S: AsRef<str>>(accepted: &[S], presented: &str) -> bool {
    let seen = Sha256::digest(presented.as_bytes());
    accepted.iter().fold(false, |found, ok| {
        let want = Sha256::digest(ok.as_ref().as_bytes());
        let same = want
            .iter()
            .zip(seen.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        found | same
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(header::AUTHORIZATION, v);
        }
        h
    }

    #[test]
    fn schemes_are_case_insensitive_and_credentials_trimmed() {
        for value in [
            "Bearer t0k",
            "bearer t0k",
            "BEARER   t0k ",
            "SSWS t0k",
            "ssws t0k",
        ] {
            assert_eq!(
                credentials(&headers(value), &["Bearer", "SSWS"]),
                Some("t0k"),
                "{value}"
            );
        }
        assert_eq!(credentials(&headers("Basic dTpw"), &["Bearer"]), None);
        assert_eq!(credentials(&headers("Bearert0k"), &["Bearer"]), None);
        assert_eq!(credentials(&HeaderMap::new(), &["Bearer"]), None);
    }

    #[test]
    fn a_glued_scheme_is_read_only_when_glued() {
        assert_eq!(glued(&headers("SSWSt0k"), "SSWS"), Some("t0k"));
        assert_eq!(glued(&headers("sswst0k"), "SSWS"), Some("t0k"));
        for value in ["SSWS t0k", "SSWS", "Bearer t0k", "SSW", ""] {
            assert_eq!(glued(&headers(value), "SSWS"), None, "{value:?}");
        }
    }

    #[test]
    fn only_an_exact_secret_matches() {
        let accepted = ["secret".to_owned(), "other".to_owned()];
        assert!(is_one_of(&accepted, "secret"));
        assert!(is_one_of(&accepted, "other"));
        for wrong in ["", "secre", "secret ", "Secret", "secretsecret"] {
            assert!(!is_one_of(&accepted, wrong), "{wrong:?}");
        }
        assert!(!is_one_of::<String>(&[], "secret"));
    }
}
