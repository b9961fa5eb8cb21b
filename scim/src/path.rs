//! Attribute paths (RFC 7644 §3.10): `[URN ":"] attr ["." subAttr]`, and PATCH paths with a value
//! filter (`emails[type eq "work"].value`).

use std::fmt;

use crate::error::{Result, ScimError};
use crate::filter::Filter;

/// An attribute path. Names keep the client's spelling; resolution against a schema ignores case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
}

impl AttrPath {
    pub fn new(urn: Option<&str>, attr: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            urn: urn.map(str::to_owned),
            attr: attr.to_owned(),
            sub: sub.map(str::to_owned),
        }
    }

    /// Parses `[URN:]attr[.sub]`; the URN ends at its last colon because attribute names hold none.
    pub fn parse(text: &str) -> Result<AttrPath, String> {
        let (urn, rest) = if starts_with_urn(text) {
            match text.rfind(':') {
                Some(i) => (Some(&text[..i]), &text[i + 1..]),
                None => return Err(format!("'{text}' is not an attribute path")),
            }
        } else {
            (None, text)
        };
        let (attr, sub) = match rest.split_once('.') {
            Some((a, s)) => (a, Some(s)),
            None => (rest, None),
        };
        check_name(attr).map_err(|e| format!("'{text}': {e}"))?;
        if let Some(s) = sub {
            check_name(s).map_err(|e| format!("'{text}': {e}"))?;
        }
        Ok(AttrPath::new(urn, attr, sub))
    }
}

pub(crate) fn starts_with_urn(text: &str) -> bool {
    text.len() > 4
        && text
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

/// ATTRNAME = ALPHA *(nameChar), plus `$ref` (RFC 7643 §2.1).
fn check_name(name: &str) -> Result<(), String> {
    if name.eq_ignore_ascii_case("$ref") {
        return Ok(());
    }
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        Some(c) => return Err(format!("an attribute name cannot start with '{c}'")),
        None => return Err("empty attribute name".into()),
    }
    match chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        Some(c) => Err(format!("'{c}' is not allowed in an attribute name")),
        None => Ok(()),
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// A PATCH `path` (RFC 7644 §3.5.2): an attribute path, optionally with a value filter and a
/// sub-attribute after it.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// The sub-attribute after `]`, as in `emails[type eq "work"].value`.
    pub sub_after_filter: Option<String>,
}

impl PatchPath {
    pub fn parse(text: &str) -> Result<PatchPath> {
        let bad = |why: String| ScimError::invalid_path(format!("invalid path '{text}': {why}"));
        let Some(open) = text.find('[') else {
            let attr = AttrPath::parse(text).map_err(bad)?;
            return Ok(PatchPath {
                attr,
                filter: None,
                sub_after_filter: None,
            });
        };
        let attr = AttrPath::parse(&text[..open]).map_err(bad)?;
        if attr.sub.is_some() {
            return Err(bad(
                "a value filter follows an attribute, not a sub-attribute".into(),
            ));
        }
        let close = closing_bracket(text, open).ok_or_else(|| bad("missing ']'".into()))?;
        let filter = Filter::parse(&text[open + 1..close])
            .map_err(|e| bad(format!("value filter: {}", e.detail)))?;
        let rest = &text[close + 1..];
        let sub_after_filter = match rest.strip_prefix('.') {
            Some(sub) => {
                check_name(sub).map_err(bad)?;
                Some(sub.to_owned())
            }
            None if rest.is_empty() => None,
            None => return Err(bad(format!("unexpected '{rest}' after ']'"))),
        };
        Ok(PatchPath {
            attr,
            filter: Some(filter),
            sub_after_filter,
        })
    }
}

/// The `]` that closes the `[` at `open`, skipping brackets inside string literals.
fn closing_bracket(text: &str, open: usize) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text[open + 1..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            ']' if !in_string => return Some(open + 1 + i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urn_qualified_paths() {
        let p =
            AttrPath::parse("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName").unwrap();
        assert_eq!(
            p.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:core:2.0:User")
        );
        assert_eq!(p.attr, "name");
        assert_eq!(p.sub.as_deref(), Some("givenName"));
        assert_eq!(
            p.to_string(),
            "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName"
        );
    }

    #[test]
    fn rejects_bad_names() {
        assert!(AttrPath::parse("").is_err());
        assert!(AttrPath::parse("1abc").is_err());
        assert!(AttrPath::parse("a b").is_err());
        assert!(AttrPath::parse("name.").is_err());
    }

    #[test]
    fn parses_patch_paths_with_value_filters() {
        let p = PatchPath::parse(r#"emails[type eq "work]"].value"#).unwrap();
        assert_eq!(p.attr.attr, "emails");
        assert!(p.filter.is_some());
        assert_eq!(p.sub_after_filter.as_deref(), Some("value"));
        let e = PatchPath::parse("members[value eq").unwrap_err();
        assert_eq!(e.scim_type, Some(crate::error::ScimType::InvalidPath));
        assert!(PatchPath::parse(r#"emails[type eq "work"]x"#).is_err());
    }
}
