//! Answers and the headers every one of them carries.

use crate::lag::Lag;
use crate::model::Source;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub const VERSION_HEADER: &str = "sluice-version";
pub const FRESHNESS_HEADER: &str = "sluice-freshness";
pub const LAG_MESSAGES_HEADER: &str = "sluice-lag-messages";
pub const LAG_MS_HEADER: &str = "sluice-lag-ms";
/// Which read model answered: `redis` or `postgres`.
pub const READ_MODEL_HEADER: &str = "sluice-read-model";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// From the read model, within what was asked.
    Projected,
    /// Fetched from the source of truth for this read (and applied to the
    /// read model).
    Refreshed,
    /// From the read model, staler than asked: the source of truth could not
    /// be asked, or a wait ran out.
    Stale,
}

impl Freshness {
    pub fn as_str(self) -> &'static str {
        match self {
            Freshness::Projected => "projected",
            Freshness::Refreshed => "refreshed",
            Freshness::Stale => "stale",
        }
    }
}

/// What an answer says about itself.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub version: Option<i64>,
    /// The lag of the read model's partition that holds the key (of its
    /// worst partition, for a list); `None` while the lag cache does not
    /// know the topic yet (the broker was not reachable).
    pub lag: Option<Lag>,
    pub freshness: Freshness,
    pub store: Source,
}

pub fn respond(status: StatusCode, body: serde_json::Value, meta: &Meta) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    if let Some(version) = meta.version {
        headers.insert(HeaderName::from_static(VERSION_HEADER), HeaderValue::from(version));
    }
    let (messages, millis) = match meta.lag {
        Some(lag) => (HeaderValue::from(lag.messages), HeaderValue::from(lag.millis)),
        None => (HeaderValue::from_static("unknown"), HeaderValue::from_static("unknown")),
    };
    headers.insert(HeaderName::from_static(LAG_MESSAGES_HEADER), messages);
    headers.insert(HeaderName::from_static(LAG_MS_HEADER), millis);
    headers.insert(HeaderName::from_static(FRESHNESS_HEADER), HeaderValue::from_static(meta.freshness.as_str()));
    headers.insert(HeaderName::from_static(READ_MODEL_HEADER), HeaderValue::from_static(meta.store.name()));
    response
}

/// A request answered with an error: its status and what was wrong.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub message: String,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = json!({"error": self.message}).to_string();
        (self.status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

pub fn problem(status: StatusCode, message: &str) -> Problem {
    Problem { status, message: message.into() }
}
