//! JSON request bodies read strictly: a key given twice in one object is an error instead of
//! silently keeping the last value (serde_json's choice), and text fields may be checked for
//! control characters. Both are ways to smuggle a second meaning past a validator.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// How keys are told apart when looking for duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// `userName` and `USERNAME` are the same key (SCIM attribute names, RFC 7643 §2.1).
    CaseInsensitive,
    /// Only identical keys are the same (Okta's profile attributes).
    Exact,
}

/// Parses `bytes` as one JSON value, refusing an object that holds a key twice. serde_json's
/// depth limit (128) still applies.
pub fn parse_unique(bytes: &[u8], keys: Keys) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Unique(keys).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The first control character in `text` (tabs and line breaks allowed when `multi_line`),
/// as `U+XXXX`.
pub fn control_character(text: &str, multi_line: bool) -> Option<String> {
    text.chars()
        .find(|c| c.is_control() && !(multi_line && matches!(c, '\t' | '\n' | '\r')))
        .map(|c| format!("U+{:04X}", u32::from(c)))
}

#[derive(Clone, Copy)]
struct Unique(Keys);

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let folded = match self.0 {
                Keys::CaseInsensitive => key.to_lowercase(),
                Keys::Exact => key.clone(),
            };
            if !seen.insert(folded) {
                return Err(de::Error::custom(format!(
                    "the key '{key}' appears twice in one object"
                )));
            }
            let value = map.next_value_seed(self)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_key_given_twice_is_refused() {
        for (body, keys) in [
            (r#"{"userName":"a","userName":"b"}"#, Keys::Exact),
            (r#"{"userName":"a","USERNAME":"b"}"#, Keys::CaseInsensitive),
            (r#"{"x":[{"v":1,"v":2}]}"#, Keys::Exact),
        ] {
            let err = parse_unique(body.as_bytes(), keys).unwrap_err();
            assert!(err.to_string().contains("appears twice"), "{body}: {err}");
        }
        let same_letters = parse_unique(br#"{"a":1,"A":2}"#, Keys::Exact).unwrap();
        assert_eq!(same_letters, serde_json::json!({"a": 1, "A": 2}));
    }

    #[test]
    fn trailing_text_and_deep_nesting_are_refused() {
        assert!(parse_unique(b"{} {}", Keys::Exact).is_err());
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(parse_unique(deep.as_bytes(), Keys::Exact).is_err());
    }

    #[test]
    fn control_characters_are_found_and_named() {
        assert_eq!(control_character("a\u{0}b", true), Some("U+0000".into()));
        assert_eq!(control_character("a\nb", true), None);
        assert_eq!(control_character("a\nb", false), Some("U+000A".into()));
        assert_eq!(control_character("a\u{85}", true), Some("U+0085".into()));
        assert_eq!(control_character("José ☃", false), None);
    }

    proptest! {
        /// Whatever parses without duplicates parses to what serde_json makes of it.
        #[test]
        fn agrees_with_serde_json_when_keys_are_unique(text in "\\PC{0,64}") {
            if let Ok(strict) = parse_unique(text.as_bytes(), Keys::Exact) {
                let plain: Value = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(strict, plain);
            }
        }

        #[test]
        fn generated_objects_round_trip(v in arb_json()) {
            let text = v.to_string();
            prop_assert_eq!(parse_unique(text.as_bytes(), Keys::Exact).unwrap(), v);
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
