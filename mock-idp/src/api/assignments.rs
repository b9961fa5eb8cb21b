//! `/api/v1/apps/{id}/users` and `/groups`: who and which groups an app is assigned.

use super::*;

pub(super) fn app_user_json(
    idp: &Idp,
    org: &Org,
    app: &str,
    user: &User,
    direct: Option<&AppUser>,
) -> Value {
    let sync = org.user_sync(app, &user.id);
    json!({
        "id": user.id,
        "externalId": org.link(app, &user.id),
        "created": direct.map(|d| d.created.clone()).unwrap_or_else(|| user.created.clone()),
        "lastUpdated": user.last_updated,
        "scope": if direct.is_some() { "USER" } else { "GROUP" },
        "status": match sync { Some(s) if s.active => "PROVISIONED", Some(_) => "INACTIVE", None => "STAGED" },
        "syncState": org.sync_state(app, &user.id),
        "credentials": {"userName": user.login()},
        "profile": direct.map(|d| Value::Object(d.profile.clone())).unwrap_or_else(|| json!({})),
        "_links": {"app": {"href": format!("{}/api/v1/apps/{app}", idp.base_url)},
            "user": {"href": format!("{}/api/v1/users/{}", idp.base_url, user.id)}},
    })
}

pub(super) async fn list_app_users(
    _: Admin,
    State(idp): State<Shared>,
    Path(app): Path<String>,
    Query(params): Params,
) -> Result<Response> {
    let size = limit(&params, 500, 500)?;
    let org = idp.store.read();
    org.app(&app)?;
    let items = after(&org.users, &params)
        .filter(|u| org.is_assigned(&app, &u.id))
        .map(|u| {
            let direct = org.app_users.get(&(app.clone(), u.id.clone()));
            (u.id.as_str(), app_user_json(&idp, &org, &app, u, direct))
        });
    let (items, next) = paged(items, size);
    Ok(page(
        &idp,
        &format!("/api/v1/apps/{app}/users"),
        &params,
        items,
        next,
        size,
    ))
}

pub(super) async fn read_app_user(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, user)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    let u = org
        .users
        .get(&user)
        .filter(|u| org.is_assigned(&app, &u.id))
        .ok_or_else(|| OktaError::not_found(&user, "AppUser"))?;
    let direct = org.app_users.get(&(app.clone(), user.clone()));
    Ok(Json(app_user_json(&idp, &org, &app, u, direct)))
}

pub(super) async fn assign_user(
    _: Admin,
    State(idp): State<Shared>,
    Path(app): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let b = body(&raw)?;
    let user = b
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| OktaError::validation("id: The field cannot be left blank"))?
        .to_owned();
    match b.get("scope").and_then(Value::as_str) {
        None | Some("USER") => {}
        Some(other) => {
            return Err(OktaError::validation(format!(
                "scope: '{other}': only USER assignments are made here; assign a group with PUT /apps/{{app}}/groups/{{group}}"
            )))
        }
    }
    let profile = b
        .get("profile")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    apply(&idp, |tx| {
        let a = find_app(tx, &app)?.clone();
        let u = find_user(tx, &user)?.clone();
        let created = tx
            .app_user(&app, &u.id)
            .map(|d| d.created.clone())
            .unwrap_or_else(now);
        tx.set_app_user(
            &app,
            &u.id,
            Some(AppUser {
                app: app.clone(),
                user: u.id.clone(),
                created,
                profile,
            }),
        );
        tx.log(
            "application.user_membership.add",
            "Add user to application membership",
            vec![user_target(&u), app_target(&a)],
        );
        Ok(())
    })
    .await?;
    let org = idp.store.read();
    let u = org
        .users
        .get(&user)
        .ok_or_else(|| OktaError::not_found(&user, "User"))?;
    let direct = org.app_users.get(&(app.clone(), user.clone()));
    Ok(Json(app_user_json(&idp, &org, &app, u, direct)))
}

pub(super) async fn unassign_user(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, user)): Path<(String, String)>,
) -> Result<StatusCode> {
    apply(&idp, |tx| {
        let a = find_app(tx, &app)?.clone();
        if tx.app_user(&app, &user).is_none() {
            return Err(OktaError::not_found(&user, "AppUser"));
        }
        let u = find_user(tx, &user)?.clone();
        tx.set_app_user(&app, &user, None);
        tx.log(
            "application.user_membership.remove",
            "Remove user from application membership",
            vec![user_target(&u), app_target(&a)],
        );
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn app_group_json(idp: &Idp, a: &AppGroup) -> Value {
    json!({"id": a.group, "priority": a.priority, "lastUpdated": a.created, "profile": {},
        "_links": {"app": {"href": format!("{}/api/v1/apps/{}", idp.base_url, a.app)},
            "group": {"href": format!("{}/api/v1/groups/{}", idp.base_url, a.group)}}})
}

pub(super) async fn list_app_groups(
    _: Admin,
    State(idp): State<Shared>,
    Path(app): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    org.app(&app)?;
    let items: Vec<Value> = org
        .app_groups
        .values()
        .filter(|a| a.app == app)
        .map(|a| app_group_json(&idp, a))
        .collect();
    Ok(Json(Value::Array(items)))
}

pub(super) async fn read_app_group(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, group)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    let a = org
        .app_groups
        .get(&(app, group.clone()))
        .ok_or_else(|| OktaError::not_found(&group, "ApplicationGroupAssignment"))?;
    Ok(Json(app_group_json(&idp, a)))
}

pub(super) async fn assign_group(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, group)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let priority = if raw.is_empty() {
        None
    } else {
        body(&raw)?.get("priority").and_then(Value::as_u64)
    };
    let assignment = apply(&idp, |tx| {
        let a = find_app(tx, &app)?.clone();
        let g = find_group(tx, &group)?.clone();
        let assignment = AppGroup {
            app: app.clone(),
            group: group.clone(),
            priority: priority.unwrap_or(0),
            created: now(),
        };
        tx.set_app_group(&app, &group, Some(assignment.clone()));
        tx.log(
            "group.application_assignment.add",
            "Assign group to application",
            vec![group_target(&g), app_target(&a)],
        );
        Ok(assignment)
    })
    .await?;
    Ok(Json(app_group_json(&idp, &assignment)))
}

pub(super) async fn unassign_group(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, group)): Path<(String, String)>,
) -> Result<StatusCode> {
    apply(&idp, |tx| {
        let a = find_app(tx, &app)?.clone();
        let g = find_group(tx, &group)?.clone();
        if tx.app_group(&app, &group).is_none() {
            return Err(OktaError::not_found(&group, "ApplicationGroupAssignment"));
        }
        tx.set_app_group(&app, &group, None);
        tx.log(
            "group.application_assignment.remove",
            "Remove group from application",
            vec![group_target(&g), app_target(&a)],
        );
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
