//! Followers: reads are served from the replayed log, writes go to the leader.

use crate::error::RegistryError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

#[derive(Clone)]
pub struct Leader {
    pub url: String,
    pub http: reqwest::Client,
}

/// Everything that changes the log; compatibility tests only read.
fn is_write(method: &Method, path: &str) -> bool {
    *method == Method::PUT
        || *method == Method::DELETE
        || (*method == Method::POST && path.ends_with("/versions") && !path.starts_with("/compatibility/"))
}

pub async fn forward_writes(State(leader): State<Leader>, req: Request, next: Next) -> Response {
    if !is_write(req.method(), req.uri().path()) {
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
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let body = axum::body::to_bytes(req.into_body(), 16 * 1024 * 1024).await.map_err(|e| e.to_string())?;
    let mut request =
        leader.http.request(method, format!("{}{path_and_query}", leader.url.trim_end_matches('/'))).body(body);
    if let Some(ct) = content_type.and_then(|c| c.to_str().ok().map(str::to_string)) {
        request = request.header(reqwest::header::CONTENT_TYPE, ct);
    }
    let answer = request.send().await.map_err(|e| e.to_string())?;
    let status = StatusCode::from_u16(answer.status().as_u16()).map_err(|e| e.to_string())?;
    let ct = answer
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(super::CONTENT_TYPE)
        .to_string();
    let bytes = answer.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, [(header::CONTENT_TYPE, ct)], Body::from(bytes)).into_response())
}
