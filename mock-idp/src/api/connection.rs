//! `/api/v1/apps/{id}/connections/default` and `/features`: an app's provisioning connection
//! and what it may do (create, update, deactivate users; push passwords).

use super::*;

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
