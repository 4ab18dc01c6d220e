//! Followers: reads are served from the replayed log, writes go to the leader.

use crate::error::RegistryError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

#[derive(Clone)]
pub struct Leader {
    pub url: String,
    pub http: reqwest::Client,
}

pub async fn forward_writes(State(leader): State<Leader>, req: Request, next: Next) -> Response {
    if !super::auth::is_write(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    match forward(&leader, req).await {
        Ok(response) => response,
        Err(e) => RegistryError::forwarding(e).into_response(),
    }
}

async fn forward(leader: &Leader, req: Request) -> Result<Response, String> {
    let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).map_err(|e| e.to_string())?;
    let passed_on = copy_headers(req.headers(), FORWARDED_REQUEST_HEADERS);
    let body = axum::body::to_bytes(req.into_body(), 16 * 1024 * 1024).await.map_err(|e| e.to_string())?;
    let answer = leader
        .http
        .request(method, format!("{}{path_and_query}", leader.url.trim_end_matches('/')))
        .headers(passed_on)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = StatusCode::from_u16(answer.status().as_u16()).map_err(|e| e.to_string())?;
    let mut headers = copy_headers(answer.headers(), FORWARDED_ANSWER_HEADERS);
    if !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(super::CONTENT_TYPE));
    }
    let bytes = answer.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, headers, Body::from(bytes)).into_response())
}

/// What the leader needs of the caller's request: the body's type and the
/// caller's credentials (the leader checks them, not the follower alone).
const FORWARDED_REQUEST_HEADERS: &[header::HeaderName] = &[header::CONTENT_TYPE, header::AUTHORIZATION];

/// What the caller needs of the leader's answer: a refused caller learns how
/// to authenticate, a limited one when to retry.
const FORWARDED_ANSWER_HEADERS: &[header::HeaderName] =
    &[header::CONTENT_TYPE, header::RETRY_AFTER, header::WWW_AUTHENTICATE];

fn copy_headers(from: &HeaderMap, names: &[header::HeaderName]) -> HeaderMap {
    let mut to = HeaderMap::new();
    for name in names {
        for value in from.get_all(name) {
            to.append(name.clone(), value.clone());
        }
    }
    to
}
