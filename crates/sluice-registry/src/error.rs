//! Confluent's error bodies: an HTTP status and an `error_code`.

use axum::http::StatusCode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

impl RegistryError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    pub fn subject_not_found(subject: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, 40401, format!("Subject '{subject}' not found."))
    }
    pub fn version_not_found(version: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, 40402, format!("Version {version} not found."))
    }
    pub fn schema_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, 40403, "Schema not found")
    }
    pub fn subject_not_soft_deleted(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40405,
            format!("Subject '{subject}' was not deleted first before being permanently deleted"),
        )
    }
    pub fn version_not_soft_deleted(subject: &str, version: u32) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40407,
            format!("Subject '{subject}' Version {version} was not deleted first before being permanently deleted"),
        )
    }
    pub fn subject_level_not_configured(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40408,
            format!("Subject '{subject}' does not have subject-level compatibility configured"),
        )
    }
    pub fn incompatible(subject: &str, problems: &[String]) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            409,
            format!(
                "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: {problems:?}"
            ),
        )
    }
    pub fn invalid_schema(reason: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, 42201, format!("Invalid schema: {reason}"))
    }
    pub fn invalid_version(version: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42202,
            format!(
                "The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
            ),
        )
    }
    pub fn invalid_compatibility(level: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42203,
            format!(
                "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive; got {level}"
            ),
        )
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, 42201, message)
    }
    /// A path the API does not have (Confluent's own answer, in its format).
    pub fn no_such_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found")
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            40101,
            "Writes need a write token: Authorization: Bearer <token>, or Basic auth with the token as password",
        )
    }
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, 40301, "This token may only read")
    }
    pub fn store(message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, 50001, format!("Error in the backend data store: {message}"))
    }
    pub fn forwarding(message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            50003,
            format!("Error while forwarding the request to the leader: {message}"),
        )
    }
}
