//! Request parsing with clear errors: 415 without a JSON content type, 413
//! over the body limit, 400 for bad JSON, wrong types and unknown fields.

use crate::CommandError;
use crate::service::{CommandContext, IdempotencyKey};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// A JSON command body, and the digest of its bytes for idempotency.
pub struct Command<T> {
    pub body: T,
    pub digest: Vec<u8>,
}

/// Commands without fields (publish, archive...) accept an empty body or `{}`.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NoFields {}

impl<S: Send + Sync, T: DeserializeOwned + 'static> FromRequest<S> for Command<T> {
    type Rejection = CommandError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = json_content_type(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                CommandError::TooLarge("the request body is larger than the configured limit".into())
            } else {
                CommandError::BadRequest(e.body_text())
            }
        })?;
        let digest = Sha256::digest(&bytes).to_vec();
        let empty_allowed = std::any::TypeId::of::<T>() == std::any::TypeId::of::<NoFields>();
        if bytes.iter().all(u8::is_ascii_whitespace) && empty_allowed {
            let body = serde_json::from_slice(b"{}").map_err(|e| CommandError::Internal(e.to_string()))?;
            return Ok(Command { body, digest });
        }
        if !is_json {
            return Err(CommandError::UnsupportedMediaType("expected `Content-Type: application/json`".into()));
        }
        let body = serde_json::from_slice(&bytes).map_err(|e| CommandError::BadRequest(describe_json_error(&e)))?;
        Ok(Command { body, digest })
    }
}

fn json_content_type(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next()).is_some_and(
        |mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        },
    )
}

fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let kind = match e.classify() {
        Category::Syntax | Category::Eof => "malformed JSON",
        Category::Data => "invalid command",
        Category::Io => "unreadable body",
    };
    format!("{kind}: {e}")
}

/// `If-Match`, `Idempotency-Key` and `traceparent`, taken from the headers.
pub struct Meta {
    pub expected_version: Option<i64>,
    pub idempotency_key: Option<String>,
    pub traceparent: Option<String>,
    pub scope: String,
}

impl Meta {
    pub fn context(&self, digest: Vec<u8>) -> CommandContext {
        CommandContext {
            expected_version: self.expected_version,
            idempotency: self.idempotency_key.as_ref().map(|key| IdempotencyKey {
                scope: self.scope.clone(),
                key: key.clone(),
                request_hash: digest,
            }),
            traceparent: self.traceparent.clone(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = CommandError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let text = |name: &str| -> Result<Option<String>, CommandError> {
            parts
                .headers
                .get(name)
                .map(|v| {
                    v.to_str().map(str::to_string).map_err(|_| CommandError::BadRequest(format!("{name} is not ASCII")))
                })
                .transpose()
        };
        let expected_version = text("if-match")?.map(|v| parse_if_match(&v)).transpose()?;
        let idempotency_key = text("idempotency-key")?;
        if let Some(key) = &idempotency_key {
            let ok = !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(CommandError::BadRequest("Idempotency-Key must be 1-255 visible ASCII characters".into()));
            }
        }
        let traceparent = text("traceparent")?.filter(|t| is_traceparent(t));
        Ok(Meta {
            expected_version,
            idempotency_key,
            traceparent,
            scope: format!("{} {}", parts.method, parts.uri.path()),
        })
    }
}

/// `3`, `"3"` or `W/"3"`: a version of 1 to 18 digits without leading zeros
/// (the pattern of the API document).
fn parse_if_match(value: &str) -> Result<i64, CommandError> {
    let v = value.trim();
    let v = v.strip_prefix("W/").unwrap_or(v);
    let v = v.strip_prefix('"').and_then(|q| q.strip_suffix('"')).unwrap_or(v);
    let digits = (1..=18).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) && !v.starts_with('0');
    digits
        .then(|| v.parse::<i64>().ok())
        .flatten()
        .ok_or_else(|| CommandError::BadRequest(format!("If-Match `{value}` is not a version number")))
}

/// W3C trace context: `00-<32 hex>-<16 hex>-<2 hex>`.
fn is_traceparent(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    parts.len() == 4 && hex(parts[0], 2) && hex(parts[1], 32) && hex(parts[2], 16) && hex(parts[3], 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_forms() {
        assert_eq!(parse_if_match("3").ok(), Some(3));
        assert_eq!(parse_if_match("\"12\"").ok(), Some(12));
        assert_eq!(parse_if_match("W/\"4\"").ok(), Some(4));
        assert!(parse_if_match("abc").is_err());
        assert!(parse_if_match("0").is_err());
        assert!(parse_if_match("+3").is_err());
        assert!(parse_if_match("03").is_err());
        assert!(parse_if_match("\"3").is_err());
        assert!(parse_if_match("1234567890123456789").is_err());
    }

    #[test]
    fn traceparent_shape() {
        assert!(is_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert!(!is_traceparent("00-xyz-00f067aa0ba902b7-01"));
    }
}
