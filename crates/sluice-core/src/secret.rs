//! A string that never shows up in logs or debug output.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

/// Why a secret was refused: never its value. The configuration loader reads
/// an environment value such as `123456` or `true` as a number or a boolean,
/// and serde's own message would quote it; turning it back into text could
/// change it (`007` would become `7`).
const NOT_TEXT: &str = "a secret must be text, and this one reads as a number or a boolean (its value is not shown): \
     wrap it in double quotes";

/// A value the loader reads as a list or a table (`[...]`, `{...}`).
const NOT_TEXT_LIST: &str = "a secret must be text, and this one reads as a list or a table (its value is not shown): \
     wrap it in double quotes";

/// Text only, and a refusal that does not repeat the value.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("text")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::new(v))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(v))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom(NOT_TEXT))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(E::custom(NOT_TEXT))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(E::custom(NOT_TEXT))
            }
            fn visit_i128<E: de::Error>(self, _: i128) -> Result<Secret, E> {
                Err(E::custom(NOT_TEXT))
            }
            fn visit_u128<E: de::Error>(self, _: u128) -> Result<Secret, E> {
                Err(E::custom(NOT_TEXT))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom(NOT_TEXT))
            }
            fn visit_char<E: de::Error>(self, v: char) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
                Err(de::Error::custom(NOT_TEXT_LIST))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
                Err(de::Error::custom(NOT_TEXT_LIST))
            }
        }
        deserializer.deserialize_any(Text)
    }
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself; call only where it is handed to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Serialized as the value (configuration layering needs it); never logged.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn a_value_that_is_not_text_is_refused_without_repeating_it() {
        let parsed: Secret = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(parsed.expose(), "hunter2");
        for not_text in ["7391824650", "-12", "1.5e3", "true", "[\"s3cr3t\"]", "{\"s3cr3t\": 1}"] {
            let refused = serde_json::from_str::<Secret>(not_text).expect_err("refused").to_string();
            assert!(refused.contains("must be text") && !refused.contains(not_text), "{refused}");
        }
    }
}
