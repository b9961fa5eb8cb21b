//! `/api/v1/apps`: apps, their provisioning connection and features, user and group
//! assignments, group push.

use super::*;

pub(super) fn status_word(on: bool) -> &'static str {
    if on {
        "ENABLED"
    } else {
        "DISABLED"
    }
}

pub(super) fn app_json(idp: &Idp, a: &App) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "label": a.label,
        "status": if a.active { "ACTIVE" } else { "INACTIVE" },
        "created": a.created,
        "lastUpdated": a.last_updated,
        "signOnMode": a.sign_on_mode,
        "features": if a.connection.is_some() { json!(["PUSH_NEW_USERS", "PUSH_PROFILE_UPDATES", "PUSH_USER_DEACTIVATION", "GROUP_PUSH"]) } else { json!([]) },
        "settings": {"app": {"scimDialect": a.dialect, "scimMappings": a.mappings}},
        "_links": {"self": {"href": format!("{}/api/v1/apps/{}", idp.base_url, a.id)}},
    })
}

/// The scimlab settings of an app: its dialect and attribute mappings.
pub(super) fn app_settings(
    b: &Map<String, Value>,
) -> Result<(Option<Dialect>, Option<Vec<Mapping>>)> {
    let settings = b.get("settings").and_then(|s| s.get("app"));
    let dialect = match settings.and_then(|s| s.get("scimDialect")) {
        None | Some(Value::Null) => None,
        Some(d) => Some(serde_json::from_value(d.clone()).map_err(|_| {
            OktaError::validation(format!(
                "scimDialect: {d} is not one of \"okta\", \"entra\""
            ))
        })?),
    };
    let mappings = match settings.and_then(|s| s.get("scimMappings")) {
        None | Some(Value::Null) => None,
        Some(m) => {
            let list: Vec<Mapping> = serde_json::from_value(m.clone()).map_err(|e| {
                OktaError::validation(format!(
                    "scimMappings: a list of {{\"to\": SCIM path, \"from\": template}}: {e}"
                ))
            })?;
            mapping::validate(&list)
                .map_err(|e| OktaError::validation(format!("scimMappings: {e}")))?;
            Some(list)
        }
    };
    Ok((dialect, mappings))
}

pub(super) fn find_app<'t>(tx: &'t Tx, id: &str) -> Result<&'t App> {
    tx.app(id)
        .ok_or_else(|| OktaError::not_found(id, "AppInstance"))
}

