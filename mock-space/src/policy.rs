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

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::directory::GRANTABLE_ROLES;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read the policy {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the policy is not valid TOML: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("rule {rule}: {problem}")]
    Invalid { rule: usize, problem: String },
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub group: GroupMatch,
    pub grants: Vec<RoleGrant>,
}

/// Exactly one key picks the group.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupMatch {
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleGrant {
    pub project: String,
    pub role: String,
}

/// `scenarios/policies/space-default.toml`, built in so no working directory is assumed.
const DEFAULT_POLICY: &str = include_str!("../../scenarios/policies/space-default.toml");

impl Policy {
    /// The default policy, over the sample organisation of `seed_sample`.
    pub fn default_policy() -> Policy {
        // A test parses the same text, so a broken file fails the build's tests, not a user.
        Self::parse(DEFAULT_POLICY).unwrap_or_default()
    }

    pub fn load(path: &std::path::Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(text)?;
        for (i, rule) in policy.rules.iter().enumerate() {
            let g = &rule.group;
            let keys = [&g.external_id, &g.display_name, &g.id]
                .iter()
                .filter(|k| k.is_some())
                .count();
            let problem = if keys != 1 {
                Some("group needs exactly one of externalId, displayName, id".to_owned())
            } else {
                rule.grants
                    .iter()
                    .find(|grant| !GRANTABLE_ROLES.contains(&grant.role.as_str()))
                    .map(|grant| {
                        format!(
                            "role '{}' is not one of {}",
                            grant.role,
                            GRANTABLE_ROLES.join(", ")
                        )
                    })
            };
            if let Some(problem) = problem {
                return Err(PolicyError::Invalid {
                    rule: i + 1,
                    problem,
                });
            }
        }
        Ok(policy)
    }

    /// Every grant the policy gives a group, given the group's SCIM id and attributes.
    pub fn grants_for(&self, id: &str, group: &Map<String, Value>) -> Vec<RoleGrant> {
        let attr = |name: &str| group.get(name).and_then(Value::as_str);
        let mut out: Vec<RoleGrant> = self
            .rules
            .iter()
            .filter(|r| {
                let g = &r.group;
                g.id.as_deref() == Some(id)
                    || (g.external_id.is_some() && g.external_id.as_deref() == attr("externalId"))
                    || (g.display_name.is_some()
                        && g.display_name.as_deref() == attr("displayName"))
            })
            .flat_map(|r| r.grants.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
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
