//! ServiceProviderConfig, ResourceTypes and Schemas: what discovery must answer.

use super::*;

/// The checks of this section.
const IDS: &[&str] = &[
    "P-DISC-01",
    "P-DISC-02",
    "P-DISC-04",
    "P-DISC-05",
    "P-DISC-06",
    "P-DISC-07",
    "P-DISC-09",
    "P-DISC-10",
    "P-DISC-11",
    "P-DISC-12",
    "P-DISC-13",
];

pub async fn section(cx: &Cx) -> Vec<CheckResult> {
    let mut s = Section::new(cx, &[IDS]);
    check!(s, "P-DISC-01", log => {
        let e = call(cx, &mut log, Method::GET, "/ServiceProviderConfig", None, &[]).await?;
        status(&e, &[200])?;
        let b = body(&e)?;
        ensure(b["schemas"].as_array().is_some_and(|a| a.contains(&json!("urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"))), || format!("schemas lacks the ServiceProviderConfig URN: {}", b["schemas"]))
    });
    check!(s, "P-DISC-02", log => {
        let e = call(cx, &mut log, Method::GET, "/ServiceProviderConfig", None, &[]).await?;
        let b = body(&e)?;
        for feature in ["patch", "bulk", "filter", "changePassword", "sort", "etag"] {
            ensure(b[feature]["supported"].is_boolean(), || format!("{feature}.supported must be a boolean, got {}", b[feature]["supported"]))?;
        }
        for (f, k) in [("bulk", "maxOperations"), ("bulk", "maxPayloadSize"), ("filter", "maxResults")] {
            ensure(b[f][k].is_u64(), || format!("{f}.{k} must be an integer, got {}", b[f][k]))?;
        }
        ensure(b["authenticationSchemes"].is_array(), || format!("authenticationSchemes must be an array, got {}", b["authenticationSchemes"]))
    });
    let mut types = Vec::new();
    check!(s, "P-DISC-04", log => {
        let e = call(cx, &mut log, Method::GET, "/ResourceTypes", None, &[]).await?;
        status(&e, &[200])?;
        let b = body(&e)?;
        ensure(b["schemas"] == json!([LIST]), || format!("expected a ListResponse, got schemas {}", b["schemas"]))?;
        types = resources(&b);
        ensure(!types.is_empty(), || "no ResourceType listed".into())
    });
    check!(s, "P-DISC-05", log => {
        let e = call(cx, &mut log, Method::GET, "/ResourceTypes", None, &[]).await?;
        let listed = resources(&body(&e)?);
        ensure(!listed.is_empty(), || "/ResourceTypes lists no ResourceType to examine".into())?;
        for rt in listed {
            for k in ["name", "endpoint", "schema"] {
                ensure(rt[k].is_string(), || format!("ResourceType lacks a string {k}: {rt}"))?;
            }
            for ext in rt["schemaExtensions"].as_array().into_iter().flatten() {
                ensure(ext["schema"].is_string() && ext["required"].is_boolean(), || format!("bad schemaExtensions entry {ext}"))?;
            }
        }
        Ok(())
    });
    check!(s, "P-DISC-06", log => {
        let name = types.first().and_then(|t| t["name"].as_str()).unwrap_or("User").to_owned();
        let e = call(cx, &mut log, Method::GET, &format!("/ResourceTypes/{name}"), None, &[]).await?;
        status(&e, &[200])?;
        let b = body(&e)?;
        ensure(b["name"] == json!(name) && b.get("Resources").is_none(), || format!("expected the ResourceType {name} itself, got {b}"))
    });
    let mut schema_ids: Vec<String> = Vec::new();
    check!(s, "P-DISC-07", log => {
        let e = call(cx, &mut log, Method::GET, "/Schemas", None, &[]).await?;
        status(&e, &[200])?;
        let b = body(&e)?;
        ensure(b["schemas"] == json!([LIST]), || format!("expected a ListResponse, got schemas {}", b["schemas"]))?;
        schema_ids = resources(&b).iter().filter_map(|s| s["id"].as_str().map(str::to_owned)).collect();
        ensure(!schema_ids.is_empty(), || "no schema listed".into())
    });
    check!(s, "P-DISC-09", log => {
        let e = call(cx, &mut log, Method::GET, "/Schemas", None, &[]).await?;
        // RFC 7643 §2.2 gives every characteristic but the name a default, so only a name is
        // required; what is given must be legal.
        fn attr_ok(a: &Value) -> Result<(), String> {
            if !a["name"].is_string() {
                return Err(format!("an attribute has no name: {a}"));
            }
            let legal = |k: &str, allowed: &[&str]| a.get(k).is_none_or(|v| v.as_str().is_some_and(|v| allowed.contains(&v)));
            let boolean = |k: &str| a.get(k).is_none_or(Value::is_boolean);
            if !legal("type", &["string", "boolean", "decimal", "integer", "dateTime", "binary", "reference", "complex"])
                || !legal("mutability", &["readOnly", "readWrite", "immutable", "writeOnly"])
                || !legal("returned", &["always", "never", "default", "request"])
                || !legal("uniqueness", &["none", "server", "global"])
                || !["multiValued", "required", "caseExact"].iter().all(|k| boolean(k))
            {
                return Err(format!("attribute {} has an illegal characteristic value", a["name"]));
            }
            a["subAttributes"].as_array().into_iter().flatten().try_for_each(attr_ok)
        }
        let listed = resources(&body(&e)?);
        ensure(!listed.is_empty(), || "/Schemas lists no schema to examine".into())?;
        for schema in listed {
            schema["attributes"].as_array().ok_or_else(|| format!("schema {} has no attributes array", schema["id"]))?.iter().try_for_each(attr_ok)?;
        }
        Ok(())
    });
    check!(s, "P-DISC-10", log => {
        let e = call(cx, &mut log, Method::GET, "/ResourceTypes", None, &[]).await?;
        let types = resources(&body(&e)?);
        ensure(!types.is_empty() && !schema_ids.is_empty(), || "no ResourceType or no schema was listed".into())?;
        for rt in &types {
            let mut urns: Vec<&str> = rt["schema"].as_str().into_iter().collect();
            urns.extend(rt["schemaExtensions"].as_array().into_iter().flatten().filter_map(|e| e["schema"].as_str()));
            for urn in urns {
                ensure(schema_ids.iter().any(|id| id.eq_ignore_ascii_case(urn)), || format!("{urn} (named by ResourceType {}) is not in /Schemas", rt["name"]))?;
            }
        }
        Ok(())
    });
    check!(s, "P-DISC-11", log => {
        let all = body(&call(cx, &mut log, Method::GET, "/Schemas", None, &[]).await?)?;
        let paged = body(&call(cx, &mut log, Method::GET, "/Schemas?startIndex=2&count=1&sortBy=name", None, &[]).await?)?;
        ensure(!resources(&all).is_empty() && resources(&all).len() == resources(&paged).len(), || format!("paging changed /Schemas: {} vs {} schemas", resources(&all).len(), resources(&paged).len()))
    });
    check!(s, "P-DISC-12", log => {
        let e = call(cx, &mut log, Method::GET, &format!("/ResourceTypes?filter={}", encode("name eq \"User\"")), None, &[]).await?;
        status(&e, &[403])
    });
    check!(s, "P-DISC-13", log => {
        for path in ["/ServiceProviderConfig", "/Schemas", "/ResourceTypes"] {
            let e = call(cx, &mut log, Method::DELETE, path, None, &[]).await?;
            status(&e, &[405, 501])?;
        }
        Ok(())
    });
    s.finish()
}
