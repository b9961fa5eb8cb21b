//! ETags and meta.version (RFC 7644 §3.14), over a user of its own.

use super::*;

/// The checks of this section.
const IDS: &[&str] = &[
    "P-ETAG-01",
    "P-ETAG-02",
    "P-ETAG-03",
    "P-ETAG-04",
    "P-ETAG-05",
    "P-ETAG-06",
];

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    if !cx.supports("etag") {
        s.skip(
            IDS,
            "ServiceProviderConfig does not advertise etag.supported",
        );
        return s.finish();
    }
    let path = match own_user(cx, &mut Vec::new(), "etag").await {
        Ok((path, _)) => path,
        Err(why) => {
            s.block(IDS, &why);
            return s.finish();
        }
    };
    check!(s, "P-ETAG-01", log => {
        let e = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
        ensure(e.header("etag").is_some(), || "GET of a resource has no ETag header".into())
    });
    check!(s, "P-ETAG-02", log => {
        let e = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
        let tag = e.header("etag").unwrap_or("");
        let version = body(&e)?["meta"]["version"].clone();
        ensure(version == json!(tag), || format!("meta.version {version} differs from the ETag {tag:?}"))
    });
    check!(s, "P-ETAG-03", log => {
        let e = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
        let tag = e.header("etag").ok_or("no ETag to send back")?.to_owned();
        let e = call(cx, &mut log, Method::GET, &path, None, &[("if-none-match", &tag)]).await?;
        status(&e, &[304])
    });
    check!(s, "P-ETAG-04", log => {
        let e = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
        let before = body(&e)?;
        let e = call(cx, &mut log, Method::PUT, &path, Some(&user(cx, "etag")), &[("if-match", "W/\"scimlab-stale\"")]).await?;
        status(&e, &[412])?;
        let after = body(&call(cx, &mut log, Method::GET, &path, None, &[]).await?)?;
        ensure(after["meta"]["lastModified"] == before["meta"]["lastModified"], || "the resource changed despite the 412".into())
    });
    check!(s, "P-ETAG-05", log => {
        let e = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
        let tag = e.header("etag").ok_or("no ETag to send back")?.to_owned();
        let mut changed = user(cx, "etag");
        changed["title"] = json!("Versioned");
        let e = call(cx, &mut log, Method::PUT, &path, Some(&changed), &[("if-match", &tag)]).await?;
        status(&e, &[200])?;
        ensure(e.header("etag").is_some_and(|t| t != tag), || format!("the ETag did not change after a write (was {tag})"))
    });
    check!(s, "P-ETAG-06", log => {
        let first = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
        let second = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
        ensure(first.header("etag").is_some() && first.header("etag") == second.header("etag"), || format!("the ETag changed with no change: {:?} then {:?}", first.header("etag"), second.header("etag")))?;
        let mut u = user(cx, "etag");
        u["title"] = json!("Tagged");
        status(&call(cx, &mut log, Method::PUT, &path, Some(&u), &[]).await?, &[200])?;
        let third = call(cx, &mut log, Method::GET, &path, None, &[]).await?;
        ensure(third.header("etag") != first.header("etag"), || "the ETag stayed the same after a change".into())
    });
    s.finish()
}
