//! `/api/v1/apps`: apps themselves (settings, lifecycle, deletion).

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
