//! `/api/v1/users`: people, their profile and lifecycle.

use super::*;

pub(super) fn user_json(idp: &Idp, u: &User) -> Value {
    let mut credentials = json!({"provider": {"type": "OKTA", "name": "OKTA"}});
    if u.password_changed.is_some() {
        credentials["password"] = json!({});
    }
    json!({
        "id": u.id,
        "status": u.status,
        "created": u.created,
        "activated": u.activated,
        "statusChanged": u.status_changed,
        "lastLogin": null,
        "lastUpdated": u.last_updated,
        "passwordChanged": u.password_changed,
        "type": {"id": "oty1scimlabdefault000"},
        "profile": u.profile,
        "credentials": credentials,
        "_links": {"self": {"href": format!("{}/api/v1/users/{}", idp.base_url, u.id)}},
    })
}

const REQUIRED_PROFILE: &[&str] = &["login", "email", "firstName", "lastName"];

/// Checks a profile as Okta's base user schema does.
pub(super) fn check_profile(profile: &Map<String, Value>) -> Result<()> {
    for name in REQUIRED_PROFILE {
        match profile.get(*name) {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            _ => {
                return Err(OktaError::validation(format!(
                    "{name}: The field cannot be left blank"
                )))
            }
        }
    }
    for (name, value) in profile {
        let multi_line = !REQUIRED_PROFILE.contains(&name.as_str());
        let texts = std::iter::once(value).chain(value.as_array().into_iter().flatten());
        if let Some(c) = texts
            .filter_map(Value::as_str)
            .find_map(|s| scim::json::control_character(s, multi_line))
        {
            return Err(OktaError::validation(format!(
                "{name}: contains the control character {c}"
            )));
        }
        let ok = match value {
            Value::Object(_) => false,
            Value::Array(items) => items.iter().all(|i| !i.is_object() && !i.is_array()),
            _ => true,
        };
        if !ok {
            return Err(OktaError::validation(format!(
                "{name}: a profile attribute holds a string, number, boolean or a list of them"
            )));
        }
    }
    let email = profile
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let valid = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !valid {
        return Err(OktaError::validation(format!(
            "email: Does not match required pattern ('{email}')"
        )));
    }
    Ok(())
}

pub(super) fn check_login(tx: &Tx, login: &str, id: &str) -> Result<()> {
    match tx.org().user_by_login(login) {
        Some(other) if other.id != id && tx.user(&other.id).is_some() => {
            Err(OktaError::validation(
                "login: An object with this field already exists in the current organization",
            ))
        }
        _ => Ok(()),
    }
}

pub(super) fn password_of(body: &Map<String, Value>) -> Result<Option<String>> {
    match body.get("credentials").and_then(|c| c.get("password")) {
        None | Some(Value::Null) => Ok(None),
        Some(p) => match p.get("value").and_then(Value::as_str) {
            Some(v) if v.chars().count() >= 8 => Ok(Some(v.to_owned())),
            _ => Err(OktaError::validation(
                "password: Password requirements: at least 8 characters",
            )),
        },
    }
}

pub(super) fn find_user<'t>(tx: &'t Tx, key: &str) -> Result<&'t User> {
    let id = tx
        .org()
        .find_user(key)
        .map(|u| u.id.clone())
        .unwrap_or_else(|| key.to_owned());
    tx.user(&id)
        .ok_or_else(|| OktaError::not_found(key, "User"))
}

pub(super) fn find_group<'t>(tx: &'t Tx, id: &str) -> Result<&'t Group> {
    tx.group(id)
        .ok_or_else(|| OktaError::not_found(id, "UserGroup"))
}

