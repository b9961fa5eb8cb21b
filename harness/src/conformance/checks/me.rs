//! /Me, the authenticated subject's own resource (RFC 7644 §3.11).

use super::*;

/// The checks of this section.
const IDS: &[&str] = &["P-ME-01", "P-ME-02", "P-ME-03"];

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    let mut log = Vec::new();
    let answer = match call(cx, &mut log, Method::GET, "/Me", None, &[]).await {
        Ok(e) => e,
        Err(why) => {
            s.block(&["P-ME-01", "P-ME-02", "P-ME-03"], &why);
            return s.finish();
        }
    };
    if answer.status == 200 {
        s.skip(&["P-ME-02"], "/Me is supported");
        let me = answer.json().unwrap_or(Value::Null);
        check!(s, "P-ME-01", log => {
            log.push(answer.clone());
            let id = me["id"].as_str().ok_or("the /Me answer has no id")?;
            let direct = get_json(cx, &mut log, &format!("/Users/{id}")).await?;
            ensure(direct["id"] == me["id"], || format!("/Me is {id} but /Users/{id} is {}", direct["id"]))
        });
        check!(s, "P-ME-03", log => {
            log.push(answer.clone());
            let location = me["meta"]["location"].as_str().unwrap_or("");
            ensure(!location.is_empty() && !location.trim_end_matches('/').ends_with("/Me"), || format!("meta.location is {location:?}, not the permanent URI"))?;
            ensure(answer.header("location").is_none_or(|l| !l.trim_end_matches('/').ends_with("/Me")), || "the Location header points at /Me".into())
        });
    } else {
        let reason = format!("/Me is not supported ({})", answer.status);
        s.skip(&["P-ME-01", "P-ME-03"], &reason);
        check!(s, "P-ME-02", log => {
            log.push(answer.clone());
            scim_error(&answer, 501, None)
        });
    }
    s.finish()
}
