//! Filter operators in depth, paging limits and the IdPs' own look-ups, over four users of its own.

use super::*;

const IDS: &[&str] = &[
    "P-LIST-04",
    "P-LIST-06",
    "P-FILTER-04",
    "P-FILTER-05",
    "P-FILTER-09",
    "P-FILTER-10",
    "P-FILTER-11",
    "P-FILTER-13",
    "P-FILTER-14",
    "P-PAGE-04",
    "P-PAGE-07",
    "I-ENTRA-05",
    "I-OKTA-01",
    "I-OKTA-02",
];

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    let p = cx.prefix.clone();
    let made = population(cx, &["fq-alpha", "fq-bravo", "fq-charlie", "fq-delta"], |i, u| {
        if i % 2 == 0 {
            u["title"] = json!("Engineer");
        }
        if i == 1 {
            u["emails"] = json!([{"value": format!("{p}fq-bravo@example.com"), "type": "work", "primary": true},
                                 {"value": format!("{p}fq-bravo-home@example.org"), "type": "home"}]);
        }
    })
    .await;
    if let Err(why) = made {
        s.block(IDS, &why);
        return s.finish();
    }
    let mine = format!("userName sw \"{p}fq-\"");
    let expect = |got: Vec<String>, want: &[&str], filter: &str| {
        ensure(got == want, || {
            format!("filter {filter} selected {got:?}, expected {want:?}")
        })
    };
    let list = |extra: &str| format!("/Users?filter={}&sortBy=userName{extra}", encode(&mine));
    check!(s, "P-LIST-04", log => {
        let b = get_json(cx, &mut log, &list("&startIndex=1&count=2")).await?;
        ensure(b["startIndex"].is_u64() && b["itemsPerPage"].is_u64(), || format!("a page of 2 of 4 lacks startIndex or itemsPerPage: {} / {}", b["startIndex"], b["itemsPerPage"]))
    });
    match cx.max_results() {
        None => s.skip(
            &["P-LIST-06", "P-PAGE-07"],
            "ServiceProviderConfig advertises no filter.maxResults",
        ),
        Some(max) => {
            check!(s, "P-LIST-06", log => {
                let e = call(cx, &mut log, Method::GET, &list(&format!("&count={}", max + 1)), None, &[]).await?;
                if e.status == 400 {
                    return scim_error(&e, 400, Some("tooMany"));
                }
                status(&e, &[200])?;
                let n = resources(&body(&e)?).len() as u64;
                ensure(n <= max, || format!("asked for {} with maxResults {max}, got {n} resources", max + 1))
            });
            check!(s, "P-PAGE-07", log => {
                for query in [list(""), list(&format!("&count={}", max + 1))] {
                    let n = resources(&get_json(cx, &mut log, &query).await?).len() as u64;
                    ensure(n <= max, || format!("{query} returned {n} resources; maxResults is {max}"))?;
                }
                Ok(())
            });
        }
    }
    check!(s, "P-FILTER-04", log => {
        expect(matching(cx, &mut log, &format!("{mine} and userName gt \"{p}fq-bravo\"")).await?, &["fq-charlie", "fq-delta"], "gt")?;
        expect(matching(cx, &mut log, &format!("{mine} and userName ge \"{p}fq-bravo\"")).await?, &["fq-bravo", "fq-charlie", "fq-delta"], "ge")?;
        expect(matching(cx, &mut log, &format!("{mine} and userName lt \"{p}fq-charlie\"")).await?, &["fq-alpha", "fq-bravo"], "lt")?;
        expect(matching(cx, &mut log, &format!("{mine} and userName le \"{p}fq-alpha\"")).await?, &["fq-alpha"], "le")?;
        let all = ["fq-alpha", "fq-bravo", "fq-charlie", "fq-delta"];
        expect(matching(cx, &mut log, &format!("{mine} and meta.lastModified gt \"2000-01-01T00:00:00Z\"")).await?, &all, "dateTime gt")?;
        expect(matching(cx, &mut log, &format!("{mine} and meta.lastModified lt \"2000-01-01T00:00:00Z\"")).await?, &[], "dateTime lt")
    });
    check!(s, "P-FILTER-05", log => {
        let e = call(cx, &mut log, Method::GET, &format!("/Users?filter={}", encode("active gt true")), None, &[]).await?;
        scim_error(&e, 400, Some("invalidFilter"))
    });
    check!(s, "P-FILTER-09", log => {
        expect(matching(cx, &mut log, &format!("{mine} and not (title pr)")).await?, &["fq-bravo", "fq-delta"], "not (title pr)")?;
        let grouped = format!("{mine} and (userName eq \"{p}fq-alpha\" or userName eq \"{p}fq-delta\")");
        expect(matching(cx, &mut log, &grouped).await?, &["fq-alpha", "fq-delta"], &grouped)
    });
    check!(s, "P-FILTER-10", log => {
        let f = format!("emails.value eq \"{p}fq-bravo-home@example.org\"");
        expect(matching(cx, &mut log, &f).await?, &["fq-bravo"], &f)
    });
    check!(s, "P-FILTER-11", log => {
        let f = format!("emails[type eq \"work\" and value sw \"{p}fq-alpha\"]");
        expect(matching(cx, &mut log, &f).await?, &["fq-alpha"], &f)?;
        let f = format!("{mine} and name.givenName eq \"fq-charlie\"");
        expect(matching(cx, &mut log, &f).await?, &["fq-charlie"], &f)
    });
    check!(s, "P-FILTER-13", log => {
        let all = ["fq-alpha", "fq-bravo", "fq-charlie", "fq-delta"];
        expect(matching(cx, &mut log, &format!("{mine} and active eq true")).await?, &all, "active eq true")?;
        expect(matching(cx, &mut log, &format!("{mine} and active eq false")).await?, &[], "active eq false")?;
        expect(matching(cx, &mut log, &format!("userName eq \"{p}fq-\\\"quoted\\\"\"")).await?, &[], "an escaped quote")?;
        let e = call(cx, &mut log, Method::GET, &format!("/Users?filter={}", encode(&format!("{mine} and nickName eq null"))), None, &[]).await?;
        status(&e, &[200])
    });
    check!(s, "P-FILTER-14", log => {
        let f = format!("{mine} and schemas eq \"{USER}\"");
        let e = call(cx, &mut log, Method::GET, &format!("/Users?count=100&filter={}", encode(&f)), None, &[]).await?;
        if e.status == 400 {
            return Err(unsupported("a filter on schemas is refused"));
        }
        status(&e, &[200])?;
        ensure(body(&e)?["totalResults"] == json!(4), || format!("{f} should select all four users, got {}", body(&e).map(|b| b["totalResults"].clone()).unwrap_or_default()))
    });
    check!(s, "P-PAGE-04", log => {
        let b = get_json(cx, &mut log, &list("&count=-1")).await?;
        ensure(b["totalResults"] == json!(4) && resources(&b).is_empty(), || format!("count=-1: expected totalResults 4 and no resources, got {} and {}", b["totalResults"], resources(&b).len()))
    });
    check!(s, "I-ENTRA-05", log => {
        let both = format!("userName eq \"{p}fq-alpha\" and externalId eq \"{p}fq-alpha\"");
        expect(matching(cx, &mut log, &both).await?, &["fq-alpha"], &both)?;
        let crossed = format!("externalId eq \"{p}fq-alpha\" and userName eq \"{p}fq-bravo\"");
        expect(matching(cx, &mut log, &crossed).await?, &[], &crossed)?;
        let work = format!("emails[type eq \"work\"].value eq \"{p}fq-bravo@example.com\"");
        expect(matching(cx, &mut log, &work).await?, &["fq-bravo"], &work)
    });
    check!(s, "I-OKTA-01", log => {
        for count in [1, 2] {
            let b = get_json(cx, &mut log, &format!("/Users?count={count}&startIndex=1")).await?;
            for k in ["totalResults", "startIndex", "itemsPerPage"] {
                ensure(b[k].is_u64(), || format!("count={count}: {k} is {}, not a number", b[k]))?;
            }
        }
        Ok(())
    });
    check!(s, "I-OKTA-02", log => {
        let f = format!("userName eq \"{}\"", format!("{p}fq-delta").to_uppercase());
        expect(matching(cx, &mut log, &f).await?, &["fq-delta"], &f)
    });
    s.finish()
}
