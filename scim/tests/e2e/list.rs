//! Listing: pagination, sorting, attribute selection, `.search` (RFC 7644 §3.4.2-§3.4.3, §3.9).
use super::*;

const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

async fn with_users(names: &[&str]) -> Server {
    let s = Server::start().await;
    for n in names {
        s.user(n).await;
    }
    s
}

fn names(r: &Resp) -> Vec<String> {
    r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap_or("-").to_owned())
        .collect()
}

#[tokio::test]
async fn p_list_01_02_03_05_i_okta_01_list_response_shape() {
    let s = Server::start().await;
    let empty = s
        .get("/Users?filter=userName%20eq%20%22nobody%22&startIndex=1&count=100")
        .await;
    assert_eq!(empty.status, 200);
    assert_eq!(
        empty.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(
        (
            empty.body["totalResults"].as_u64(),
            empty.body["Resources"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );
    s.user("a").await;
    let r = s.get("/Users?count=1&startIndex=1").await;
    assert!(
        r.body["totalResults"].is_u64()
            && r.body["startIndex"].is_u64()
            && r.body["itemsPerPage"].is_u64()
    );
}

#[tokio::test]
async fn p_page_01_to_06_pagination_walks_every_resource_once() {
    let all = ["u1", "u2", "u3", "u4", "u5", "u6", "u7"];
    let s = with_users(&all).await;
    let first = s.get("/Users?sortBy=userName&startIndex=3&count=2").await;
    assert_eq!(
        (
            names(&first),
            first.body["startIndex"].as_u64(),
            first.body["itemsPerPage"].as_u64(),
            first.body["totalResults"].as_u64()
        ),
        (
            vec!["u3".to_string(), "u4".into()],
            Some(3),
            Some(2),
            Some(7)
        )
    );
    assert_eq!(
        names(&s.get("/Users?sortBy=userName&startIndex=0&count=1").await),
        vec!["u1"]
    );
    assert_eq!(
        names(&s.get("/Users?sortBy=userName&startIndex=-4&count=1").await),
        vec!["u1"]
    );
    let zero = s.get("/Users?count=0").await;
    assert_eq!(
        (zero.body["totalResults"].as_u64(), names(&zero).len()),
        (Some(7), 0)
    );
    assert_eq!(names(&s.get("/Users?count=-3").await).len(), 0);
    // Unsorted pages (store order) also cover everything exactly once.
    let mut seen = Vec::new();
    for start in (1..=7).step_by(3) {
        seen.extend(names(
            &s.get(&format!("/Users?startIndex={start}&count=3")).await,
        ));
    }
    seen.sort();
    assert_eq!(seen, all.iter().map(|s| s.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn p_page_07_no_page_exceeds_max_results() {
    let s = Server::start_with(ProviderConfig {
        max_results: 2,
        ..Default::default()
    })
    .await;
    for n in ["a", "b", "c"] {
        s.user(n).await;
    }
    for path in [
        "/Users",
        "/Users?count=50",
        "/Users?filter=userName%20pr&count=10",
    ] {
        let r = s.get(path).await;
        assert_eq!(
            (names(&r).len(), r.body["totalResults"].as_u64()),
            (2, Some(3)),
            "{path}"
        );
    }
}

#[tokio::test]
async fn p_sort_01_to_05_sorting() {
    let s = with_users(&["bravo", "Alpha", "charlie"]).await;
    s.post(
        "/Users",
        json!({"schemas": [USER], "userName": "zulu-no-email"}),
    )
    .await;
    assert_eq!(
        names(&s.get("/Users?sortBy=userName").await),
        vec!["Alpha", "bravo", "charlie", "zulu-no-email"]
    );
    assert_eq!(
        names(&s.get("/Users?sortBy=userName&sortOrder=descending").await),
        vec!["zulu-no-email", "charlie", "bravo", "Alpha"]
    );
    assert_eq!(
        names(&s.get("/Users?sortBy=emails").await),
        vec!["Alpha", "bravo", "charlie", "zulu-no-email"],
        "no value sorts last"
    );
    assert_eq!(
        names(&s.get("/Users?sortBy=emails&sortOrder=descending").await)[0],
        "zulu-no-email",
        "no value first when descending"
    );
    assert_eq!(
        names(&s.get("/Users?sortBy=name.givenName").await)[0],
        "Alpha"
    );
    assert_eq!(names(&s.get("/Users?sortBy=id").await).len(), 4);
}

#[tokio::test]
async fn p_attr_01_to_05_attribute_selection_everywhere() {
    let s = Server::start().await;
    let r = s.post("/Users?attributes=userName", user_body("ann")).await;
    assert_eq!(r.status, 201);
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["schemas", "id", "userName"], "P-ATTR-04 on POST");
    let id = r.id();
    let one = s
        .get(&format!(
            "/Users/{id}?attributes=NAME.givenName,emails.value"
        ))
        .await;
    assert_eq!(one.body["name"], json!({"givenName": "ann"}));
    assert_eq!(one.body["emails"], json!([{"value": "ann@corp.example"}]));
    let ex = s
        .get(&format!("/Users/{id}?excludedAttributes=emails,id,meta"))
        .await;
    assert!(
        ex.body.get("emails").is_none()
            && ex.body.get("meta").is_none()
            && ex.body["id"] == json!(id)
    );
    let listed = s.get("/Users?attributes=userName").await;
    assert_eq!(listed.body["Resources"][0].as_object().unwrap().len(), 3);
    let patched = s.send(Method::PATCH, &format!("/Users/{id}?attributes=title"), Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "title", "value": "Dr"}]})), &[]).await;
    assert_eq!(
        (
            patched.status,
            patched.body["title"].as_str(),
            patched.body.get("userName")
        ),
        (200, Some("Dr"), None),
        "P-PATCH-03"
    );
    let put = s
        .put(
            &format!("/Users/{id}?excludedAttributes=name"),
            user_body("ann"),
        )
        .await;
    assert!(put.body.get("name").is_none());
}