pub(super) async fn create_user(
    _: Admin,
    State(idp): State<Shared>,
    Query(params): Params,
    raw: Bytes,
) -> Result<Json<Value>> {
    let b = body(&raw)?;
    let activate = flag(&params, "activate", true)?;
    let profile = b
        .get("profile")
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| OktaError::validation("profile: The field cannot be left blank"))?;
    check_profile(&profile)?;
    let password = password_of(&b)?;
    let group_ids: Vec<String> = match b.get("groupIds") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| OktaError::validation("groupIds: ids are strings"))
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(OktaError::validation("groupIds: a list of group ids")),
    };
    let user = apply(&idp, |tx| {
        let id = new_id("00u");
        let login = profile
            .get("login")
            .and_then(Value::as_str)
            .unwrap_or_default();
        check_login(tx, login, &id)?;
        for g in &group_ids {
            find_group(tx, g)?;
        }
        let at = now();
        let status = match (activate, &password) {
            (false, _) => Status::Staged,
            (true, Some(_)) => Status::Active,
            (true, None) => Status::Provisioned,
        };
        let user = User {
            id: id.clone(),
            status,
            created: at.clone(),
            activated: activate.then(|| at.clone()),
            status_changed: activate.then(|| at.clone()),
            last_updated: at.clone(),
            password_changed: password.as_ref().map(|_| at.clone()),
            profile,
        };
        tx.put_user(user.clone());
        tx.log(
            "user.lifecycle.create",
            "Create Okta user",
            vec![user_target(&user)],
        );
        if activate {
            tx.log(
                "user.lifecycle.activate",
                "Activate Okta user",
                vec![user_target(&user)],
            );
        }
        for g in &group_ids {
            tx.set_member(g, &id, true);
            let group = find_group(tx, g)?.clone();
            tx.log(
                "group.user_membership.add",
                "Add user to group membership",
                vec![user_target(&user), group_target(&group)],
            );
        }
        Ok(user)
    })
    .await?;
    Ok(Json(user_json(&idp, &user)))
}

pub(super) async fn read_user(
    _: Admin,
    State(idp): State<Shared>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    let u = org
        .find_user(&key)
        .ok_or_else(|| OktaError::not_found(&key, "User"))?;
    Ok(Json(user_json(&idp, u)))
}

