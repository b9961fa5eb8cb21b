//! SCIM API messages (PatchOp, SearchRequest, BulkRequest): a JSON object whose `schemas` lists
//! the message's URN, with members matched case-insensitively.

use serde_json::{Map, Value};

use crate::error::{Result, ScimError};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Message<'a>(&'a Map<String, Value>);

impl<'a> Message<'a> {
    /// Checks the envelope: an object (`what` names it in the error) whose `schemas` lists `urn`.
    pub(crate) fn open(body: &'a Value, urn: &str, what: &str) -> Result<Message<'a>> {
        let Value::Object(obj) = body else {
            return Err(ScimError::invalid_syntax(format!(
                "{what} must be a JSON object"
            )));
        };
        let message = Message(obj);
        let listed = message
            .field("schemas")
            .and_then(Value::as_array)
            .is_some_and(|s| {
                s.iter()
                    .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(urn)))
            });
        if !listed {
            return Err(ScimError::invalid_syntax(format!(
                "'schemas' must be [\"{urn}\"]"
            )));
        }
        Ok(message)
    }

    pub(crate) fn field(&self, name: &str) -> Option<&'a Value> {
        field(self.0, name)
    }
}

/// A member of a JSON object, its name matched case-insensitively.
pub(crate) fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}
