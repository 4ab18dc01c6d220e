//! When two registered texts are "the same schema" (same id, no check).
//!
//! Confluent looks a schema up by the MD5 of `AvroSchema.canonicalString()`,
//! which is Avro Java's `Schema.toString()`: the parsed schema written back
//! with everything it carries — defaults, docs, aliases, field order,
//! logical types and custom properties — but not how it was spelled (white
//! space, key order, `namespace` vs full names, `{"type":"int"}` vs `"int"`,
//! an explicit `"order":"ascending"`). The Parsing Canonical Form is too
//! coarse for this: it drops defaults, so a field could lose its default
//! without a compatibility check. apache-avro's own serialisation drops enum
//! defaults and docs, so the form is built here from the JSON text, after
//! apache-avro has validated it. tests/confluent_oracle.rs holds it to
//! Confluent's answer.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

const PRIMITIVES: [&str; 8] = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"];

/// The identity form of a schema text that apache-avro has already accepted.
pub fn identity_form(text: &str) -> Result<String, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(schema(&json, None).to_string())
}

fn qualify(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if !name.contains('.') && !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_string(),
    }
}

/// An object with its keys sorted, whatever serde_json's map ordering is.
fn sorted(entries: BTreeMap<String, Value>) -> Value {
    Value::Object(entries.into_iter().collect::<Map<String, Value>>())
}

fn schema(json: &Value, namespace: Option<&str>) -> Value {
    match json {
        Value::String(s) if PRIMITIVES.contains(&s.as_str()) => json.clone(),
        Value::String(reference) => Value::String(qualify(reference, namespace)),
        Value::Array(branches) => Value::Array(branches.iter().map(|b| schema(b, namespace)).collect()),
        Value::Object(m) => object(m, namespace),
        other => other.clone(),
    }
}

fn object(m: &Map<String, Value>, namespace: Option<&str>) -> Value {
    let Some(kind) = m.get("type").and_then(Value::as_str) else {
        return match m.get("type") {
            Some(inner) => schema(inner, namespace),
            None => Value::Object(m.clone()),
        };
    };
    let mut out = BTreeMap::new();
    match kind {
        "record" | "error" | "enum" | "fixed" => {
            let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
            let own_ns = match m.get("namespace").and_then(Value::as_str) {
                Some(ns) => Some(ns),
                None => namespace,
            };
            let full = qualify(name, own_ns);
            let inner_ns = full.rsplit_once('.').map(|(ns, _)| ns.to_string());
            for (key, value) in m {
                let value = match key.as_str() {
                    "namespace" => continue,
                    "name" => Value::String(full.clone()),
                    "aliases" => Value::Array(
                        value
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .map(|a| Value::String(qualify(a, inner_ns.as_deref())))
                            .collect(),
                    ),
                    "fields" => Value::Array(
                        value.as_array().into_iter().flatten().map(|f| field(f, inner_ns.as_deref())).collect(),
                    ),
                    _ => value.clone(),
                };
                out.insert(key.clone(), value);
            }
        }
        "array" | "map" => {
            for (key, value) in m {
                let value = match key.as_str() {
                    "items" | "values" => schema(value, namespace),
                    _ => value.clone(),
                };
                out.insert(key.clone(), value);
            }
        }
        primitive if PRIMITIVES.contains(&primitive) => {
            if m.len() == 1 {
                return Value::String(primitive.to_string());
            }
            out.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        // `{"type": "SomeNamedType"}` is a reference.
        reference => return Value::String(qualify(reference, namespace)),
    }
    sorted(out)
}

fn field(json: &Value, namespace: Option<&str>) -> Value {
    let Some(m) = json.as_object() else { return json.clone() };
    let mut out = BTreeMap::new();
    for (key, value) in m {
        let value = match key.as_str() {
            "type" => schema(value, namespace),
            "order" if value.as_str() == Some("ascending") => continue,
            _ => value.clone(),
        };
        out.insert(key.clone(), value);
    }
    sorted(out)
}

#[cfg(test)]
mod tests {
    use super::identity_form;

    /// Found by the `registry_schema` fuzz target: a number in a custom
    /// property changed between parsing and printing (serde_json's default
    /// float parsing is not correctly rounded), so a schema's identity form
    /// was another schema, and registering that form again would have made a
    /// new version of the same schema.
    #[test]
    fn a_number_keeps_its_value_through_the_identity_form() {
        let text =
            r#"{"type":"string","p":[9999888888888888000000000000000000000000000000000002337868606563884166E9]}"#;
        let once = identity_form(text).expect("a schema");
        assert_eq!(identity_form(&once).expect("its identity form"), once);
    }
}
