//! Per-caller request rate limits for a service's HTTP API: a token bucket
//! per caller, the caller being the valid bearer token presented (a hash of
//! it, so the token itself is never kept) or else the peer address: a
//! made-up token does not buy a fresh allowance. Over
//! the limit a request is answered `429 Too Many Requests` with
//! `Retry-After` before any handler runs, so nothing of it is written.
//!
//! Configured by each service's `SLUICE_RATE_LIMIT` (requests per second per
//! caller, 0 = no limit) and `SLUICE_RATE_BURST` (requests a caller may send
//! at once).

use crate::auth::Tokens;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Callers remembered at most; past it, callers with full buckets (idle long
/// enough to have nothing to remember) are forgotten.
const MAX_CALLERS: usize = 100_000;

#[derive(Clone)]
pub struct RateLimit {
    per_sec: f64,
    burst: f64,
    /// Tokens that name a caller of their own.
    tokens: Tokens,
    hasher: RandomState,
    buckets: Arc<Mutex<HashMap<u64, Bucket>>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    /// `per_sec` requests per second per caller, `burst` at once; `None`
    /// when `per_sec` is 0 (no limit).
    pub fn new(per_sec: f64, burst: u32) -> Result<Option<RateLimit>, String> {
        if !per_sec.is_finite() || per_sec < 0.0 {
            return Err(format!(
                "SLUICE_RATE_LIMIT must be a number of requests per second, 0 or more (not {per_sec})"
            ));
        }
        if per_sec == 0.0 {
            return Ok(None);
        }
        if burst == 0 {
            return Err("SLUICE_RATE_BURST must be at least 1 when SLUICE_RATE_LIMIT is set".into());
        }
        Ok(Some(RateLimit {
            per_sec,
            burst: burst as f64,
            tokens: Tokens::default(),
            hasher: RandomState::new(),
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }))
    }

    /// Callers presenting one of `tokens` get an allowance per token; any
    /// other caller, one per address.
    pub fn knowing(mut self, tokens: &Tokens) -> RateLimit {
        self.tokens = tokens.clone();
        self
    }

    /// Takes one request from `caller`'s bucket: `Err(seconds)` to wait when
    /// it is empty.
    fn take(&self, caller: u64, now: Instant) -> Result<(), f64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_CALLERS && !buckets.contains_key(&caller) {
            let (per_sec, burst) = (self.per_sec, self.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < burst);
        }
        let bucket = buckets.entry(caller).or_insert(Bucket { tokens: self.burst, at: now });
        let refilled = bucket.tokens + now.saturating_duration_since(bucket.at).as_secs_f64() * self.per_sec;
        bucket.tokens = refilled.min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - bucket.tokens) / self.per_sec)
        }
    }

    fn caller(&self, request: &Request) -> u64 {
        match crate::auth::presented(request.headers()).filter(|t| self.tokens.knows(t)) {
            Some(token) => self.hasher.hash_one(("token", token)),
            None => {
                let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
                self.hasher.hash_one(("peer", peer))
            }
        }
    }
}

/// `router` with `limit` applied to every request, when there is one.
pub fn layer<S: Clone + Send + Sync + 'static>(limit: Option<RateLimit>, router: Router<S>) -> Router<S> {
    match limit {
        Some(limit) => router.layer(from_fn_with_state(limit, check)),
        None => router,
    }
}

async fn check(State(limit): State<RateLimit>, request: Request, next: Next) -> Response {
    match limit.take(limit.caller(&request), Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let seconds = wait.ceil().max(1.0) as u64;
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({
                    "status": "rejected",
                    "error": format!("rate limit of {} requests/s per caller exceeded; retry after {seconds} s", limit.per_sec),
                })),
            )
                .into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
    }
}

/// The `429` every operation of an OpenAPI document may answer when
/// `SLUICE_RATE_LIMIT` is set (the layer answers it before any handler).
pub struct TooManyRequests;

impl utoipa::Modify for TooManyRequests {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{Content, ResponseBuilder, header::Header};
        let text = || ObjectBuilder::new().schema_type(Type::String);
        let body = ObjectBuilder::new()
            .property("status", text())
            .property("error", text())
            .required("status")
            .required("error");
        let response = ResponseBuilder::new()
            .description(
                "Over the caller's rate limit (SLUICE_RATE_LIMIT): nothing was done; retry after Retry-After seconds.",
            )
            .header("Retry-After", Header::new(ObjectBuilder::new().schema_type(Type::Integer)))
            .content("application/json", Content::new(Some(body)))
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                operation.responses.responses.entry("429".into()).or_insert_with(|| response.clone().into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_caller_gets_its_burst_then_its_rate() {
        let limit = RateLimit::new(2.0, 3).unwrap().unwrap();
        let t0 = Instant::now();
        assert!((0..3).all(|_| limit.take(1, t0).is_ok()));
        let wait = limit.take(1, t0).unwrap_err();
        assert!((wait - 0.5).abs() < 1e-9, "{wait}");
        // Another caller has its own bucket.
        assert!(limit.take(2, t0).is_ok());
        // Half a second later, one more for the first caller, then none.
        let t1 = t0 + Duration::from_millis(500);
        assert!(limit.take(1, t1).is_ok());
        assert!(limit.take(1, t1).is_err());
        // A long pause refills only up to the burst.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| limit.take(1, t2).is_ok()).count(), 3);
    }

    #[test]
    fn only_a_known_token_names_a_caller_of_its_own() {
        use axum::body::Body;
        let tokens = Tokens::parse(&sluice_core::Secret::new("good"), &sluice_core::Secret::default());
        let limit = RateLimit::new(1.0, 1).unwrap().unwrap().knowing(&tokens);
        let request = |token: Option<&str>, ip: [u8; 4], port: u16| {
            let mut builder = Request::builder();
            if let Some(token) = token {
                builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            let mut request = builder.body(Body::empty()).unwrap();
            request.extensions_mut().insert(ConnectInfo(SocketAddr::from((ip, port))));
            request
        };
        let anonymous = limit.caller(&request(None, [10, 0, 0, 1], 1));
        // Made-up tokens share their address's allowance, whatever the port.
        assert_eq!(limit.caller(&request(Some("made-up"), [10, 0, 0, 1], 2)), anonymous);
        assert_eq!(limit.caller(&request(Some("another"), [10, 0, 0, 1], 3)), anonymous);
        assert_ne!(limit.caller(&request(None, [10, 0, 0, 2], 1)), anonymous);
        // A valid token is its own caller, from any address.
        let good = limit.caller(&request(Some("good"), [10, 0, 0, 1], 1));
        assert_ne!(good, anonymous);
        assert_eq!(limit.caller(&request(Some("good"), [10, 0, 0, 9], 7)), good);
    }

    #[test]
    fn settings_are_checked() {
        assert!(RateLimit::new(0.0, 0).unwrap().is_none());
        assert!(RateLimit::new(-1.0, 5).is_err_and(|e| e.contains("SLUICE_RATE_LIMIT")));
        assert!(RateLimit::new(f64::NAN, 5).is_err());
        assert!(RateLimit::new(5.0, 0).is_err_and(|e| e.contains("SLUICE_RATE_BURST")));
    }
}
