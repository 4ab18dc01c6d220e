use super::{ApiResult, ApiState, Flags, Reply, schema_from_body};
use crate::Level;
use crate::error::RegistryError;
use crate::registry::VersionSpec;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct ConfigRequest {
    compatibility: String,
}

fn parse_level(body: &Bytes) -> Result<Level, RegistryError> {
    let request: ConfigRequest =
        serde_json::from_slice(body).map_err(|e| RegistryError::bad_request(format!("Invalid request body: {e}")))?;
    Level::parse(&request.compatibility).ok_or_else(|| RegistryError::invalid_compatibility(&request.compatibility))
}

pub async fn get_global(State(s): State<ApiState>) -> ApiResult {
    Ok(Reply::ok(json!({"compatibilityLevel": s.registry.read()?.global_level().as_str()})))
}

pub async fn put_global(State(s): State<ApiState>, body: Bytes) -> ApiResult {
    let level = parse_level(&body)?;
    s.registry.set_level(None, level).await?;
    Ok(Reply::ok(json!({"compatibility": level.as_str()})))
}

pub async fn delete_global(State(s): State<ApiState>) -> ApiResult {
    let previous = s.registry.delete_level(None).await?;
    Ok(Reply::ok(json!({"compatibilityLevel": previous.as_str()})))
}

pub async fn get_subject(State(s): State<ApiState>, Path(subject): Path<String>, f: Flags) -> ApiResult {
    let store = s.registry.read()?;
    match store.subject_level(&subject) {
        Some(level) => Ok(Reply::ok(json!({"compatibilityLevel": level.as_str()}))),
        None if f.default_to_global => Ok(Reply::ok(json!({"compatibilityLevel": store.global_level().as_str()}))),
        None => Err(RegistryError::subject_level_not_configured(&subject)),
    }
}

pub async fn put_subject(State(s): State<ApiState>, Path(subject): Path<String>, body: Bytes) -> ApiResult {
    let level = parse_level(&body)?;
    s.registry.set_level(Some(&subject), level).await?;
    Ok(Reply::ok(json!({"compatibility": level.as_str()})))
}

pub async fn delete_subject(State(s): State<ApiState>, Path(subject): Path<String>) -> ApiResult {
    let previous = s.registry.delete_level(Some(&subject)).await?;
    Ok(Reply::ok(json!({"compatibilityLevel": previous.as_str()})))
}

pub async fn test_compatibility(
    State(s): State<ApiState>,
    Path((subject, version)): Path<(String, String)>,
    f: Flags,
    body: Bytes,
) -> ApiResult {
    let text = schema_from_body(&body)?;
    let problems = s.registry.test_compatibility(&subject, Some(VersionSpec::parse(&version)?), &text)?;
    Ok(compatibility_answer(&problems, &f))
}

/// `POST /compatibility/subjects/{subject}/versions`: the check registering would do.
pub async fn test_subject_compatibility(
    State(s): State<ApiState>,
    Path(subject): Path<String>,
    f: Flags,
    body: Bytes,
) -> ApiResult {
    let text = schema_from_body(&body)?;
    let problems = s.registry.test_compatibility(&subject, None, &text)?;
    Ok(compatibility_answer(&problems, &f))
}

fn compatibility_answer(problems: &[String], f: &Flags) -> Reply {
    let mut answer = json!({"is_compatible": problems.is_empty()});
    if f.verbose {
        answer["messages"] = json!(problems);
    }
    Reply::ok(answer)
}

pub async fn mode() -> ApiResult {
    Ok(Reply::ok(json!({"mode": "READWRITE"})))
}
