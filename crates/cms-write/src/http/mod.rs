//! HTTP routes of the command API.

pub use sluice_telemetry::auth;
mod extract;
mod handlers;
mod openapi;

use crate::service::CommandService;
use auth::Tokens;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post};

pub use openapi::openapi_json;

#[derive(Clone)]
pub struct AppState {
    pub service: CommandService,
}

/// Write routes need a write token, `/changes` and the current snapshots
/// (`GET /articles/{id}`, `GET /authors/{id}`) any token; `/openapi.json` is
/// public. `auth_disabled` lets everything through (local experiments).
pub fn router(state: AppState, tokens: Tokens, max_body_bytes: usize, auth_disabled: bool) -> Router {
    let writes = Router::new()
        .route("/articles", post(handlers::draft_article))
        .route("/articles/{id}/edit", post(handlers::edit_article))
        .route("/articles/{id}/schedule", post(handlers::schedule_article))
        .route("/articles/{id}/publish", post(handlers::publish_article))
        .route("/articles/{id}/unpublish", post(handlers::unpublish_article))
        .route("/articles/{id}/archive", post(handlers::archive_article))
        .route("/articles/{id}/restore", post(handlers::restore_article))
        .route("/articles/{id}", delete(handlers::erase_article))
        .route("/authors", post(handlers::create_author))
        .route("/authors/{id}/rename", post(handlers::rename_author))
        .route("/authors/{id}/bio", post(handlers::update_author_bio));
    let reads = Router::new()
        .route("/changes", get(handlers::list_changes))
        .route("/articles/{id}", get(handlers::get_article))
        .route("/authors/{id}", get(handlers::get_author));
    let (writes, reads) = if auth_disabled {
        (writes, reads)
    } else {
        (
            writes.layer(from_fn_with_state(tokens.clone(), auth::require_write)),
            reads.layer(from_fn_with_state(tokens, auth::require_read)),
        )
    };
    writes
        .merge(reads)
        .route("/openapi.json", get(|| async { ([("content-type", "application/json")], openapi_json()) }))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}
