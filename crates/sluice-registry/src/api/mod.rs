//! Confluent Schema Registry REST API (Avro).

mod auth;
mod config;
mod forward;
mod schemas;
mod subjects;

use crate::error::RegistryError;
use crate::registry::Registry;
use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_telemetry::auth::Tokens;
use std::sync::Arc;

pub use forward::Leader;

pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The API's OpenAPI document (served at `/openapi.json`; written by
/// `openapi.py`, `make openapi`; schemathesis holds the registry to it in
/// `tests/api_fuzz.rs`).
pub const OPENAPI: &str = include_str!("../../openapi.json");

#[derive(Clone)]
pub struct ApiState {
    pub registry: Arc<Registry>,
}

/// The routes; `leader` set makes this instance a follower that forwards
/// writes; `tokens` set makes every write need a write token (a follower
/// checks it too, then passes the caller's credentials on to the leader).
pub fn router(registry: Arc<Registry>, leader: Option<Leader>, tokens: Option<Tokens>) -> Router {
    let routes = Router::new()
        .route("/", get(|| async { Reply::ok(json!({})) }))
        .route("/subjects", get(subjects::list))
        .route("/subjects/{subject}", post(subjects::lookup).delete(subjects::delete))
        .route("/subjects/{subject}/versions", get(subjects::versions).post(subjects::register))
        .route("/subjects/{subject}/versions/{version}", get(subjects::version).delete(subjects::delete_version))
        .route("/subjects/{subject}/versions/{version}/schema", get(subjects::version_schema))
        .route("/schemas/ids/{id}", get(schemas::by_id))
        .route("/schemas/ids/{id}/schema", get(schemas::raw_by_id))
        .route("/schemas/ids/{id}/versions", get(schemas::versions_of_id))
        .route("/config", get(config::get_global).put(config::put_global).delete(config::delete_global))
        .route("/config/{subject}", get(config::get_subject).put(config::put_subject).delete(config::delete_subject))
        .route("/compatibility/subjects/{subject}/versions", post(config::test_subject_compatibility))
        .route("/compatibility/subjects/{subject}/versions/{version}", post(config::test_compatibility))
        .route("/mode", get(config::mode))
        .route("/mode/{subject}", get(config::mode))
        .route("/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .fallback(|| async { RegistryError::no_such_route() })
        .with_state(ApiState { registry });
    let routes = match leader {
        Some(leader) => routes.layer(axum::middleware::from_fn_with_state(leader, forward::forward_writes)),
        None => routes,
    };
    // Added last, so it runs first: a follower refuses before forwarding.
    match tokens {
        Some(tokens) => routes.layer(axum::middleware::from_fn_with_state(tokens, auth::require_token_on_writes)),
        None => routes,
    }
}

/// A JSON answer with Confluent's content type.
pub struct Reply(StatusCode, Value);

impl Reply {
    pub fn ok(value: Value) -> Self {
        Reply(StatusCode::OK, value)
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (self.0, [(header::CONTENT_TYPE, CONTENT_TYPE)], self.1.to_string()).into_response()
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        Reply(self.status, json!({"error_code": self.code, "message": self.message})).into_response()
    }
}

pub type ApiResult = Result<Reply, RegistryError>;

/// Query flags. Clients send `true`/`True`/`1`; unknown parameters (such as
/// `normalize`) are ignored, as Confluent does.
#[derive(Default)]
pub struct Flags {
    pub deleted: bool,
    pub permanent: bool,
    pub verbose: bool,
    pub default_to_global: bool,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Flags {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut flags = Flags::default();
        for pair in parts.uri.query().unwrap_or("").split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, "true"));
            let on = matches!(value.to_ascii_lowercase().as_str(), "true" | "1" | "yes");
            match key {
                "deleted" => flags.deleted = on,
                "permanent" => flags.permanent = on,
                "verbose" => flags.verbose = on,
                "defaultToGlobal" => flags.default_to_global = on,
                _ => {}
            }
        }
        Ok(flags)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Value>,
}

/// The schema text of a register, look-up or compatibility request.
pub fn schema_from_body(body: &Bytes) -> Result<String, RegistryError> {
    let request: SchemaRequest =
        serde_json::from_slice(body).map_err(|e| RegistryError::bad_request(format!("Invalid request body: {e}")))?;
    match request.schema_type.as_deref() {
        None | Some("AVRO") => {}
        Some(other) => {
            return Err(RegistryError::bad_request(format!(
                "Schema type {other} is not supported; this registry holds AVRO schemas"
            )));
        }
    }
    if !request.references.is_empty() {
        return Err(RegistryError::bad_request("Schema references are not supported"));
    }
    Ok(request.schema)
}
