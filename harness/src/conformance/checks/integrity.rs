//! What a DELETE leaves behind in other resources, and groups too large for one request.

use futures::StreamExt;

use super::*;

const IDS: &[&str] = &[
    "P-DELETE-06",
    "P-DELETE-07",
    "P-DELETE-08",
    "P-GROUP-03",
    "P-GROUP-04",
];

/// Members a single PATCH adds while the large group is built.
const CHUNK: usize = 100;

fn group(cx: &Cx, name: &str, members: &[String]) -> Value {
    json!({"schemas": [GROUP], "displayName": format!("{}{name}", cx.prefix),
           "members": members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>()})
}

/// Creates a group for a check; its path.
async fn own_group(
    cx: &Cx,
    log: &mut Vec<Exchange>,
    name: &str,
    members: &[String],
) -> Result<String, String> {
    let e = post(cx, log, "/Groups", &group(cx, name, members)).await?;
    let b = resource_made(&e).map_err(unprepared)?;
    Ok(format!("/Groups/{}", b["id"].as_str().unwrap_or_default()))
}

/// DELETE that must succeed (any 2xx; P-DELETE-01 judges the status).
async fn delete(cx: &Cx, log: &mut Vec<Exchange>, path: &str) -> Result<(), String> {
    let e = call(cx, log, Method::DELETE, path, None, &[]).await?;
    ensure((200..300).contains(&e.status), || {
        unprepared(format!("DELETE {path} answered {}", e.status))
    })
}

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    if !has_groups(cx).await {
        s.skip(
            &["P-DELETE-06", "P-DELETE-08", "P-GROUP-03", "P-GROUP-04"],
            "the server has no /Groups endpoint",
        );
    } else {
        memberships(cx, &mut s).await;
        large_group(cx, &mut s).await;
    }
    manager(cx, &mut s).await;
    s.finish()
}

async fn memberships(cx: &Cx, s: &mut Section<'_>) {
    check!(s, "P-DELETE-06", log => {
        let (leaver, stayer) = (own_user(cx, &mut log, "ri-leaver").await?, own_user(cx, &mut log, "ri-stayer").await?);
        let (leaver_id, stayer_id) = (leaver.1["id"].as_str().unwrap_or_default().to_owned(), stayer.1["id"].as_str().unwrap_or_default().to_owned());
        let path = own_group(cx, &mut log, "ri-team", &[leaver_id.clone(), stayer_id.clone()]).await?;
        delete(cx, &mut log, &leaver.0).await?;
        let members = member_ids(&get_json(cx, &mut log, &path).await?);
        ensure(members == [stayer_id.clone()], || format!("after the user {leaver_id} was deleted, the group's members are {members:?}"))?;
        if cx.supports("filter") {
            let f = encode(&format!("members.value eq \"{leaver_id}\""));
            let found = get_json(cx, &mut log, &format!("/Groups?filter={f}")).await?;
            ensure(found["totalResults"] == json!(0), || format!("a filter on members.value still finds the deleted user in {} groups", found["totalResults"]))?;
        }
        Ok(())
    });
    check!(s, "P-DELETE-08", log => {
        let (path, _) = own_user(cx, &mut log, "ri-member").await?;
        let user_id = path.trim_start_matches("/Users/").to_owned();
        let group_path = own_group(cx, &mut log, "ri-gone", &[user_id]).await?;
        let group_id = group_path.trim_start_matches("/Groups/").to_owned();
        let listed = |u: &Value| u["groups"].as_array().into_iter().flatten().any(|g| g["value"] == json!(group_id));
        if !listed(&get_json(cx, &mut log, &path).await?) {
            return Err(unsupported("User.groups does not list the user's groups"));
        }
        delete(cx, &mut log, &group_path).await?;
        let after = get_json(cx, &mut log, &path).await?;
        ensure(!listed(&after), || format!("User.groups still lists the deleted group: {}", after["groups"]))
    });
}

