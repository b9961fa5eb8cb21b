//! RFC 7643 schemas as data: attribute characteristics drive validation, filtering, sorting,
//! projection and PATCH, so a target adds an extension schema by handing over JSON, not code.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::path::AttrPath;

pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const LIST_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SEARCH_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const BULK_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
pub const SPC_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum AttrType {
    #[default]
    #[serde(rename = "string")]
    String,
    #[serde(rename = "boolean")]
    Boolean,
    #[serde(rename = "decimal")]
    Decimal,
    #[serde(rename = "integer")]
    Integer,
    #[serde(rename = "dateTime")]
    DateTime,
    #[serde(rename = "binary")]
    Binary,
    #[serde(rename = "reference")]
    Reference,
    #[serde(rename = "complex")]
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    ReadOnly,
    #[default]
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    Always,
    Never,
    #[default]
    Default,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    #[default]
    None,
    Server,
    Global,
}

/// One attribute definition (RFC 7643 §7); omitted characteristics take the §2.2 defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: AttrType,
    #[serde(default)]
    pub multi_valued: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canonical_values: Vec<String>,
    #[serde(default)]
    pub case_exact: bool,
    #[serde(default)]
    pub mutability: Mutability,
    #[serde(default)]
    pub returned: Returned,
    #[serde(default)]
    pub uniqueness: Uniqueness,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<Attribute>,
}

impl Attribute {
    pub fn sub(&self, name: &str) -> Option<&Attribute> {
        find_attr(&self.sub_attributes, name)
    }
    pub fn is_complex(&self) -> bool {
        self.kind == AttrType::Complex
    }
    /// Values the client may not set: readOnly ones are ignored on input.
    pub fn is_read_only(&self) -> bool {
        self.mutability == Mutability::ReadOnly
    }
}

pub(crate) fn find_attr<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// A schema (RFC 7643 §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub attributes: Vec<Attribute>,
}

impl Schema {
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        find_attr(&self.attributes, name)
    }
    /// Parses a schema given as RFC 7643 §7 JSON.
    pub fn from_json(text: &str) -> Result<Schema, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// Which membership rules apply to a resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    User,
    Group,
}

/// A resource type with its schemas resolved, plus the engine's options for it.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    pub name: String,
    pub endpoint: String,
    pub description: String,
    pub kind: ResourceKind,
    pub core: Schema,
    /// Extension schemas and whether each is required.
    pub extensions: Vec<(Schema, bool)>,
    common: Arc<Schema>,
    /// Attribute paths whose values must be unique within this resource type.
    pub unique: Vec<AttrPath>,
    /// Attribute paths with a secondary index (the unique ones are always indexed).
    pub indexed: Vec<AttrPath>,
    /// Canonical names of `unique` and `indexed`, resolved once for the hot paths.
    unique_names: Vec<String>,
    indexed_names: Vec<String>,
    /// Whether any attribute is `returned: request` (so a plain GET must filter).
    request_only: bool,
}

/// Where an attribute path leads: the attribute, its sub-attribute, and the extension holding it.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    /// `Some(urn)` when the attribute lives in an extension object.
    pub ext: Option<&'a str>,
    pub attr: &'a Attribute,
    pub sub: Option<&'a Attribute>,
}

