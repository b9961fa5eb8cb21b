//! `/api/v1/apps/{id}/group-push/mappings`: group push.

use super::*;

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
