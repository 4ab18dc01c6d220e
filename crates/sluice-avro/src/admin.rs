//! Registry calls that `schema_registry_converter` does not offer: look-up
//! without registering, per-subject compatibility, compatibility tests.

use crate::{AvroError, RegistryEndpoint};
use serde_json::{Value, json};

pub(crate) const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

async fn call(
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
    writer: Option<&RegistryEndpoint>,
) -> Result<(u16, Value), AvroError> {
    let mut req = crate::http::client()?.request(method, &url);
    if let Some(registry) = writer {
        req = registry.authorize(req);
    }
    if let Some(b) = body {
        req = req.header("content-type", CONTENT_TYPE).body(b.to_string());
    }
    let response = req.send().await.map_err(|e| AvroError::RegistryUnavailable(format!("{url}: {e}")))?;
    let status = response.status().as_u16();
    let value = response.json().await.unwrap_or(Value::Null);
    Ok((status, value))
}

fn registry_error(what: &str, status: u16, body: &Value) -> AvroError {
    let message = body["message"].as_str().unwrap_or("no message");
    let mut text = format!("{what}: HTTP {status}, error {}: {message}", body["error_code"]);
    if status == 401 || status == 403 {
        text.push_str(" (SLUICE_REGISTRY_TOKEN must be one of the registry's SLUICE_WRITE_TOKENS)");
    }
    if crate::http::is_retryable_status(status) {
        AvroError::RegistryUnavailable(text)
    } else {
        AvroError::Registry(text)
    }
}

/// The id of `schema` under `subject`, without registering it (None when it
/// is not registered there).
pub async fn lookup(registry_url: &str, subject: &str, schema: &str) -> Result<Option<u32>, AvroError> {
    let url = format!("{}/subjects/{subject}", registry_url.trim_end_matches('/'));
    match call(reqwest::Method::POST, url, Some(json!({"schema": schema})), None).await? {
        (200, body) => Ok(body["id"].as_u64().and_then(|id| u32::try_from(id).ok())),
        (404, _) => Ok(None),
        (status, body) => Err(registry_error(&format!("look up {subject}"), status, &body)),
    }
}

pub async fn set_compatibility(registry: &RegistryEndpoint, subject: &str, level: &str) -> Result<(), AvroError> {
    let url = format!("{}/config/{subject}", registry.url);
    match call(reqwest::Method::PUT, url, Some(json!({"compatibility": level})), Some(registry)).await? {
        (200, _) => Ok(()),
        (status, body) => Err(registry_error(&format!("set compatibility of {subject}"), status, &body)),
    }
}

/// Problems registering `schema` under `subject` would meet (empty: compatible).
/// A subject that does not exist yet accepts anything.
pub async fn compatibility_problems(registry_url: &str, subject: &str, schema: &str) -> Result<Vec<String>, AvroError> {
    let url = format!("{}/compatibility/subjects/{subject}/versions?verbose=true", registry_url.trim_end_matches('/'));
    match call(reqwest::Method::POST, url, Some(json!({"schema": schema})), None).await? {
        (200, body) if body["is_compatible"] == true => Ok(vec![]),
        (200, body) => Ok(body["messages"]
            .as_array()
            .map(|m| m.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_else(|| vec!["incompatible".into()])),
        (404, body) if body["error_code"] == 40401 => Ok(vec![]),
        (status, body) => Err(registry_error(&format!("test compatibility of {subject}"), status, &body)),
    }
}
