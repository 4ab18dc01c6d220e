//! The OpenAPI document, generated from the handlers.

use super::handlers;
use sluice_telemetry::auth::BearerScheme;
use sluice_telemetry::rate_limit::TooManyRequests;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Sluice CMS command API", description = "Commands on articles and authors; each accepted command is stored with its outbox event in one transaction."),
    paths(
        handlers::draft_article, handlers::edit_article, handlers::schedule_article, handlers::publish_article,
        handlers::unpublish_article, handlers::archive_article, handlers::restore_article, handlers::erase_article,
        handlers::create_author, handlers::rename_author, handlers::update_author_bio, handlers::list_changes,
        handlers::get_article, handlers::get_author
    ),
    modifiers(&BearerScheme, &TooManyRequests)
)]
struct ApiDoc;

/// The document as pretty JSON (what `/openapi.json` serves and what is checked in).
pub fn openapi_json() -> String {
    sluice_telemetry::auth::openapi_json(&ApiDoc::openapi())
}