pub(super) fn profile_text(u: &User) -> String {
    ["firstName", "lastName", "email", "login"]
        .iter()
        .filter_map(|k| u.profile.get(*k).and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase()
}

pub(super) async fn list_users(
    _: Admin,
    State(idp): State<Shared>,
    Query(params): Params,
) -> Result<Response> {
    let size = limit(&params, 200, 200)?;
    let filter = match params.get("search").or_else(|| params.get("filter")) {
        Some(f) => Some(parse_filter(f)?),
        None => None,
    };
    let q = params.get("q").map(|q| q.to_lowercase());
    let org = idp.store.read();
    let items = after(&org.users, &params).filter_map(|u| {
        if let Some(q) = &q {
            if !profile_text(u)
                .split('\n')
                .any(|f| f.starts_with(q.as_str()))
            {
                return None;
            }
        }
        let doc = user_json(&idp, u);
        if filter.as_ref().is_some_and(|f| !matches(f, &doc)) {
            return None;
        }
        Some((u.id.as_str(), doc))
    });
    let (items, next) = paged(items, size);
    Ok(page(&idp, "/api/v1/users", &params, items, next, size))
}

/// Partial (`POST`) or full (`PUT`) profile update.
pub(super) async fn write_profile(
    idp: Shared,
    key: String,
    raw: Bytes,
    partial: bool,
) -> Result<Json<Value>> {
    let b = body(&raw)?;
    let changes = b
        .get("profile")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let password = password_of(&b)?;
    if !partial && !b.contains_key("profile") {
        return Err(OktaError::validation(
            "profile: The field cannot be left blank",
        ));
    }
    let user = apply(&idp, |tx| {
        let mut user = find_user(tx, &key)?.clone();
        if partial {
            for (k, v) in changes {
                if v.is_null() {
                    user.profile.remove(&k);
                } else {
                    user.profile.insert(k, v);
                }
            }
        } else {
            user.profile = changes;
        }
        check_profile(&user.profile)?;
        check_login(tx, user.login(), &user.id)?;
        let at = now();
        if password.is_some() {
            user.password_changed = Some(at.clone());
        }
        user.last_updated = at;
        tx.put_user(user.clone());
        tx.log(
            "user.account.update_profile",
            "Update user profile for Okta",
            vec![user_target(&user)],
        );
        Ok(user)
    })
    .await?;
    Ok(Json(user_json(&idp, &user)))
}

pub(super) async fn update_user(
    _: Admin,
    State(idp): State<Shared>,
    Path(key): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    write_profile(idp, key, raw, true).await
}

pub(super) async fn replace_user(
    _: Admin,
    State(idp): State<Shared>,
    Path(key): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    write_profile(idp, key, raw, false).await
}

/// The status a lifecycle operation leads to from `from`, or why it cannot.
pub(super) fn transition(
    op: &str,
    from: Status,
    has_password: bool,
) -> Result<(Status, &'static str)> {
    use Status::*;
    let activated = if has_password { Active } else { Provisioned };
    match (op, from) {
        ("activate", Staged | Deprovisioned) => Ok((activated, "user.lifecycle.activate")),
        ("activate", _) => Err(OktaError::new(
            403,
            "E0000016",
            "Activation failed because the user is already active",
        )),
        ("deactivate", Deprovisioned) => Err(OktaError::wrong_status(
            "This operation is not allowed in the user's current status.",
        )),
        ("deactivate", _) => Ok((Deprovisioned, "user.lifecycle.deactivate")),
        ("suspend", Active) => Ok((Suspended, "user.lifecycle.suspend")),
        ("suspend", _) => Err(OktaError::validation(
            "status: Cannot suspend a user that is not active",
        )),
        ("unsuspend", Suspended) => Ok((Active, "user.lifecycle.unsuspend")),
        ("unsuspend", _) => Err(OktaError::validation(
            "status: Cannot unsuspend a user that is not suspended",
        )),
        ("reactivate", Provisioned) => Ok((Provisioned, "user.lifecycle.reactivate")),
        ("reactivate", _) => Err(OktaError::wrong_status(
            "This operation is not allowed in the user's current status.",
        )),
        _ => Err(OktaError::not_found(op, "Lifecycle operation")),
    }
}

pub(super) async fn set_status(idp: &Shared, key: &str, op: &str) -> Result<()> {
    apply(idp, |tx| {
        let mut user = find_user(tx, key)?.clone();
        let (status, event) = transition(op, user.status, user.password_changed.is_some())?;
        let at = now();
        if status != user.status {
            user.status_changed = Some(at.clone());
        }
        if op == "activate" {
            user.activated = Some(at.clone());
        }
        user.status = status;
        user.last_updated = at;
        let message = match op {
            "activate" => "Activate Okta user",
            "deactivate" => "Deactivate Okta user",
            "suspend" => "Suspend Okta user",
            "unsuspend" => "Unsuspend Okta user",
            _ => "Reactivate Okta user",
        };
        tx.log(event, message, vec![user_target(&user)]);
        tx.put_user(user);
        Ok(())
    })
    .await
}

pub(super) async fn lifecycle(
    _: Admin,
    State(idp): State<Shared>,
    Path((key, op)): Path<(String, String)>,
) -> Result<Json<Value>> {
    set_status(&idp, &key, &op).await?;
    Ok(Json(json!({})))
}

/// Okta's two-step delete: the first DELETE deactivates, the second deletes.
pub(super) async fn delete_user(
    _: Admin,
    State(idp): State<Shared>,
    Path(key): Path<String>,
) -> Result<StatusCode> {
    let status = {
        let org = idp.store.read();
        org.find_user(&key)
            .map(|u| u.status)
            .ok_or_else(|| OktaError::not_found(&key, "User"))?
    };
    if status != Status::Deprovisioned {
        set_status(&idp, &key, "deactivate").await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    apply(&idp, |tx| {
        let user = find_user(tx, &key)?.clone();
        tx.delete_user(&user.id);
        tx.log(
            "user.lifecycle.delete.completed",
            "Delete Okta user",
            vec![user_target(&user)],
        );
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn user_groups(
    _: Admin,
    State(idp): State<Shared>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    let org = idp.store.read();
    let u = org
        .find_user(&key)
        .ok_or_else(|| OktaError::not_found(&key, "User"))?;
    let groups: Vec<Value> = org
        .groups_of(&u.id)
        .filter_map(|g| org.groups.get(g))
        .map(|g| group_json(&idp, g))
        .collect();
    Ok(Json(Value::Array(groups)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_transitions_follow_okta() {
        use Status::*;
        assert_eq!(
            transition("activate", Staged, false).unwrap().0,
            Provisioned
        );
        assert_eq!(
            transition("activate", Deprovisioned, true).unwrap().0,
            Active
        );
        assert_eq!(
            transition("activate", Active, true).unwrap_err().code,
            "E0000016"
        );
        assert_eq!(transition("suspend", Active, true).unwrap().0, Suspended);
        assert_eq!(
            transition("suspend", Provisioned, false)
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(transition("unsuspend", Suspended, true).unwrap().0, Active);
        assert_eq!(
            transition("deactivate", Suspended, true).unwrap().0,
            Deprovisioned
        );
        assert_eq!(
            transition("deactivate", Deprovisioned, true)
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(transition("explode", Active, true).unwrap_err().status, 404);
    }
}
