//! The OpenAPI document, generated from the handlers (served at
//! `/openapi.json`, checked in as `services/query-api/openapi.json`).

use crate::{entity, lists};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Sluice CMS query API", description = "Reads of the CMS read models. Every answer says how stale it is (Sluice-Lag-Messages, Sluice-Lag-Ms: the lag of the read model's partition that holds the key, from the topic to the read model; the relay's own delay is not in it) and how it was made (Sluice-Freshness: projected, refreshed from the source of truth, or stale)."),
    paths(
        entity::article, entity::article_page, entity::article_by_slug, entity::author,
        lists::published, lists::by_tag, lists::by_author, lists::search
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

/// The document as pretty JSON.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
