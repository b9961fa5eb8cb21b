//! `/api/v1/groups`: groups and their members.

use super::*;

pub(super) fn group_json(idp: &Idp, g: &Group) -> Value {
    json!({
        "id": g.id,
        "created": g.created,
        "lastUpdated": g.last_updated,
        "lastMembershipUpdated": g.last_membership_updated,
        "objectClass": ["okta:user_group"],
        "type": "OKTA_GROUP",
        "profile": {"name": g.name, "description": g.description},
        "_links": {"self": {"href": format!("{}/api/v1/groups/{}", idp.base_url, g.id)}},
    })
}

pub(super) fn group_profile(raw: &Bytes) -> Result<(String, Option<String>)> {
    let b = body(raw)?;
    let profile = b
        .get("profile")
        .and_then(Value::as_object)
        .ok_or_else(|| OktaError::validation("profile: The field cannot be left blank"))?;
    let name = profile
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| OktaError::validation("name: The field cannot be left blank"))?;
    let description = profile
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok((name.to_owned(), description))
}

pub(super) async fn create_group(
    _: Admin,
    State(idp): State<Shared>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let (name, description) = group_profile(&raw)?;
    let group = apply(&idp, |tx| {
        let id = new_id("00g");
        if tx.group_name_taken(&name, &id) {
            return Err(OktaError::validation(
                "name: An object with this field already exists in the current organization",
            ));
        }
        let at = now();
        let g = Group {
            id,
            created: at.clone(),
            last_updated: at.clone(),
            last_membership_updated: at,
            name,
            description,
        };
        tx.put_group(g.clone());
        tx.log(
            "group.lifecycle.create",
            "Create Okta group",
            vec![group_target(&g)],
        );
        Ok(g)
    })
    .await?;
    Ok(Json(group_json(&idp, &group)))
}

pub(super) async fn read_group(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    let g = org
        .groups
        .get(&id)
        .ok_or_else(|| OktaError::not_found(&id, "UserGroup"))?;
    Ok(Json(group_json(&idp, g)))
}

pub(super) async fn list_groups(
    _: Admin,
    State(idp): State<Shared>,
    Query(params): Params,
) -> Result<Response> {
    let size = limit(&params, 10_000, 10_000)?;
    let q = params.get("q").map(|q| q.to_lowercase());
    let filter = match params.get("search").or_else(|| params.get("filter")) {
        Some(f) => Some(parse_filter(f)?),
        None => None,
    };
    let org = idp.store.read();
    let items = after(&org.groups, &params).filter_map(|g| {
        if q.as_ref()
            .is_some_and(|q| !g.name.to_lowercase().starts_with(q.as_str()))
        {
            return None;
        }
        let doc = group_json(&idp, g);
        if filter.as_ref().is_some_and(|f| !matches(f, &doc)) {
            return None;
        }
        Some((g.id.as_str(), doc))
    });
    let (items, next) = paged(items, size);
    Ok(page(&idp, "/api/v1/groups", &params, items, next, size))
}

pub(super) async fn update_group(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let (name, description) = group_profile(&raw)?;
    let group = apply(&idp, |tx| {
        let mut g = find_group(tx, &id)?.clone();
        if tx.group_name_taken(&name, &id) {
            return Err(OktaError::validation(
                "name: An object with this field already exists in the current organization",
            ));
        }
        g.name = name;
        g.description = description;
        g.last_updated = now();
        tx.put_group(g.clone());
        tx.log(
            "group.profile.update",
            "Update group profile",
            vec![group_target(&g)],
        );
        Ok(g)
    })
    .await?;
    Ok(Json(group_json(&idp, &group)))
}

pub(super) async fn delete_group(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    apply(&idp, |tx| {
        let g = find_group(tx, &id)?.clone();
        tx.delete_group(&id);
        tx.log(
            "group.lifecycle.delete",
            "Delete Okta group",
            vec![group_target(&g)],
        );
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn group_users(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    if !org.groups.contains_key(&id) {
        return Err(OktaError::not_found(&id, "UserGroup"));
    }
    let users: Vec<Value> = org
        .members_of(&id)
        .filter_map(|u| org.users.get(u))
        .map(|u| user_json(&idp, u))
        .collect();
    Ok(Json(Value::Array(users)))
}

pub(super) async fn membership(
    idp: &Shared,
    group: &str,
    key: &str,
    member: bool,
) -> Result<StatusCode> {
    apply(idp, |tx| {
        let mut g = find_group(tx, group)?.clone();
        let user = find_user(tx, key)?.clone();
        if tx.is_member(group, &user.id) == member {
            return Ok(());
        }
        tx.set_member(group, &user.id, member);
        g.last_membership_updated = now();
        let (kind, message) = if member {
            ("group.user_membership.add", "Add user to group membership")
        } else {
            (
                "group.user_membership.remove",
                "Remove user from group membership",
            )
        };
        tx.log(kind, message, vec![user_target(&user), group_target(&g)]);
        tx.put_group(g);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn add_member(
    _: Admin,
    State(idp): State<Shared>,
    Path((group, user)): Path<(String, String)>,
) -> Result<StatusCode> {
    membership(&idp, &group, &user, true).await
}

pub(super) async fn remove_member(
    _: Admin,
    State(idp): State<Shared>,
    Path((group, user)): Path<(String, String)>,
) -> Result<StatusCode> {
    membership(&idp, &group, &user, false).await
}
