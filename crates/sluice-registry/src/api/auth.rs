//! Writes need a write token; reads, look-ups and compatibility tests are
//! open (every producer and consumer reads schemas by id).

use crate::error::RegistryError;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sluice_telemetry::auth::{Access, Tokens};

/// Everything that changes the log: registering, deleting, setting a
/// compatibility level. Look-ups (`POST /subjects/{s}`) and compatibility
/// tests only read.
pub(crate) fn is_write(method: &Method, path: &str) -> bool {
    let register = || matches!(path.split('/').collect::<Vec<_>>().as_slice(), ["", "subjects", _, "versions"]);
    *method == Method::PUT || *method == Method::DELETE || (*method == Method::POST && register())
}

pub(crate) async fn require_token_on_writes(State(tokens): State<Tokens>, req: Request, next: Next) -> Response {
    if !is_write(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    match tokens.access(req.headers()) {
        Some(Access::Write) => next.run(req).await,
        Some(Access::Read) => RegistryError::forbidden().into_response(),
        None => {
            let mut refused = RegistryError::unauthorized().into_response();
            refused.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer, Basic"));
            refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_registrations_deletes_and_levels() {
        assert!(is_write(&Method::POST, "/subjects/a-value/versions"));
        assert!(is_write(&Method::PUT, "/config/a-value"));
        assert!(is_write(&Method::PUT, "/config"));
        assert!(is_write(&Method::DELETE, "/subjects/a-value/versions/1"));
        assert!(is_write(&Method::DELETE, "/subjects/a-value"));
        // Look-ups and compatibility tests only read, whatever the subject is called.
        assert!(!is_write(&Method::POST, "/subjects/a-value"));
        assert!(!is_write(&Method::POST, "/subjects/versions"));
        assert!(!is_write(&Method::POST, "/compatibility/subjects/a-value/versions"));
        assert!(!is_write(&Method::POST, "/compatibility/subjects/a-value/versions/latest"));
        assert!(!is_write(&Method::GET, "/subjects/a-value/versions"));
    }
}