impl<'a> Resolved<'a> {
    /// The attribute the path finally names (the sub-attribute when there is one).
    pub fn leaf(&self) -> &'a Attribute {
        self.sub.unwrap_or(self.attr)
    }
    /// The path in canonical spelling: `name.givenName`, `urn:...:User:employeeNumber`.
    pub fn canonical_name(&self) -> String {
        let mut out = String::new();
        if let Some(urn) = self.ext {
            out.push_str(urn);
            out.push(':');
        }
        out.push_str(&self.attr.name);
        if let Some(sub) = self.sub {
            out.push('.');
            out.push_str(&sub.name);
        }
        out
    }

    /// The value of the top attribute in a stored document.
    pub fn top_value<'d>(&self, doc: &'d Map<String, Value>) -> Option<&'d Value> {
        match self.ext {
            Some(urn) => doc.get(urn)?.as_object()?.get(&self.attr.name),
            None => doc.get(&self.attr.name),
        }
    }
    /// Every leaf value the path reaches, flattening multi-valued attributes.
    pub fn leaf_values<'d>(&self, doc: &'d Map<String, Value>) -> Vec<&'d Value> {
        let mut out = Vec::new();
        let Some(top) = self.top_value(doc) else {
            return out;
        };
        let items: Vec<&Value> = match top {
            Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        for item in items {
            match self.sub {
                Some(sub) => {
                    if let Some(v) = item.as_object().and_then(|o| o.get(&sub.name)) {
                        out.push(v);
                    }
                }
                None => out.push(item),
            }
        }
        out
    }
}

impl ResourceDef {
    pub fn new(
        name: &str,
        endpoint: &str,
        kind: ResourceKind,
        core: Schema,
        extensions: Vec<(Schema, bool)>,
    ) -> ResourceDef {
        let common = builtin().common.clone();
        let mut def = ResourceDef {
            name: name.to_owned(),
            endpoint: endpoint.to_owned(),
            description: core.description.clone(),
            kind,
            core,
            extensions,
            common,
            unique: Vec::new(),
            indexed: Vec::new(),
            unique_names: Vec::new(),
            indexed_names: Vec::new(),
            request_only: false,
        };
        fn any_request(attrs: &[Attribute]) -> bool {
            attrs
                .iter()
                .any(|a| a.returned == Returned::Request || any_request(&a.sub_attributes))
        }
        def.request_only = any_request(&def.core.attributes)
            || def
                .extensions
                .iter()
                .any(|(s, _)| any_request(&s.attributes));
        for p in def.schema_unique_paths() {
            def = def.add_unique(p);
        }
        def
    }

    /// Whether some attribute is returned only when a client names it.
    pub fn has_request_only_attributes(&self) -> bool {
        self.request_only
    }

    /// Whether values of the attribute with this canonical name must be unique.
    pub fn is_unique(&self, canonical: &str) -> bool {
        self.unique_names.iter().any(|n| n == canonical)
    }

    /// Whether the attribute with this canonical name has a secondary index.
    pub fn is_indexed(&self, canonical: &str) -> bool {
        self.indexed_names.iter().any(|n| n == canonical)
    }

    fn canonical(&self, p: &AttrPath) -> Option<String> {
        self.resolve(p).map(|r| r.canonical_name())
    }

    fn add_unique(mut self, p: AttrPath) -> Self {
        if !self.unique.contains(&p) {
            if let Some(name) = self.canonical(&p) {
                self.unique_names.push(name);
            }
            self.unique.push(p.clone());
        }
        self.with_index(p)
    }

    /// Declares an attribute unique (and so indexed), e.g. `externalId` or Group `displayName`;
    /// the published schema says so too, so clients see the rule they are held to.
    pub fn with_unique(mut self, path: &str) -> Self {
        let Ok(p) = AttrPath::parse(path) else {
            return self;
        };
        if let Some(attr) = self.attr_mut(&p) {
            if attr.uniqueness == Uniqueness::None {
                attr.uniqueness = Uniqueness::Server;
            }
        }
        self.add_unique(p)
    }

    pub fn with_indexed(self, path: &str) -> Self {
        match AttrPath::parse(path) {
            Ok(p) => self.with_index(p),
            Err(_) => self,
        }
    }

    fn with_index(mut self, p: AttrPath) -> Self {
        if !self.indexed.contains(&p) {
            if let Some(name) = self.canonical(&p) {
                self.indexed_names.push(name);
            }
            self.indexed.push(p);
        }
        self
    }

