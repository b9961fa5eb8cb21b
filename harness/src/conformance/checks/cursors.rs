//! RFC 9865 (cursor-based pagination; draft-ietf-scim-cursor-pagination-11): the
//! ServiceProviderConfig `pagination` block, walking pages by `nextCursor` over GET and POST
//! .search, `previousCursor`, and the `invalidCursor` / `invalidCount` errors.

use super::*;

const IDS: &[&str] = &[
    "P-CURSOR-01",
    "P-CURSOR-02",
    "P-CURSOR-03",
    "P-CURSOR-04",
    "P-CURSOR-05",
    "P-CURSOR-06",
    "P-CURSOR-07",
    "P-CURSOR-08",
];

/// Users the section pages through, and the page size: three pages, the last one short.
const PEOPLE: &[&str] = &["cur-a", "cur-b", "cur-c", "cur-d", "cur-e"];
const COUNT: usize = 2;

/// How one page of the walk is asked for: a GET or a POST .search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Get,
    Search,
}

/// Asks for the page `cursor` points to (`""`: the first) with `count`.
async fn page(
    cx: &Cx,
    log: &mut Vec<Exchange>,
    via: Via,
    cursor: &str,
    count: usize,
) -> Result<Exchange, String> {
    let filter = format!("userName sw \"{}cur-\"", cx.prefix);
    match via {
        Via::Get => {
            let path = format!(
                "/Users?filter={}&count={count}&cursor={}",
                encode(&filter),
                encode(cursor)
            );
            call(cx, log, Method::GET, &path, None, &[]).await
        }
        Via::Search => {
            let body =
                json!({"schemas": [SEARCH], "filter": filter, "count": count, "cursor": cursor});
            call(cx, log, Method::POST, "/Users/.search", Some(&body), &[]).await
        }
    }
}

/// A page that must be a ListResponse.
async fn page_json(
    cx: &Cx,
    log: &mut Vec<Exchange>,
    via: Via,
    cursor: &str,
) -> Result<Value, String> {
    let e = page(cx, log, via, cursor, COUNT).await?;
    status(&e, &[200])?;
    body(&e)
}

/// RFC 9865 §2: cursors are URL-safe, made of RFC 3986 unreserved characters.
fn cursor_of(page: &Value, key: &str) -> Result<Option<String>, String> {
    match page.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(c))
            if !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)) =>
        {
            Ok(Some(c.clone()))
        }
        Some(other) => Err(format!(
            "{key} {other} is not a non-empty string of unreserved characters (RFC 3986 §2.3)"
        )),
    }
}

/// Follows `nextCursor` from an empty cursor until a page has none; every page.
async fn walk(cx: &Cx, log: &mut Vec<Exchange>, via: Via) -> Result<Vec<Value>, String> {
    let mut pages = vec![page_json(cx, log, via, "").await?];
    while let Some(next) = cursor_of(&pages[pages.len() - 1], "nextCursor")? {
        if pages.len() > PEOPLE.len() {
            return Err(format!(
                "still a nextCursor after {} pages of at most {COUNT} of {} resources",
                pages.len(),
                PEOPLE.len()
            ));
        }
        pages.push(page_json(cx, log, via, &next).await?);
    }
    Ok(pages)
}

/// What a walk must give: no page above the count, and every resource once.
fn judge_walk(cx: &Cx, pages: &[Value]) -> Result<(), String> {
    if let Some((i, p)) = pages
        .iter()
        .enumerate()
        .find(|(_, p)| resources(p).len() > COUNT)
    {
        return Err(format!(
            "page {} holds {} resources for count={COUNT}",
            i + 1,
            resources(p).len()
        ));
    }
    let mut seen: Vec<String> = pages.iter().flat_map(|p| user_names(cx, p)).collect();
    seen.sort();
    let expected: Vec<String> = PEOPLE.iter().map(|p| p.to_string()).collect();
    ensure(seen == expected, || {
        format!(
            "following nextCursor over {} pages gave {seen:?}, expected {expected:?}: the page without nextCursor was not the last",
            pages.len()
        )
    })
}

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    // Nothing to write for a run that will not report these checks.
    if !IDS.iter().any(|id| s.wants(id)) {
        return s.finish();
    }
    if let Err(why) = population(cx, PEOPLE, |_, _| {}).await {
        s.block(IDS, &unprepared(why));
        return s.finish();
    }
    let pagination = cx.spc.as_ref().and_then(|spc| spc.get("pagination"));
    let advertised = pagination.and_then(|p| p.get("cursor")) == Some(&json!(true));
    let mut probe = Vec::new();
    let answers_cursors = match page(cx, &mut probe, Via::Get, "", 1).await {
        Ok(e) if e.status == 200 => e.json().is_some_and(|b| b.get("nextCursor").is_some()),
        _ => false,
    };
    check!(s, "P-CURSOR-01", log => {
        log.extend(probe.iter().cloned());
        if !answers_cursors {
            return Err(unsupported("a query with an empty cursor and count=1 over several results got no nextCursor"));
        }
        ensure(pagination.is_some(), || "the server pages by cursor (nextCursor came back), yet ServiceProviderConfig has no pagination block".into())
    });
    check!(s, "P-CURSOR-02", log => {
        let Some(p) = pagination else {
            return Err(unsupported("ServiceProviderConfig has no pagination block"));
        };
        log.extend(probe.iter().cloned());
        let mut wrong = Vec::new();
        for key in ["cursor", "index"] {
            if !p.get(key).is_some_and(Value::is_boolean) {
                wrong.push(format!("{key} is {} (REQUIRED, a boolean)", p.get(key).unwrap_or(&Value::Null)));
            }
        }
        if let Some(m) = p.get("defaultPaginationMethod") {
            if m != "cursor" && m != "index" {
                wrong.push(format!("defaultPaginationMethod is {m}, not \"cursor\" or \"index\""));
            }
        }
        for key in ["defaultPageSize", "maxPageSize", "cursorTimeout"] {
            if let Some(v) = p.get(key) {
                if v.as_u64().is_none_or(|n| n == 0) {
                    wrong.push(format!("{key} is {v}, not a positive integer"));
                }
            }
        }
        if p.get("cursor") == Some(&json!(true)) && !answers_cursors {
            wrong.push("cursor is true, yet an empty cursor with count=1 over several results got no nextCursor".into());
        }
        ensure(wrong.is_empty(), || format!("pagination {p}: {}", wrong.join("; ")))
    });
    if !advertised && !answers_cursors {
        // Every check after the two on ServiceProviderConfig pages by cursor.
        s.skip(&IDS[2..], "the server does not page by cursor");
        return s.finish();
    }
    walks(cx, &mut s).await;
    errors(cx, &mut s).await;
    default_method(cx, &mut s, pagination).await;
    s.finish()
}

