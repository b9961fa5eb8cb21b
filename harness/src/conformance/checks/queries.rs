//! Lists and filters over users of its own: ListResponse, filter operators and paging.

use super::*;

/// The checks of this section.
const IDS: &[&str] = &[
    "P-LIST-01",
    "P-LIST-02",
    "P-LIST-03",
    "P-LIST-05",
    "P-FILTER-01",
    "P-FILTER-02",
    "P-FILTER-03",
    "P-FILTER-06",
    "P-FILTER-07",
    "P-FILTER-08",
    "P-FILTER-12",
    "P-PAGE-01",
    "P-PAGE-02",
    "P-PAGE-03",
    "P-PAGE-05",
    "P-PAGE-06",
];

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    let names = ["qa-alpha", "qa-bravo", "qa-charlie", "qa-delta"];
    let made = population(cx, &names, |i, u| {
        if i % 2 == 0 {
            u["title"] = json!("Engineer");
        }
    })
    .await;
    if let Err(why) = made {
        s.block(IDS, &why);
        return s.finish();
    }
    let p = cx.prefix.clone();
    let mine = format!("userName sw \"{p}qa-\"");
    fn same(got: Vec<String>, want: &[&str], filter: &str) -> Result<(), String> {
        ensure(got == want, || {
            format!("filter {filter} selected {got:?}, expected {want:?}")
        })
    }
    check!(s, "P-LIST-01", log => {
        let e = call(cx, &mut log, Method::GET, "/Users?count=1", None, &[]).await?;
        status(&e, &[200])?;
        ensure(body(&e)?["schemas"] == json!([LIST]), || "expected the ListResponse schema".into())
    });
    check!(s, "P-LIST-02", log => {
        let e = call(cx, &mut log, Method::GET, &format!("/Users?filter={}", encode(&mine)), None, &[]).await?;
        ensure(body(&e)?["totalResults"].is_u64(), || "totalResults is not an integer".into())
    });
    check!(s, "P-LIST-03", log => {
        let e = call(cx, &mut log, Method::GET, &format!("/Users?filter={}", encode(&mine)), None, &[]).await?;
        ensure(body(&e)?["Resources"].is_array(), || "Resources is missing while totalResults > 0".into())
    });
    check!(s, "P-LIST-05", log => {
        let e = call(cx, &mut log, Method::GET, &format!("/Users?filter={}", encode(&format!("userName eq \"{p}nobody\""))), None, &[]).await?;
        status(&e, &[200])?;
        ensure(body(&e)?["totalResults"] == json!(0), || "expected totalResults 0".into())
    });
    check!(s, "P-FILTER-01", log => {
        same(matching(cx, &mut log, &format!("userName eq \"{p}qa-bravo\"")).await?, &["qa-bravo"], "eq")?;
        same(matching(cx, &mut log, &format!("{mine} and userName ne \"{p}qa-bravo\"")).await?, &["qa-alpha", "qa-charlie", "qa-delta"], "ne")
    });
    check!(s, "P-FILTER-02", log => {
        same(matching(cx, &mut log, &format!("{mine} and userName co \"harl\"")).await?, &["qa-charlie"], "co")?;
        same(matching(cx, &mut log, &format!("userName sw \"{p}qa-b\"")).await?, &["qa-bravo"], "sw")?;
        same(matching(cx, &mut log, &format!("{mine} and userName ew \"lta\"")).await?, &["qa-delta"], "ew")
    });
    check!(s, "P-FILTER-03", log => {
        same(matching(cx, &mut log, &format!("{mine} and title pr")).await?, &["qa-alpha", "qa-charlie"], "pr")
    });
    check!(s, "P-FILTER-06", log => {
        same(matching(cx, &mut log, &format!("USERNAME EQ \"{p}qa-bravo\"")).await?, &["qa-bravo"], "upper-case name and operator")
    });
    check!(s, "P-FILTER-07", log => {
        same(matching(cx, &mut log, &format!("userName eq \"{}\"", format!("{p}qa-bravo").to_uppercase())).await?, &["qa-bravo"], "userName in upper case")
    });
    check!(s, "P-FILTER-08", log => {
        let f = format!("userName eq \"{p}qa-delta\" or {mine} and title pr");
        same(matching(cx, &mut log, &f).await?, &["qa-alpha", "qa-charlie", "qa-delta"], &f)
    });
    check!(s, "P-FILTER-12", log => {
        let e = call(cx, &mut log, Method::GET, &format!("/Users?filter={}", encode("userName eq")), None, &[]).await?;
        scim_error(&e, 400, Some("invalidFilter"))
    });
    let page = |start: i64, count: i64| {
        format!(
            "/Users?filter={}&sortBy=userName&startIndex={start}&count={count}",
            encode(&mine)
        )
    };
    check!(s, "P-PAGE-01", log => {
        let b = body(&call(cx, &mut log, Method::GET, &page(2, 1), None, &[]).await?)?;
        ensure(b["startIndex"] == json!(2), || format!("expected startIndex 2, got {}", b["startIndex"]))?;
        let names: Vec<&str> = b["Resources"].as_array().into_iter().flatten().filter_map(|u| u["userName"].as_str()).collect();
        ensure(names == [format!("{p}qa-bravo")], || format!("expected the second match (qa-bravo), got {names:?}"))
    });
    check!(s, "P-PAGE-02", log => {
        let b = body(&call(cx, &mut log, Method::GET, &page(0, 1), None, &[]).await?)?;
        let names: Vec<&str> = b["Resources"].as_array().into_iter().flatten().filter_map(|u| u["userName"].as_str()).collect();
        ensure(names == [format!("{p}qa-alpha")], || format!("startIndex=0 should act as 1, got {names:?}"))
    });
    check!(s, "P-PAGE-03", log => {
        let b = body(&call(cx, &mut log, Method::GET, &page(1, 0), None, &[]).await?)?;
        ensure(b["totalResults"] == json!(4) && resources(&b).is_empty(), || format!("count=0: expected totalResults 4 and no resources, got {} and {}", b["totalResults"], resources(&b).len()))
    });
    check!(s, "P-PAGE-05", log => {
        let b = body(&call(cx, &mut log, Method::GET, &page(1, 3), None, &[]).await?)?;
        let n = resources(&b).len();
        ensure(n <= 3 && b["itemsPerPage"] == json!(n), || format!("count=3: got {n} resources and itemsPerPage {}", b["itemsPerPage"]))
    });
    check!(s, "P-PAGE-06", log => {
        let mut seen = Vec::new();
        for start in [1, 3, 5] {
            let b = body(&call(cx, &mut log, Method::GET, &page(start, 2), None, &[]).await?)?;
            seen.extend(resources(&b).iter().filter_map(|u| u["userName"].as_str().map(|n| n.trim_start_matches(&p).to_owned())));
        }
        ensure(seen == names, || format!("walking pages of 2 gave {seen:?}, expected {names:?}"))
    });
    s.finish()
}
