//! Bearer tokens: write tokens may do everything, read tokens only read.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;
use sluice_core::Secret;
use subtle::ConstantTimeEq;

#[derive(Clone, Default)]
pub struct Tokens {
    pub write: Vec<Secret>,
    pub read: Vec<Secret>,
}

impl Tokens {
    /// Parses comma-separated token lists (empty entries ignored).
    pub fn parse(write: &Secret, read: &Secret) -> Self {
        let split = |s: &Secret| -> Vec<Secret> {
            s.expose().split(',').map(str::trim).filter(|t| !t.is_empty()).map(Secret::new).collect()
        };
        Self { write: split(write), read: split(read) }
    }

    /// Whether `presented` is one of the tokens.
    pub fn knows(&self, presented: &str) -> bool {
        self.level(presented).is_some()
    }

    fn level(&self, presented: &str) -> Option<Access> {
        // Compare against every token, in constant time per token.
        let matches = |list: &[Secret]| {
            list.iter().fold(false, |found, t| found | bool::from(t.expose().as_bytes().ct_eq(presented.as_bytes())))
        };
        if matches(&self.write) {
            Some(Access::Write)
        } else if matches(&self.read) {
            Some(Access::Read)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    Write,
}

fn deny(status: StatusCode, message: &str) -> Response {
    let mut r = (status, Json(json!({"status": "rejected", "error": message}))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    }
    r
}

/// The token a request presents, if any: `Authorization: Bearer <token>`, or
/// HTTP Basic with the token as password (what Confluent's schema registry
/// clients send from `basic.auth.user.info`; the user name is not checked).
pub fn presented(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.trim().to_string());
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (_user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(password.to_string())
}

impl Tokens {
    /// What the token `headers` present may do (None: no token, or an unknown one).
    pub fn access(&self, headers: &HeaderMap) -> Option<Access> {
        presented(headers).and_then(|p| self.level(&p))
    }
}

async fn require(tokens: &Tokens, needed: Access, req: Request, next: Next) -> Response {
    match tokens.access(req.headers()) {
        None => deny(StatusCode::UNAUTHORIZED, "a valid bearer token is required"),
        Some(level) if level < needed => deny(StatusCode::FORBIDDEN, "this token may only read"),
        Some(_) => next.run(req).await,
    }
}

pub async fn require_write(State(tokens): State<Tokens>, req: Request, next: Next) -> Response {
    require(&tokens, Access::Write, req, next).await
}

pub async fn require_read(State(tokens): State<Tokens>, req: Request, next: Next) -> Response {
    require(&tokens, Access::Read, req, next).await
}

/// Declares the `bearer` security scheme in an OpenAPI document (what the
/// handlers' `security(("bearer" = []))` names).
pub struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// An OpenAPI document as pretty JSON (what `/openapi.json` serves and what is checked in).
pub fn openapi_json(openapi: &utoipa::openapi::OpenApi) -> String {
    openapi.to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        let t = Tokens::parse(&Secret::new("w1, w2"), &Secret::new("r1"));
        assert_eq!(t.level("w2"), Some(Access::Write));
        assert_eq!(t.level("r1"), Some(Access::Read));
        assert_eq!(t.level("w"), None);
        assert_eq!(t.level(""), None);
    }

    fn headers(authorization: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, authorization.parse().unwrap());
        h
    }

    #[test]
    fn bearer_and_basic_present_the_same_token() {
        let t = Tokens::parse(&Secret::new("w1"), &Secret::new("r1"));
        let basic = |user_pass: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass));
        assert_eq!(t.access(&headers("Bearer w1")), Some(Access::Write));
        assert_eq!(t.access(&headers(&basic("anyone:w1"))), Some(Access::Write));
        assert_eq!(t.access(&headers(&basic("w1:r1"))), Some(Access::Read), "the password is the token");
        assert_eq!(t.access(&headers(&basic("w1"))), None, "no password");
        assert_eq!(t.access(&headers("Basic !!!")), None, "not base64");
        assert_eq!(t.access(&headers("Token w1")), None);
        assert_eq!(t.access(&HeaderMap::new()), None);
    }
}
