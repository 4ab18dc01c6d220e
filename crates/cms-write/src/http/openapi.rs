//! The OpenAPI document, generated from the handlers.

use super::handlers;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Sluice CMS command API", description = "Commands on articles and authors; each accepted command is stored with its outbox event in one transaction."),
    paths(
        handlers::draft_article, handlers::edit_article, handlers::schedule_article, handlers::publish_article,
        handlers::unpublish_article, handlers::archive_article, handlers::restore_article, handlers::erase_article,
        handlers::create_author, handlers::rename_author, handlers::update_author_bio, handlers::list_changes,
        handlers::get_article, handlers::get_author
    ),
    modifiers(&Bearer)
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as pretty JSON (what `/openapi.json` serves and what is checked in).
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
