//! The query API's routes: documents from the Redis read model (the
//! generation its serving pointer names) with the version they are at.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use redis::aio::ConnectionManager;
use serde_json::json;
use sluice_store_redis::generation::{self, Read};

pub const VERSION_HEADER: &str = "sluice-version";
pub const FRESHNESS_HEADER: &str = "sluice-freshness";

#[derive(Clone)]
pub struct QueryState {
    pub redis: ConnectionManager,
    pub projection: String,
}

pub fn router(state: QueryState) -> Router {
    Router::new().route("/articles/{id}", get(get_article)).with_state(state)
}

fn problem(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

async fn get_article(State(state): State<QueryState>, Path(id): Path<String>) -> Response {
    if uuid::Uuid::parse_str(&id).is_err() {
        return problem(StatusCode::BAD_REQUEST, "article id must be a UUID");
    }
    let mut conn = state.redis.clone();
    match generation::read_document(&mut conn, &state.projection, "article", &id).await {
        Ok(Read::Found { doc, version }) => {
            let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], doc).into_response();
            let headers = response.headers_mut();
            headers.insert(HeaderName::from_static(VERSION_HEADER), HeaderValue::from(version));
            headers.insert(HeaderName::from_static(FRESHNESS_HEADER), HeaderValue::from_static("projected"));
            response
        }
        Ok(Read::Missing) => problem(StatusCode::NOT_FOUND, "no such article in the read model"),
        Ok(Read::NotBuilt) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the read model is not built yet (or is being rebuilt), retry later",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "read model unavailable");
            problem(StatusCode::SERVICE_UNAVAILABLE, "read model unavailable, retry later")
        }
    }
}
