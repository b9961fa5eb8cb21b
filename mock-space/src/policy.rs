//! The role-mapping policy: which SCIM groups grant which project roles (TOML).
//!
//! ```toml
//! [[rule]]
//! group = { externalId = "eng" }          # or { displayName = "..." } or { id = "..." }
//! grants = [{ project = "BACKEND", role = "member" }]
//! ```
//! Each SCIM group becomes a Space team; a matching rule grants its roles to that team, so
//! the team's members hold them and a role granted by two groups survives losing one of them.
//! Match by `externalId` or `id` to survive renames.

use mockkit::connector::PolicyGrant;
use serde::Deserialize;

use crate::directory::GRANTABLE_ROLES;

/// The Space connector's policy.
pub type Policy = mockkit::connector::Policy<RoleGrant>;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleGrant {
    pub project: String,
    pub role: String,
}

/// `scenarios/policies/space-default.toml`, built in so no working directory is assumed.
const DEFAULT_POLICY: &str = include_str!("../../scenarios/policies/space-default.toml");

impl PolicyGrant for RoleGrant {
    const DEFAULT_POLICY: &'static str = DEFAULT_POLICY;

    fn problem(&self) -> Option<String> {
        (!GRANTABLE_ROLES.contains(&self.role.as_str())).then(|| {
            format!(
                "role '{}' is not one of {}",
                self.role,
                GRANTABLE_ROLES.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_match_by_any_one_key_and_grants_merge() {
        let p = Policy::parse(
            r#"
            [[rule]]
            group = { externalId = "eng" }
            grants = [{ project = "BACKEND", role = "member" }]
            [[rule]]
            group = { displayName = "Ops" }
            grants = [{ project = "BACKEND", role = "member" }, { project = "INFRA", role = "admin" }]
            "#,
        )
        .unwrap();
        let g = json!({"displayName": "Ops", "externalId": "eng"});
        let grants = p.grants_for("x", g.as_object().unwrap());
        assert_eq!(grants.len(), 2, "{grants:?}");
        let renamed = json!({"displayName": "Operations", "externalId": "eng"});
        assert_eq!(p.grants_for("x", renamed.as_object().unwrap()).len(), 1);
    }

    #[test]
    fn the_default_policy_parses() {
        assert_eq!(
            Policy::parse(DEFAULT_POLICY).unwrap(),
            Policy::default_policy()
        );
        assert!(Policy::default_policy().rules.len() >= 3);
    }

    #[test]
    fn bad_policies_say_which_rule() {
        let two_keys = "[[rule]]\ngroup = { id = \"a\", displayName = \"b\" }\ngrants = []";
        assert!(Policy::parse(two_keys)
            .unwrap_err()
            .to_string()
            .starts_with("rule 1"));
        let bad_role =
            "[[rule]]\ngroup = { id = \"a\" }\ngrants = [{ project = \"P\", role = \"owner\" }]";
        assert!(Policy::parse(bad_role)
            .unwrap_err()
            .to_string()
            .contains("owner"));
        assert!(Policy::parse("[[rule]]\nnope = 1").is_err());
    }
}
