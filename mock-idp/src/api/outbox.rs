//! The outbox of an app's provisioning (a scimlab extension): what waits, and retrying it.

use super::*;

pub(super) fn entry_json(e: &crate::model::Entry) -> Value {
    json!({"seq": e.seq, "type": e.op.event_type(), "subjects": e.subjects,
        "sharedSubjects": e.shared, "op": e.op,
        "accepted": e.accepted, "attempts": e.attempts, "lastError": e.last_error,
        "status": if e.parked { "PARKED" } else { "PENDING" },
        "notBefore": (e.not_before > 0).then(|| chrono::DateTime::from_timestamp_millis(e.not_before).map(|t| t.to_rfc3339())).flatten()})
}

pub(super) async fn list_outbox(
    _: Admin,
    State(idp): State<Shared>,
    Path(app): Path<String>,
    Query(params): Params,
) -> Result<Json<Value>> {
    let parked_only = match params.get("status").map(String::as_str) {
        None => None,
        Some("PARKED") | Some("parked") => Some(true),
        Some("PENDING") | Some("pending") => Some(false),
        Some(s) => {
            return Err(OktaError::validation(format!(
                "status: '{s}' is not PENDING or PARKED"
            )))
        }
    };
    let org = idp.store.read();
    org.app(&app)?;
    Ok(Json(Value::Array(
        org.app_outbox(&app)
            .filter(|e| parked_only.is_none_or(|p| e.parked == p))
            .map(entry_json)
            .collect(),
    )))
}

/// Puts parked entries (one, or all) back in line with a fresh set of attempts.
pub(super) async fn retry(idp: &Shared, app: &str, seq: Option<u64>) -> Result<usize> {
    let n = idp
        .store
        .change(|org, c| {
            if !org.apps.contains_key(app) {
                return Err(OktaError::not_found(app, "AppInstance"));
            }
            if let Some(s) = seq {
                if !org.outbox.contains_key(&(app.to_owned(), s)) {
                    return Err(OktaError::not_found(&s.to_string(), "OutboxEntry"));
                }
            }
            let mut n = 0;
            for e in org.app_outbox(app) {
                if e.parked && seq.is_none_or(|s| s == e.seq) {
                    let mut e = e.clone();
                    e.parked = false;
                    e.attempts = 0;
                    e.not_before = 0;
                    c.put(crate::model::Record::Entry(e));
                    n += 1;
                }
            }
            Ok(n)
        })
        .await?;
    engine::wake(idp, [app.to_owned()]);
    Ok(n)
}

pub(super) async fn retry_all(
    _: Admin,
    State(idp): State<Shared>,
    Path(app): Path<String>,
) -> Result<Json<Value>> {
    let n = retry(&idp, &app, None).await?;
    Ok(Json(json!({"retried": n})))
}

pub(super) async fn retry_entry(
    _: Admin,
    State(idp): State<Shared>,
    Path((app, seq)): Path<(String, u64)>,
) -> Result<Json<Value>> {
    let n = retry(&idp, &app, Some(seq)).await?;
    Ok(Json(json!({"retried": n})))
}
