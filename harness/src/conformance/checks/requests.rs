//! What every request may carry: media types, a version prefix, parameters the server does not
//! know (RFC 7644 §3.4.2, §3.8, §3.13).

use super::*;

/// Where media types are negotiated: an answer that does not hang on what the server holds.
const MEDIA_PROBE: &str = "/ServiceProviderConfig";

/// The checks of this section.
const IDS: &[&str] = &[
    "P-MEDIA-02",
    "P-MEDIA-03",
    "P-MEDIA-04",
    "P-MEDIA-05",
    "P-MEDIA-06",
    "P-VERS-01",
];

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    check!(s, "P-MEDIA-02", log => {
        let e = call(cx, &mut log, Method::GET, MEDIA_PROBE, None, &[("accept", "application/scim+json")]).await?;
        status(&e, &[200])?;
        body(&e).map(|_| ())
    });
    check!(s, "P-MEDIA-03", log => {
        let e = call(cx, &mut log, Method::GET, MEDIA_PROBE, None, &[("accept", "application/json")]).await?;
        status(&e, &[200])?;
        body(&e).map(|_| ())
    });
    check!(s, "P-MEDIA-04", log => {
        let e = call(cx, &mut log, Method::GET, MEDIA_PROBE, None, &[("accept", "")]).await?;
        let ct = e.header("content-type").unwrap_or("");
        ensure(ct.starts_with("application/scim+json"), || format!("expected Content-Type application/scim+json, got {ct:?}"))
    });
    check!(s, "P-MEDIA-05", log => {
        let e = cx.target.send_raw(Method::POST, "/Users", Some("{\"schemas\": [".into()), &[]).await?;
        log.push(e.clone());
        scim_error(&e, 400, None)
    });
    check!(s, "P-MEDIA-06", log => {
        // Compared with the same request without it: what the server answers a list (an empty
        // one may be a 404 somewhere) is not this check's business.
        let plain = call(cx, &mut log, Method::GET, "/Users?count=1", None, &[]).await?;
        let e = call(cx, &mut log, Method::GET, "/Users?count=1&scimlabUnknownParameter=1", None, &[]).await?;
        ensure(e.status == plain.status, || format!("an unknown parameter turned {} into {}", plain.status, e.status))
    });
    check!(s, "P-VERS-01", log => {
        let e = call(cx, &mut log, Method::GET, "/v9/Users?count=1", None, &[]).await?;
        ensure((400..500).contains(&e.status), || format!("a request under the unknown version prefix /v9 got {}, not a 4xx", e.status))
    });
    s.finish()
}
