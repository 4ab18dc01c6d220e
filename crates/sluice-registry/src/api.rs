//! Confluent Schema Registry REST routes.

use crate::{RegisterError, SchemaStore};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Arc, RwLock};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

type Shared = Arc<RwLock<SchemaStore>>;

pub fn router(store: Arc<RwLock<SchemaStore>>) -> Router {
    Router::new()
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions", get(list_versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(get_version))
        .route("/subjects/{subject}/versions/{version}/schema", get(get_version_schema))
        .route("/schemas/ids/{id}", get(get_by_id))
        .with_state(store)
}

/// An answer in Confluent's shape and content type.
struct Reply(StatusCode, Value);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (self.0, [(header::CONTENT_TYPE, CONTENT_TYPE)], self.1.to_string()).into_response()
    }
}

fn error(status: StatusCode, code: u32, message: impl Into<String>) -> Reply {
    Reply(status, json!({"error_code": code, "message": message.into()}))
}

fn subject_not_found(subject: &str) -> Reply {
    error(StatusCode::NOT_FOUND, 40401, format!("Subject '{subject}' not found."))
}

fn version_not_found(version: &str) -> Reply {
    error(StatusCode::NOT_FOUND, 40402, format!("Version {version} not found."))
}

fn internal() -> Reply {
    error(StatusCode::INTERNAL_SERVER_ERROR, 50001, "Error in the backend data store")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
}

fn parse_request(body: &[u8]) -> Result<SchemaRequest, Reply> {
    let request: SchemaRequest = serde_json::from_slice(body)
        .map_err(|e| error(StatusCode::UNPROCESSABLE_ENTITY, 42201, format!("Invalid request body: {e}")))?;
    match request.schema_type.as_deref() {
        None | Some("AVRO") => Ok(request),
        Some(other) => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
            format!("Schema type {other} is not supported; this registry holds AVRO schemas"),
        )),
    }
}

fn invalid(e: RegisterError) -> Reply {
    match e {
        RegisterError::InvalidSchema(reason) => {
            error(StatusCode::UNPROCESSABLE_ENTITY, 42201, format!("Invalid schema: {reason}"))
        }
    }
}

async fn register(State(store): State<Shared>, Path(subject): Path<String>, body: Bytes) -> Reply {
    let request = match parse_request(&body) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let Ok(mut store) = store.write() else {
        return internal();
    };
    match store.register(&subject, &request.schema) {
        Ok(id) => Reply(StatusCode::OK, json!({"id": id})),
        Err(e) => invalid(e),
    }
}

async fn lookup(State(store): State<Shared>, Path(subject): Path<String>, body: Bytes) -> Reply {
    let request = match parse_request(&body) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let Ok(store) = store.read() else {
        return internal();
    };
    if !store.has_subject(&subject) {
        return subject_not_found(&subject);
    }
    match store.lookup(&subject, &request.schema) {
        Ok(Some(v)) => {
            Reply(StatusCode::OK, json!({"subject": v.subject, "id": v.id, "version": v.version, "schema": v.schema}))
        }
        Ok(None) => error(StatusCode::NOT_FOUND, 40403, "Schema not found"),
        Err(e) => invalid(e),
    }
}

async fn list_subjects(State(store): State<Shared>) -> Reply {
    let Ok(store) = store.read() else {
        return internal();
    };
    Reply(StatusCode::OK, json!(store.subjects().collect::<Vec<_>>()))
}

async fn list_versions(State(store): State<Shared>, Path(subject): Path<String>) -> Reply {
    let Ok(store) = store.read() else {
        return internal();
    };
    let n = store.subject_versions(&subject).len();
    if n == 0 {
        return subject_not_found(&subject);
    }
    Reply(StatusCode::OK, json!((1..=n).collect::<Vec<_>>()))
}

fn find_version(store: &SchemaStore, subject: &str, version: &str) -> Result<(u32, u32, String), Reply> {
    if !store.has_subject(subject) {
        return Err(subject_not_found(subject));
    }
    let found = if version == "latest" {
        store.latest(subject)
    } else {
        match version.parse::<u32>() {
            Ok(v) if v > 0 => store.version(subject, v),
            _ => {
                return Err(error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    42202,
                    format!(
                        "The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
                    ),
                ));
            }
        }
    };
    found.map(|v| (v.version, v.id, v.schema.to_string())).ok_or_else(|| version_not_found(version))
}

async fn get_version(State(store): State<Shared>, Path((subject, version)): Path<(String, String)>) -> Reply {
    let Ok(store) = store.read() else {
        return internal();
    };
    match find_version(&store, &subject, &version) {
        Ok((version, id, schema)) => {
            Reply(StatusCode::OK, json!({"subject": subject, "version": version, "id": id, "schema": schema}))
        }
        Err(reply) => reply,
    }
}

async fn get_version_schema(State(store): State<Shared>, Path((subject, version)): Path<(String, String)>) -> Response {
    let Ok(store) = store.read() else {
        return internal().into_response();
    };
    match find_version(&store, &subject, &version) {
        Ok((_, _, schema)) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], schema).into_response(),
        Err(reply) => reply.into_response(),
    }
}

async fn get_by_id(State(store): State<Shared>, Path(id): Path<u32>) -> Reply {
    let Ok(store) = store.read() else {
        return internal();
    };
    match store.schema(id) {
        Some(schema) => Reply(StatusCode::OK, json!({"schema": schema})),
        None => error(StatusCode::NOT_FOUND, 40403, "Schema not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn call(router: &Router, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Body::from(body.to_string()))
            .expect("request");
        let resp = router.clone().oneshot(req).await.expect("response");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn register_fetch_and_confluent_errors() {
        let router = router(Arc::default());
        let schema = r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"#;
        let body = json!({"schema": schema}).to_string();
        let (status, reply) = call(&router, "POST", "/subjects/t-value/versions", &body).await;
        assert_eq!((status, reply["id"].as_u64()), (StatusCode::OK, Some(1)));
        let (_, reply) = call(&router, "GET", "/schemas/ids/1", "").await;
        assert_eq!(reply["schema"], schema);
        let (_, reply) = call(&router, "GET", "/subjects/t-value/versions/latest", "").await;
        assert_eq!((reply["version"].as_u64(), reply["id"].as_u64()), (Some(1), Some(1)));
        let (status, reply) = call(&router, "GET", "/subjects/nope/versions/1", "").await;
        assert_eq!((status, reply["error_code"].as_u64()), (StatusCode::NOT_FOUND, Some(40401)));
        let (_, reply) = call(&router, "GET", "/subjects/t-value/versions/7", "").await;
        assert_eq!(reply["error_code"].as_u64(), Some(40402));
        let (_, reply) = call(&router, "GET", "/schemas/ids/99", "").await;
        assert_eq!(reply["error_code"].as_u64(), Some(40403));
        let bad = json!({"schema": "{\"type\":\"record\"}"}).to_string();
        let (status, reply) = call(&router, "POST", "/subjects/t-value/versions", &bad).await;
        assert_eq!((status, reply["error_code"].as_u64()), (StatusCode::UNPROCESSABLE_ENTITY, Some(42201)));
        let (status, reply) = call(&router, "POST", "/subjects/t-value", &body).await;
        assert_eq!((status, reply["version"].as_u64()), (StatusCode::OK, Some(1)));
    }
}