async fn manager(cx: &Cx, s: &mut Section<'_>) {
    if cx.schema(ENTERPRISE).is_none() {
        s.skip(
            &["P-DELETE-07"],
            "/Schemas does not list the enterprise User extension",
        );
        return;
    }
    check!(s, "P-DELETE-07", log => {
        let (boss_path, boss) = own_user(cx, &mut log, "ri-boss").await?;
        let boss_id = boss["id"].as_str().unwrap_or_default().to_owned();
        let mut report = user(cx, "ri-report");
        report["schemas"] = json!([USER, ENTERPRISE]);
        report[ENTERPRISE] = json!({"manager": {"value": boss_id}});
        let e = post(cx, &mut log, "/Users", &report).await?;
        let made = resource_made(&e).map_err(unprepared)?;
        let path = format!("/Users/{}", made["id"].as_str().unwrap_or_default());
        delete(cx, &mut log, &boss_path).await?;
        let after = get_json(cx, &mut log, &path).await?;
        let manager = &after[ENTERPRISE]["manager"]["value"];
        ensure(manager != &json!(boss_id), || format!("the manager {boss_id} was deleted, yet is still the manager of {path}"))
    });
}

/// Creates `n` users, at most 8 requests at a time; their ids, or why not all could be made.
async fn many_users(cx: &Cx, n: usize) -> Result<Vec<String>, String> {
    let made: Vec<Result<String, String>> = futures::stream::iter(0..n)
        .map(|i| async move {
            let e = cx
                .target
                .send(
                    Method::POST,
                    "/Users",
                    Some(&user(cx, &format!("big-{i:05}"))),
                    &[],
                )
                .await?;
            keep(cx, &e);
            Ok(resource_made(&e)?["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned())
        })
        .buffer_unordered(8)
        .collect()
        .await;
    made.into_iter().collect()
}

async fn large_group(cx: &Cx, s: &mut Section<'_>) {
    let size = cx.options.large_group;
    if size == 0 {
        s.skip(&["P-GROUP-03", "P-GROUP-04"], "--large-group 0");
        return;
    }
    // A thousand users are worth creating only for a run that reports on them.
    if !s.reports("P-GROUP-03") && !s.reports("P-GROUP-04") {
        return;
    }
    let ids = match many_users(cx, size + 1).await {
        Ok(ids) => ids,
        Err(why) => {
            s.block(
                &["P-GROUP-03", "P-GROUP-04"],
                &format!("the {size} members could not be created: {why}"),
            );
            return;
        }
    };
    let (members, extra) = ids.split_at(size);
    let mut path = String::new();
    check!(s, "P-GROUP-03", log => {
        let mut chunks = members.chunks(CHUNK);
        path = own_group(cx, &mut log, "big-group", chunks.next().unwrap_or_default()).await?;
        for chunk in chunks {
            if !cx.supports("patch") {
                return Err(unsupported("patch.supported is false, so a large group cannot be built in chunks"));
            }
            let add = json!([{"op": "add", "path": "members", "value": chunk.iter().map(|m| json!({"value": m})).collect::<Vec<_>>()}]);
            let e = call(cx, &mut log, Method::PATCH, &path, Some(&patch_op(add)), &[]).await?;
            status(&e, &[200, 204])?;
        }
        let read = member_ids(&get_json(cx, &mut log, &format!("{path}?attributes=members")).await?);
        let mut sent = members.to_vec();
        sent.sort();
        ensure(read == sent, || format!("the group was given {} members; reading it back gives {} of them", sent.len(), read.iter().filter(|m| sent.binary_search(m).is_ok()).count()))
    });
    if path.is_empty() {
        s.block(
            &["P-GROUP-04"],
            "the large group was not built (P-GROUP-03)",
        );
        return;
    }
    let with_members = format!("{path}?attributes=members");
    check!(s, "P-GROUP-04", log => {
        let lean = get_json(cx, &mut log, &format!("{path}?excludedAttributes=members")).await?;
        ensure(lean.get("members").is_none_or(|m| m.as_array().is_some_and(Vec::is_empty)), || "excludedAttributes=members still returned the members".into())?;
        let newcomer = extra[0].clone();
        let count = |g: &Value| member_ids(g).len();
        let now = patched_then_read(cx, &mut log, &path, json!([{"op": "add", "path": "members", "value": [{"value": newcomer}]}]), &with_members).await?;
        ensure(member_ids(&now).contains(&newcomer) && count(&now) == size + 1, || format!("after adding one member: {} members, the newcomer {}", count(&now), if member_ids(&now).contains(&newcomer) { "among them" } else { "missing" }))?;
        let now = patched_then_read(cx, &mut log, &path, json!([{"op": "remove", "path": format!("members[value eq \"{newcomer}\"]")}]), &with_members).await?;
        ensure(!member_ids(&now).contains(&newcomer) && count(&now) == size, || format!("after removing that member: {} members, the newcomer {}", count(&now), if member_ids(&now).contains(&newcomer) { "still there" } else { "gone" }))
    });
}