async fn walks(cx: &Cx, s: &mut Section<'_>) {
    check!(s, "P-CURSOR-03", log => {
        let pages = walk(cx, &mut log, Via::Get).await?;
        judge_walk(cx, &pages)
    });
    check!(s, "P-CURSOR-04", log => {
        let first = page_json(cx, &mut log, Via::Get, "").await?;
        if let Some(previous) = first.get("previousCursor") {
            return Err(format!("the first page carries previousCursor {previous}"));
        }
        let Some(next) = cursor_of(&first, "nextCursor")? else {
            return Err(unprepared("the first page has no nextCursor"));
        };
        let second = page_json(cx, &mut log, Via::Get, &next).await?;
        let Some(previous) = cursor_of(&second, "previousCursor")? else {
            return Ok(()); // OPTIONAL, and not offered
        };
        let back = page_json(cx, &mut log, Via::Get, &previous).await?;
        ensure(user_names(cx, &back) == user_names(cx, &first), || format!(
            "previousCursor of the second page led to {:?}, not to the first page {:?}",
            user_names(cx, &back), user_names(cx, &first)))
    });
    check!(s, "P-CURSOR-05", log => {
        let e = page(cx, &mut log, Via::Search, "", COUNT).await?;
        if [404, 405, 501].contains(&e.status) {
            return Err(unsupported(format!("POST /Users/.search answered {}", e.status)));
        }
        let pages = walk(cx, &mut log, Via::Search).await?;
        ensure(pages.len() > 1, || "a SearchRequest with cursor \"\" and count 2 over 5 results got no nextCursor".into())?;
        judge_walk(cx, &pages)
    });
}

async fn errors(cx: &Cx, s: &mut Section<'_>) {
    check!(s, "P-CURSOR-06", log => {
        let first = page_json(cx, &mut log, Via::Get, "").await?;
        let real = cursor_of(&first, "nextCursor")?.ok_or_else(|| unprepared("the first page has no nextCursor"))?;
        for forged in ["scimlab-never-issued".to_owned(), format!("{real}~forged")] {
            let e = page(cx, &mut log, Via::Get, &forged, COUNT).await?;
            scim_error(&e, 400, Some("invalidCursor")).map_err(|why| format!("cursor {forged:?}: {why}"))?;
        }
        Ok(())
    });
    check!(s, "P-CURSOR-07", log => {
        let first = page_json(cx, &mut log, Via::Get, "").await?;
        let next = cursor_of(&first, "nextCursor")?.ok_or_else(|| unprepared("the first page has no nextCursor"))?;
        let e = page(cx, &mut log, Via::Get, &next, COUNT + 1).await?;
        scim_error(&e, 400, Some("invalidCount")).map_err(|why| format!("the second page asked with count={} after count={COUNT}: {why}", COUNT + 1))
    });
}

async fn default_method(cx: &Cx, s: &mut Section<'_>, pagination: Option<&Value>) {
    check!(s, "P-CURSOR-08", log => {
        let p = pagination.ok_or_else(|| unsupported("ServiceProviderConfig has no pagination block"))?;
        let both = p["cursor"] == json!(true) && p["index"] == json!(true);
        let method = p["defaultPaginationMethod"].as_str().filter(|_| both)
            .ok_or_else(|| unsupported("pagination does not offer both methods with a defaultPaginationMethod"))?;
        let filter = encode(&format!("userName sw \"{}cur-\"", cx.prefix));
        let b = get_json(cx, &mut log, &format!("/Users?filter={filter}&count={COUNT}")).await?;
        match method {
            "cursor" => ensure(b.get("nextCursor").is_some(), || format!("defaultPaginationMethod is cursor, yet a request without cursor or startIndex over {} results got no nextCursor", PEOPLE.len())),
            _ => ensure(b["startIndex"] == json!(1), || format!(
                "defaultPaginationMethod is index, yet the first page of a request without cursor or startIndex has startIndex {}", b["startIndex"])),
        }
    });
}
