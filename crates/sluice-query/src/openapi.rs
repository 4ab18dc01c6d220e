//! The OpenAPI document, generated from the handlers (served at
//! `/openapi.json`, checked in as `services/query-api/openapi.json`).

use crate::{entity, lists};
use sluice_telemetry::auth::BearerScheme;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Sluice CMS query API", description = "Reads of the CMS read models. Every answer says how stale it is (Sluice-Lag-Messages, Sluice-Lag-Ms: the lag of the read model's partition that holds the key, from the topic to the read model; the relay's own delay is not in it) and how it was made (Sluice-Freshness: projected, refreshed from the source of truth, or stale)."),
    paths(
        entity::article, entity::article_page, entity::article_by_slug, entity::author,
        lists::published, lists::by_tag, lists::by_author, lists::search
    ),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

/// The document as pretty JSON (what `/openapi.json` serves and what is checked in).
pub fn openapi_json() -> String {
    sluice_telemetry::auth::openapi_json(&ApiDoc::openapi())
}