#[tokio::test]
async fn p_search_01_02_04_post_search_matches_get() {
    let s = with_users(&["sam", "sal", "tom"]).await;
    let via_get = s.get("/Users?filter=userName%20sw%20%22sa%22&sortBy=userName&sortOrder=descending&attributes=userName").await;
    let via_post = s.post("/Users/.search", json!({"schemas": [SEARCH], "filter": "userName sw \"sa\"", "sortBy": "userName", "sortOrder": "descending", "attributes": ["userName"], "startIndex": 1, "count": 10})).await;
    assert_eq!(via_post.status, 200);
    assert_eq!(via_get.body, via_post.body);
    assert_eq!(names(&via_post), vec!["sam", "sal"]);
    s.post(
        "/Users/.search",
        json!({"schemas": ["urn:wrong"], "filter": "userName pr"}),
    )
    .await
    .assert_error(400, Some("invalidSyntax"));
    s.post(
        "/Users/.search",
        json!({"schemas": [SEARCH], "count": "ten"}),
    )
    .await
    .assert_error(400, Some("invalidSyntax"));
}

#[tokio::test]
async fn p_search_03_p_list_07_root_queries_span_every_type() {
    let s = with_users(&["root-user"]).await;
    s.group("root-group", &[]).await;
    let r = s
        .post(
            "/.search",
            json!({"schemas": [SEARCH], "filter": "meta.created pr"}),
        )
        .await;
    assert_eq!(r.body["totalResults"], 2);
    let by_name = s.get("/?filter=displayName%20eq%20%22root-group%22").await;
    assert_eq!(by_name.body["totalResults"], 1);
    s.get("/?filter=nothingAnywhere%20pr")
        .await
        .assert_error(400, Some("invalidFilter"));
}

/// The pages of a cursor query from an empty cursor; `ask` gives the response for a cursor.
async fn cursor_walk<F, Fut>(ask: F) -> Vec<Resp>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Resp>,
{
    let mut pages = vec![ask(String::new()).await];
    while let Some(next) = pages[pages.len() - 1].body["nextCursor"].as_str() {
        assert!(pages.len() < 10, "the walk does not end");
        let next = next.to_owned();
        pages.push(ask(next).await);
    }
    pages
}

#[tokio::test]
async fn rfc9865_cursors_walk_every_page_over_get_and_search() {
    let all = ["c1", "c2", "c3", "c4", "c5"];
    let s = with_users(&all).await;
    let spc = s.get("/ServiceProviderConfig").await;
    assert_eq!(spc.body["pagination"]["cursor"], json!(true));
    assert_eq!(
        spc.body["pagination"]["defaultPaginationMethod"],
        json!("index")
    );

    let by_get = cursor_walk(|c| {
        let s = &s;
        async move {
            s.get(&format!("/Users?sortBy=userName&count=2&cursor={c}"))
                .await
        }
    })
    .await;
    let pages: Vec<Vec<String>> = by_get.iter().map(names).collect();
    assert_eq!(pages, [vec!["c1", "c2"], vec!["c3", "c4"], vec!["c5"]]);
    assert!(by_get[0].body.get("previousCursor").is_none());
    assert!(by_get[0].body.get("startIndex").is_none());
    assert_eq!(by_get[2].body["totalResults"], json!(5));
    let back = by_get[1].body["previousCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let first_again = s
        .get(&format!("/Users?sortBy=userName&count=2&cursor={back}"))
        .await;
    assert_eq!(names(&first_again), ["c1", "c2"]);

    let by_search = cursor_walk(|c| {
        let s = &s;
        async move {
            let body = json!({"schemas": [SEARCH], "sortBy": "userName", "count": 2, "cursor": c});
            s.post("/Users/.search", body).await
        }
    })
    .await;
    assert_eq!(by_search.iter().map(names).collect::<Vec<_>>(), pages);

    // At the root, Users and Groups page together.
    s.group("g1", &[]).await;
    let root = cursor_walk(|c| {
        let s = &s;
        async move { s.get(&format!("/?count=4&cursor={c}")).await }
    })
    .await;
    assert_eq!(root.len(), 2);
    assert_eq!(root.iter().map(|p| names(p).len()).sum::<usize>(), 6);
}

#[tokio::test]
async fn rfc9865_a_foreign_cursor_another_query_or_count_is_a_400() {
    let s = with_users(&["d1", "d2", "d3"]).await;
    let first = s.get("/Users?count=1&cursor").await;
    let next = first.body["nextCursor"].as_str().unwrap().to_owned();
    s.get("/Users?count=1&cursor=made-up")
        .await
        .assert_error(400, Some("invalidCursor"));
    s.get(&format!("/Users?count=1&cursor={next}x"))
        .await
        .assert_error(400, Some("invalidCursor"));
    // The cursor belongs to the unfiltered query.
    s.get(&format!(
        "/Users?count=1&filter=userName%20pr&cursor={next}"
    ))
    .await
    .assert_error(400, Some("invalidCursor"));
    s.get(&format!("/Users?count=2&cursor={next}"))
        .await
        .assert_error(400, Some("invalidCount"));
    // Left out, the count is the first request's.
    assert_eq!(
        names(&s.get(&format!("/Users?cursor={next}")).await).len(),
        1
    );
    // count=0: totalResults only, and nothing to follow.
    let none = s.get("/Users?count=0&cursor=").await;
    assert_eq!(
        (none.body["totalResults"].as_u64(), names(&none).len()),
        (Some(3), 0)
    );
    assert!(none.body.get("nextCursor").is_none());
}
