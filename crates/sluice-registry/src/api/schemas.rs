use super::{ApiResult, ApiState, Flags, Reply};
use crate::error::RegistryError;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

fn parse_id(id: &str) -> Result<u32, RegistryError> {
    id.parse().map_err(|_| RegistryError::schema_not_found())
}

pub async fn by_id(State(s): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    let store = s.registry.read()?;
    let schema = store.schema(parse_id(&id)?).ok_or_else(RegistryError::schema_not_found)?;
    Ok(Reply::ok(json!({"schema": schema.text})))
}

pub async fn raw_by_id(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Response, RegistryError> {
    let store = s.registry.read()?;
    let schema = store.schema(parse_id(&id)?).ok_or_else(RegistryError::schema_not_found)?;
    Ok(([(header::CONTENT_TYPE, super::CONTENT_TYPE)], schema.text.clone()).into_response())
}

pub async fn versions_of_id(State(s): State<ApiState>, Path(id): Path<String>, f: Flags) -> ApiResult {
    let store = s.registry.read()?;
    let id = parse_id(&id)?;
    store.schema(id).ok_or_else(RegistryError::schema_not_found)?;
    let usages: Vec<_> = store
        .usages(id, f.deleted)
        .into_iter()
        .map(|(subject, version)| json!({"subject": subject, "version": version}))
        .collect();
    Ok(Reply::ok(json!(usages)))
}