    fn attr_mut(&mut self, p: &AttrPath) -> Option<&mut Attribute> {
        let attrs = match &p.urn {
            Some(urn) if !urn.eq_ignore_ascii_case(&self.core.id) => {
                &mut self
                    .extensions
                    .iter_mut()
                    .find(|(s, _)| s.id.eq_ignore_ascii_case(urn))?
                    .0
                    .attributes
            }
            _ => &mut self.core.attributes,
        };
        let attr = attrs
            .iter_mut()
            .find(|a| a.name.eq_ignore_ascii_case(&p.attr))?;
        match &p.sub {
            Some(s) => attr
                .sub_attributes
                .iter_mut()
                .find(|a| a.name.eq_ignore_ascii_case(s)),
            None => Some(attr),
        }
    }

    fn schema_unique_paths(&self) -> Vec<AttrPath> {
        let mut out = Vec::new();
        for a in &self.core.attributes {
            if a.uniqueness != Uniqueness::None && !a.is_read_only() {
                out.push(AttrPath::new(None, &a.name, None));
            }
        }
        for (s, _) in &self.extensions {
            for a in &s.attributes {
                if a.uniqueness != Uniqueness::None && !a.is_read_only() {
                    out.push(AttrPath::new(Some(&s.id), &a.name, None));
                }
            }
        }
        out
    }

    pub fn extension(&self, urn: &str) -> Option<&Schema> {
        self.extensions
            .iter()
            .map(|(s, _)| s)
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Core and common attributes, which sit at the top of a document.
    pub fn top_attr(&self, name: &str) -> Option<&Attribute> {
        self.core.attr(name).or_else(|| self.common.attr(name))
    }

    pub fn schema_urns(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.core.id.as_str())
            .chain(self.extensions.iter().map(|(s, _)| s.id.as_str()))
    }

    /// Resolves a path; unqualified names fall back to an extension attribute when exactly one
    /// extension defines that name.
    pub fn resolve(&self, path: &AttrPath) -> Option<Resolved<'_>> {
        let (ext, attr) = match &path.urn {
            Some(urn) if urn.eq_ignore_ascii_case(&self.core.id) => {
                (None, self.top_attr(&path.attr)?)
            }
            Some(urn) => {
                let s = self.extension(urn)?;
                (Some(s.id.as_str()), s.attr(&path.attr)?)
            }
            None => match self.top_attr(&path.attr) {
                Some(a) => (None, a),
                None => {
                    let mut found = self
                        .extensions
                        .iter()
                        .filter_map(|(s, _)| s.attr(&path.attr).map(|a| (s.id.as_str(), a)));
                    let first = found.next()?;
                    if found.next().is_some() {
                        return None;
                    }
                    (Some(first.0), first.1)
                }
            },
        };
        let sub = match &path.sub {
            Some(name) => Some(attr.sub(name)?),
            None => None,
        };
        Some(Resolved { ext, attr, sub })
    }

    /// The RFC 7643 §6 ResourceType representation.
    pub fn resource_type_json(&self, base_url: &str) -> Value {
        let exts: Vec<Value> = self
            .extensions
            .iter()
            .map(|(s, required)| serde_json::json!({"schema": s.id, "required": required}))
            .collect();
        let mut v = serde_json::json!({
            "schemas": [RESOURCE_TYPE_URN],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.core.id,
        });
        if !exts.is_empty() {
            v["schemaExtensions"] = Value::Array(exts);
        }
        v["meta"] = serde_json::json!({
            "resourceType": "ResourceType",
            "location": format!("{base_url}/ResourceTypes/{}", self.name),
        });
        v
    }
}

/// The RFC 7643 §7 representation of a schema, as /Schemas serves it.
pub fn schema_json(schema: &Schema, base_url: &str) -> Value {
    let mut v = serde_json::to_value(schema).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.insert("schemas".into(), serde_json::json!([SCHEMA_URN]));
        map.insert(
            "meta".into(),
            serde_json::json!({"resourceType": "Schema", "location": format!("{base_url}/Schemas/{}", schema.id)}),
        );
    }
    v
}

