use super::{ApiResult, ApiState, Flags, Reply, schema_from_body};
use crate::error::RegistryError;
use crate::registry::VersionSpec;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn list(State(s): State<ApiState>, f: Flags) -> ApiResult {
    Ok(Reply::ok(json!(s.registry.read()?.subjects(f.deleted))))
}

pub async fn register(State(s): State<ApiState>, Path(subject): Path<String>, body: Bytes) -> ApiResult {
    let text = schema_from_body(&body)?;
    let id = s.registry.register(&subject, &text).await?;
    Ok(Reply::ok(json!({"id": id})))
}

pub async fn lookup(State(s): State<ApiState>, Path(subject): Path<String>, f: Flags, body: Bytes) -> ApiResult {
    let text = schema_from_body(&body)?;
    let v = s.registry.lookup(&subject, &text, f.deleted)?;
    Ok(Reply::ok(json!({"subject": v.subject, "version": v.version, "id": v.id, "schema": v.schema})))
}

pub async fn delete(State(s): State<ApiState>, Path(subject): Path<String>, f: Flags) -> ApiResult {
    Ok(Reply::ok(json!(s.registry.delete_subject(&subject, f.permanent).await?)))
}

pub async fn versions(State(s): State<ApiState>, Path(subject): Path<String>, f: Flags) -> ApiResult {
    let store = s.registry.read()?;
    let versions: Vec<u32> =
        store.versions(&subject).filter(|(_, e)| f.deleted || !e.deleted).map(|(n, _)| n).collect();
    if versions.is_empty() {
        return Err(RegistryError::subject_not_found(&subject));
    }
    Ok(Reply::ok(json!(versions)))
}

pub async fn version(
    State(s): State<ApiState>,
    Path((subject, version)): Path<(String, String)>,
    f: Flags,
) -> ApiResult {
    let v = s.registry.version(&subject, VersionSpec::parse(&version)?, f.deleted)?;
    Ok(Reply::ok(json!({"subject": v.subject, "version": v.version, "id": v.id, "schema": v.schema})))
}

pub async fn version_schema(
    State(s): State<ApiState>,
    Path((subject, version)): Path<(String, String)>,
    f: Flags,
) -> Result<Response, RegistryError> {
    let v = s.registry.version(&subject, VersionSpec::parse(&version)?, f.deleted)?;
    Ok(([(header::CONTENT_TYPE, super::CONTENT_TYPE)], v.schema).into_response())
}

pub async fn delete_version(
    State(s): State<ApiState>,
    Path((subject, version)): Path<(String, String)>,
    f: Flags,
) -> ApiResult {
    Ok(Reply::ok(json!(s.registry.delete_version(&subject, VersionSpec::parse(&version)?, f.permanent).await?)))
}
