//! Authentication, media types and the error answers every request can get.

use super::*;

/// The checks of this section.
const IDS: &[&str] = &[
    "P-AUTH-01",
    "P-AUTH-02",
    "P-AUTH-03",
    "P-MEDIA-02",
    "P-MEDIA-03",
    "P-MEDIA-04",
    "P-MEDIA-05",
    "P-MEDIA-06",
    "P-ERR-05",
    "P-READ-02",
];

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
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
    check!(s, "P-MEDIA-02", log => {
        let e = call(cx, &mut log, Method::GET, "/Users?count=1", None, &[("accept", "application/scim+json")]).await?;
        status(&e, &[200])?;
        body(&e).map(|_| ())
    });
    check!(s, "P-MEDIA-03", log => {
        let e = call(cx, &mut log, Method::GET, "/Users?count=1", None, &[("accept", "application/json")]).await?;
        status(&e, &[200])?;
        body(&e).map(|_| ())
    });
    check!(s, "P-MEDIA-04", log => {
        let e = call(cx, &mut log, Method::GET, "/Users?count=1", None, &[("accept", "")]).await?;
        let ct = e.header("content-type").unwrap_or("");
        ensure(ct.starts_with("application/scim+json"), || format!("expected Content-Type application/scim+json, got {ct:?}"))
    });
    check!(s, "P-MEDIA-05", log => {
        let e = cx.target.send_raw(Method::POST, "/Users", Some("{\"schemas\": [".into()), &[]).await?;
        log.push(e.clone());
        scim_error(&e, 400, None)
    });
    check!(s, "P-MEDIA-06", log => {
        let e = call(cx, &mut log, Method::GET, "/Users?count=1&scimlabUnknownParameter=1", None, &[]).await?;
        status(&e, &[200])
    });
    check!(s, "P-ERR-05", log => {
        let e = call(cx, &mut log, Method::GET, &format!("/{}NoSuchEndpoint", cx.prefix), None, &[]).await?;
        scim_error(&e, 404, None)
    });
    check!(s, "P-READ-02", log => {
        let e = call(cx, &mut log, Method::GET, &format!("/Users/{}missing", cx.prefix), None, &[]).await?;
        scim_error(&e, 404, None)
    });
    s.finish()
}