/// The schemas of RFC 7643, parsed once from the JSON files in `scim/schemas/`.
#[derive(Debug)]
pub struct Builtin {
    pub user: Schema,
    pub group: Schema,
    pub enterprise_user: Schema,
    common: Arc<Schema>,
}

pub fn builtin() -> &'static Builtin {
    static BUILTIN: std::sync::OnceLock<Builtin> = std::sync::OnceLock::new();
    BUILTIN.get_or_init(|| {
        // These files ship inside the binary; a test parses each one, so a bad edit fails CI.
        let parse =
            |text: &str| Schema::from_json(text).unwrap_or_else(|e| panic!("built-in schema: {e}"));
        Builtin {
            user: parse(include_str!("../schemas/user.json")),
            group: parse(include_str!("../schemas/group.json")),
            enterprise_user: parse(include_str!("../schemas/enterprise_user.json")),
            common: Arc::new(parse(include_str!("../schemas/common.json"))),
        }
    })
}

/// The RFC 7643 User type with the enterprise extension.
pub fn user_resource() -> ResourceDef {
    let b = builtin();
    ResourceDef::new(
        "User",
        "/Users",
        ResourceKind::User,
        b.user.clone(),
        vec![(b.enterprise_user.clone(), false)],
    )
    .with_indexed("emails.value")
}

/// The RFC 7643 Group type.
pub fn group_resource() -> ResourceDef {
    let b = builtin();
    ResourceDef::new(
        "Group",
        "/Groups",
        ResourceKind::Group,
        b.group.clone(),
        Vec::new(),
    )
}

/// The User type with one more extension given as RFC 7643 JSON, as a target would add it.
#[cfg(test)]
pub(crate) fn user_with_extension(schema_json: &str, required: bool) -> ResourceDef {
    let ext = Schema::from_json(schema_json).unwrap_or_else(|e| panic!("test schema: {e}"));
    ResourceDef::new(
        "User",
        "/Users",
        ResourceKind::User,
        builtin().user.clone(),
        vec![(ext, required)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_schemas_parse_and_cover_rfc_7643_section_4() {
        let b = builtin();
        let names: Vec<&str> = b.user.attributes.iter().map(|a| a.name.as_str()).collect();
        for expected in [
            "userName",
            "name",
            "displayName",
            "nickName",
            "profileUrl",
            "title",
            "userType",
            "preferredLanguage",
            "locale",
            "timezone",
            "active",
            "password",
            "emails",
            "phoneNumbers",
            "ims",
            "photos",
            "addresses",
            "groups",
            "entitlements",
            "roles",
            "x509Certificates",
        ] {
            assert!(names.contains(&expected), "User schema lacks {expected}");
        }
        assert_eq!(b.enterprise_user.attributes.len(), 6);
        assert!(b.group.attr("members").is_some_and(|m| m.multi_valued));
    }

    #[test]
    fn resolve_is_case_insensitive_and_follows_urn_prefixes() {
        let user = user_resource();
        let p = AttrPath::parse("NAME.GIVENNAME").unwrap();
        let r = user.resolve(&p).unwrap();
        assert_eq!(r.attr.name, "name");
        assert_eq!(r.leaf().name, "givenName");
        let p = AttrPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
        )
        .unwrap();
        assert_eq!(user.resolve(&p).unwrap().ext, Some(ENTERPRISE_USER_URN));
        let p = AttrPath::parse("employeeNumber").unwrap();
        assert_eq!(user.resolve(&p).unwrap().ext, Some(ENTERPRISE_USER_URN));
        assert!(user.resolve(&AttrPath::parse("nope").unwrap()).is_none());
    }

    #[test]
    fn with_unique_marks_the_published_schema() {
        let group = group_resource().with_unique("displayName");
        assert_eq!(
            group.core.attr("displayName").unwrap().uniqueness,
            Uniqueness::Server
        );
        assert_eq!(group.unique.len(), 1);
        assert!(group.is_unique("displayName") && group.is_indexed("displayName"));
        assert!(!group.is_unique("members.value"));
    }
}
