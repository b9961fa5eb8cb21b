//! Credentials and transport: who may call, and over what (RFC 7644 §2, §3.12, §7).

use super::*;

/// The checks of this section.
const IDS: &[&str] = &[
    "P-SEC-01",
    "P-AUTH-01",
    "P-AUTH-02",
    "P-AUTH-03",
    "P-AUTH-04",
];

/// RFC 7644 §7.1 for a base URL: TLS unless the server is on loopback (then `None`: nothing to check).
pub fn transport_finding(base: &str) -> Option<Result<(), String>> {
    if base.starts_with("https://") {
        Some(Ok(()))
    } else if super::super::target::is_loopback(base) {
        None
    } else {
        Some(Err(format!(
            "{base} is reached over plain http off loopback: credentials and personal data cross the network unencrypted"
        )))
    }
}

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    match transport_finding(&cx.target.base) {
        Some(result) => check!(s, "P-SEC-01", log => { let _ = &mut log; result }),
        None => s.skip(
            &["P-SEC-01"],
            "the server is on loopback, where TLS is not required",
        ),
    }
    if matches!(cx.target.auth, crate::conformance::Auth::None) {
        s.skip(
            &["P-AUTH-01", "P-AUTH-02", "P-AUTH-03"],
            "no credential was given, so refusal cannot be told apart from an open server",
        );
    } else {
        let mut unauthorized = None;
        check!(s, "P-AUTH-01", log => {
            let e = call(cx, &mut log, Method::GET, "/Users?count=1", None, &[("authorization", "")]).await?;
            unauthorized = Some(e.clone());
            status(&e, &[401])
        });
        let got_401 = unauthorized.as_ref().is_some_and(|e| e.status == 401);
        if got_401 {
            let e = unauthorized.clone().unwrap_or_else(|| unreachable!());
            check!(s, "P-AUTH-02", log => {
                log.push(e.clone());
                ensure(e.header("www-authenticate").is_some(), || "the 401 has no WWW-Authenticate header".into())
            });
            check!(s, "P-AUTH-03", log => {
                log.push(e.clone());
                scim_error(&e, 401, None)
            });
        } else {
            s.block(&["P-AUTH-02", "P-AUTH-03"], "no 401 to examine (P-AUTH-01)");
        }
    }
    match &cx.options.limited_auth {
        Some(limited) => check!(s, "P-AUTH-04", log => {
            let e = cx.target.with_auth(limited.clone()).get("/Users?count=1").await?;
            log.push(e.clone());
            status(&e, &[403])
        }),
        None => s.skip(
            &["P-AUTH-04"],
            "no credential without permission was given (--limited-token)",
        ),
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::transport_finding;

    #[test]
    fn plain_http_fails_only_off_loopback() {
        assert_eq!(
            transport_finding("https://scim.example.com/v2"),
            Some(Ok(()))
        );
        assert_eq!(transport_finding("http://127.0.0.1:8080"), None);
        assert_eq!(transport_finding("http://localhost/scim"), None);
        assert!(matches!(
            transport_finding("http://scim.example.com"),
            Some(Err(_))
        ));
    }
}