pub(super) async fn create_app(
    _: Admin,
    State(idp): State<Shared>,
    Query(params): Params,
    raw: Bytes,
) -> Result<Json<Value>> {
    let b = body(&raw)?;
    let activate = flag(&params, "activate", true)?;
    let label = b
        .get("label")
        .and_then(Value::as_str)
        .filter(|l| !l.trim().is_empty())
        .ok_or_else(|| OktaError::validation("label: The field cannot be left blank"))?
        .to_owned();
    let text = |k: &str, default: &str| {
        b.get(k)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    let (dialect, mappings) = app_settings(&b)?;
    let app = apply(&idp, |tx| {
        let at = now();
        let app = App {
            id: new_id("0oa"),
            name: text("name", "scimlab_scim2"),
            label,
            active: activate,
            created: at.clone(),
            last_updated: at,
            sign_on_mode: text("signOnMode", "AUTO_LOGIN"),
            dialect: dialect.unwrap_or(Dialect::Okta),
            mappings: mappings.unwrap_or_else(mapping::defaults),
            connection: None,
            features: Features::default(),
        };
        tx.put_app(app.clone());
        tx.log(
            "application.lifecycle.create",
            "Add application",
            vec![app_target(&app)],
        );
        Ok(app)
    })
    .await?;
    Ok(Json(app_json(&idp, &app)))
}

pub(super) async fn read_app(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    let a = org.app(&id)?;
    Ok(Json(app_json(&idp, a)))
}

pub(super) async fn list_apps(_: Admin, State(idp): State<Shared>) -> Json<Value> {
    let org = idp.store.read();
    Json(Value::Array(
        org.apps.values().map(|a| app_json(&idp, a)).collect(),
    ))
}

/// Runs `edit` on an app and stores it, re-planning what it provisions.
pub(super) async fn edit_app(
    idp: &Shared,
    id: &str,
    event: (&str, &str),
    edit: impl FnOnce(&mut App) -> Result<()> + Send,
) -> Result<App> {
    apply(idp, |tx| {
        let mut app = find_app(tx, id)?.clone();
        edit(&mut app)?;
        app.last_updated = now();
        tx.put_app(app.clone());
        tx.log(event.0, event.1, vec![app_target(&app)]);
        Ok(app)
    })
    .await
}

pub(super) async fn update_app(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let b = body(&raw)?;
    let (dialect, mappings) = app_settings(&b)?;
    let label = b.get("label").and_then(Value::as_str).map(str::to_owned);
    let app = edit_app(
        &idp,
        &id,
        ("application.lifecycle.update", "Update application"),
        |app| {
            if let Some(l) = label {
                app.label = l;
            }
            if let Some(d) = dialect {
                app.dialect = d;
            }
            if let Some(m) = mappings {
                app.mappings = m;
            }
            Ok(())
        },
    )
    .await?;
    Ok(Json(app_json(&idp, &app)))
}

pub(super) async fn app_lifecycle(
    _: Admin,
    State(idp): State<Shared>,
    Path((id, op)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let active = switch(&op)?;
    let event = if active {
        ("application.lifecycle.activate", "Activate application")
    } else {
        ("application.lifecycle.deactivate", "Deactivate application")
    };
    edit_app(&idp, &id, event, |app| {
        app.active = active;
        Ok(())
    })
    .await?;
    Ok(Json(json!({})))
}

/// `activate` -> on, `deactivate` -> off.
pub(super) fn switch(op: &str) -> Result<bool> {
    match op {
        "activate" => Ok(true),
        "deactivate" => Ok(false),
        _ => Err(OktaError::not_found(op, "Lifecycle operation")),
    }
}

/// Okta deletes only inactive apps. The app's outbox goes with it.
pub(super) async fn delete_app(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    apply(&idp, |tx| {
        let app = find_app(tx, &id)?.clone();
        if app.active {
            return Err(OktaError::new(
                403,
                "E0000056",
                "Delete application forbidden.",
            ));
        }
        tx.delete_app(&id);
        tx.log(
            "application.lifecycle.delete",
            "Delete application",
            vec![app_target(&app)],
        );
        Ok(())
    })
    .await?;
    engine::wake(&idp, [id]);
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn connection_json(idp: &Idp, a: &App) -> Value {
    match &a.connection {
        Some(c) => {
            json!({"authScheme": if c.oauth.is_some() { "OAUTH2" } else { "TOKEN" }, "baseUrl": c.base_url,
            "status": status_word(c.enabled),
            "_links": {"self": {"href": format!("{}/api/v1/apps/{}/connections/default", idp.base_url, a.id)}}})
        }
        None => json!({"authScheme": "UNKNOWN", "status": "DISABLED"}),
    }
}

pub(super) async fn read_connection(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    let a = org.app(&id)?;
    Ok(Json(connection_json(&idp, a)))
}

pub(super) async fn set_connection(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
    Query(params): Params,
    raw: Bytes,
) -> Result<Json<Value>> {
    let b = body(&raw)?;
    let activate = flag(&params, "activate", true)?;
    let profile = b.get("profile").cloned().unwrap_or(Value::Null);
    let field = |name: &str| {
        profile
            .get(name)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| OktaError::validation(format!("{name}: The field cannot be left blank")))
    };
    let (token, oauth) = match profile.get("authScheme").and_then(Value::as_str) {
        Some("TOKEN") => (field("token")?, None),
        Some("OAUTH2") => {
            let token_url = field("tokenUrl")?;
            if !token_url.starts_with("http://") && !token_url.starts_with("https://") {
                return Err(OktaError::validation(
                    "tokenUrl: an http:// or https:// URL",
                ));
            }
            let oauth = OAuthConnection {
                token_url,
                client_id: field("clientId")?,
                client_secret: field("clientSecret")?,
            };
            (String::new(), Some(oauth))
        }
        _ => {
            return Err(OktaError::validation(
                "authScheme: TOKEN (a static bearer token) or OAUTH2 (client credentials: \
                 tokenUrl, clientId, clientSecret)",
            ))
        }
    };
    let base_url = b
        .get("baseUrl")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .ok_or_else(|| OktaError::validation("baseUrl: an http:// or https:// URL"))?
        .to_owned();
    let app = edit_app(
        &idp,
        &id,
        (
            "application.lifecycle.update",
            "Update provisioning connection",
        ),
        |app| {
            app.connection = Some(Connection {
                base_url,
                token,
                enabled: activate,
                oauth,
            });
            Ok(())
        },
    )
    .await?;
    Ok(Json(connection_json(&idp, &app)))
}

pub(super) async fn connection_lifecycle(
    _: Admin,
    State(idp): State<Shared>,
    Path((id, op)): Path<(String, String)>,
) -> Result<StatusCode> {
    let enabled = switch(&op)?;
    edit_app(
        &idp,
        &id,
        (
            "application.lifecycle.update",
            "Update provisioning connection",
        ),
        |app| match &mut app.connection {
            Some(c) => {
                c.enabled = enabled;
                Ok(())
            }
            None => Err(OktaError::validation(
                "connection: the app has no provisioning connection",
            )),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn feature_json(idp: &Idp, a: &App) -> Value {
    let f = a.features;
    json!({
        "name": "USER_PROVISIONING",
        "status": status_word(a.connection.is_some()),
        "description": "User provisioning settings from Okta to a downstream app",
        "capabilities": {
            "create": {"lifecycleCreate": {"status": status_word(f.create)}},
            "update": {
                "profile": {"status": status_word(f.update)},
                "lifecycleDeactivate": {"status": status_word(f.deactivate)},
                "password": {"status": "DISABLED", "seed": "RANDOM", "change": "KEEP_EXISTING"},
            },
        },
        "_links": {"self": {"href": format!("{}/api/v1/apps/{}/features/USER_PROVISIONING", idp.base_url, a.id)}},
    })
}

pub(super) async fn list_features(
    _: Admin,
    State(idp): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    let a = org.app(&id)?;
    Ok(Json(json!([feature_json(&idp, a)])))
}

pub(super) async fn read_feature(
    _: Admin,
    State(idp): State<Shared>,
    Path((id, feature)): Path<(String, String)>,
) -> Result<Json<Value>> {
    if feature != "USER_PROVISIONING" {
        return Err(OktaError::not_found(&feature, "ApplicationFeature"));
    }
    let org = idp.store.read();
    let a = org.app(&id)?;
    Ok(Json(feature_json(&idp, a)))
}

pub(super) fn capability(caps: &Value, path: &[&str]) -> Result<Option<bool>> {
    let mut v = caps;
    for p in path {
        match v.get(*p) {
            Some(next) => v = next,
            None => return Ok(None),
        }
    }
    match v.get("status").and_then(Value::as_str) {
        Some("ENABLED") => Ok(Some(true)),
        Some("DISABLED") => Ok(Some(false)),
        _ => Err(OktaError::validation(format!(
            "capabilities.{}.status: ENABLED or DISABLED",
            path.join(".")
        ))),
    }
}

pub(super) async fn update_feature(
    _: Admin,
    State(idp): State<Shared>,
    Path((id, feature)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Json<Value>> {
    if feature != "USER_PROVISIONING" {
        return Err(OktaError::not_found(&feature, "ApplicationFeature"));
    }
    let b = body(&raw)?;
    let caps = b.get("capabilities").cloned().unwrap_or(Value::Null);
    let create = capability(&caps, &["create", "lifecycleCreate"])?;
    let update = capability(&caps, &["update", "profile"])?;
    let deactivate = capability(&caps, &["update", "lifecycleDeactivate"])?;
    let app = edit_app(
        &idp,
        &id,
        (
            "application.lifecycle.update",
            "Update provisioning features",
        ),
        |app| {
            let f = &mut app.features;
            f.create = create.unwrap_or(f.create);
            f.update = update.unwrap_or(f.update);
            f.deactivate = deactivate.unwrap_or(f.deactivate);
            Ok(())
        },
    )
    .await?;
    Ok(Json(feature_json(&idp, &app)))
}

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

pub(super) fn push_json(org: &Org, p: &Push) -> Value {
    json!({"id": p.id, "sourceGroupId": p.group, "targetGroupId": org.link(&p.app, &p.group),
        "status": if p.active { "ACTIVE" } else { "INACTIVE" },
        "created": p.created, "lastUpdated": p.last_updated})
}

pub(super) fn find_push<'o>(org: &'o Org, app: &str, mapping: &str) -> Result<&'o Push> {
    org.pushes
        .values()
        .find(|p| p.app == app && p.id == mapping)
        .ok_or_else(|| OktaError::not_found(mapping, "GroupPushMapping"))
}

pub(super) fn push_status(b: &Map<String, Value>) -> Result<Option<bool>> {
    match b.get("status").and_then(Value::as_str) {
        None => Ok(None),
        Some("ACTIVE") => Ok(Some(true)),
        Some("INACTIVE") => Ok(Some(false)),
        Some(s) => Err(OktaError::validation(format!(
            "status: '{s}' is not ACTIVE or INACTIVE"
        ))),
    }
}

pub(super) async fn list_pushes(
    _: Admin,
    State(idp): State<Shared>,
    Path(app): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    org.app(&app)?;
    Ok(Json(Value::Array(
        org.pushes
            .values()
            .filter(|p| p.app == app)
            .map(|p| push_json(&org, p))
            .collect(),
    )))
}

pub(super) async fn read_push(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, mapping)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    Ok(Json(push_json(&org, find_push(&org, &app, &mapping)?)))
}

pub(super) async fn create_push(
    _: Admin,
    State(idp): State<Shared>,
    Path(app): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let b = body(&raw)?;
    let group = b
        .get("sourceGroupId")
        .and_then(Value::as_str)
        .ok_or_else(|| OktaError::validation("sourceGroupId: The field cannot be left blank"))?
        .to_owned();
    if b.contains_key("targetGroupId") {
        return Err(OktaError::validation(
            "targetGroupId: linking to an existing target group is not supported; the group is created (or found by displayName) in the target",
        ));
    }
    let active = push_status(&b)?.unwrap_or(true);
    let push = apply(&idp, |tx| {
        let a = find_app(tx, &app)?.clone();
        let g = find_group(tx, &group)?.clone();
        if tx.push(&app, &group).is_some() {
            return Err(OktaError::validation(
                "sourceGroupId: the group is already pushed to this app",
            ));
        }
        let at = now();
        let push = Push {
            id: new_id("gPm"),
            app: app.clone(),
            group: group.clone(),
            active,
            created: at.clone(),
            last_updated: at,
        };
        tx.set_push(&app, &group, Some(push.clone()));
        tx.log(
            "application.provision.group_push.mapping.created",
            "Create group push mapping",
            vec![group_target(&g), app_target(&a)],
        );
        Ok(push)
    })
    .await?;
    let org = idp.store.read();
    Ok(Json(push_json(&org, &push)))
}

pub(super) async fn update_push(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, mapping)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let b = body(&raw)?;
    let active = push_status(&b)?
        .ok_or_else(|| OktaError::validation("status: The field cannot be left blank"))?;
    let push = apply(&idp, |tx| {
        let mut push = find_push(tx.org(), &app, &mapping)?.clone();
        push.active = active;
        push.last_updated = now();
        tx.set_push(&app, &push.group.clone(), Some(push.clone()));
        Ok(push)
    })
    .await?;
    let org = idp.store.read();
    Ok(Json(push_json(&org, &push)))
}

/// Okta deletes only inactive mappings; `deleteTargetGroup=true` also deletes the group in the
/// target, otherwise it stays there, unlinked.
pub(super) async fn delete_push(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, mapping)): Path<(String, String)>,
    Query(params): Params,
) -> Result<StatusCode> {
    let delete_target = flag(&params, "deleteTargetGroup", false)?;
    apply(&idp, |tx| {
        let push = find_push(tx.org(), &app, &mapping)?.clone();
        if push.active {
            return Err(OktaError::validation(
                "status: deactivate the mapping before deleting it",
            ));
        }
        if !delete_target {
            tx.unlink_group(&app, &push.group);
        }
        tx.set_push(&app, &push.group, None);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
