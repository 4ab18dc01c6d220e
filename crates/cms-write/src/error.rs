use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cms_domain::Reason;
use serde_json::json;

/// Every way a command can fail, rendered as one JSON shape:
/// `{"status": "rejected", "error": ..., "reasons": [{field, message}]}`.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("request body too large: {0}")]
    TooLarge(String),
    #[error("validation failed")]
    Invalid(Vec<Reason>),
    #[error("version conflict: expected {expected}, current {current}")]
    Conflict { expected: i64, current: i64 },
    #[error("not found")]
    NotFound,
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for CommandError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            CommandError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({"error": m})),
            CommandError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, json!({"error": m})),
            CommandError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, json!({"error": m})),
            CommandError::Invalid(reasons) => {
                (StatusCode::UNPROCESSABLE_ENTITY, json!({"error": "validation failed", "reasons": reasons}))
            }
            CommandError::Conflict { expected, current } => (
                StatusCode::CONFLICT,
                json!({"error": "version conflict", "expected_version": expected, "current_version": current}),
            ),
            CommandError::NotFound => (StatusCode::NOT_FOUND, json!({"error": "not found"})),
            CommandError::Unavailable(m) => {
                tracing::warn!(error = %m, "command failed: storage unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, json!({"error": "storage unavailable, retry later"}))
            }
            CommandError::Internal(m) => {
                tracing::error!(error = %m, "command failed");
                (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "internal error"}))
            }
        };
        let mut body = body;
        body["status"] = json!("rejected");
        (status, Json(body)).into_response()
    }
}
