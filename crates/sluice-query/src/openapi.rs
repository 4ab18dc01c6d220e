//! The OpenAPI document, generated from the handlers (served at
//! `/openapi.json`, checked in as `services/query-api/openapi.json`).

use crate::{consistency, entity, lists};
use serde_json::{Value, json};
use sluice_telemetry::auth::BearerScheme;
use sluice_telemetry::rate_limit::TooManyRequests;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Sluice CMS query API", description = "Reads of the CMS read models. Every answer says how stale it is (Sluice-Lag-Messages, Sluice-Lag-Ms: the lag of the read model's partition that holds the key, from the topic to the read model; the relay's own delay is not in it) and how it was made (Sluice-Freshness: projected, refreshed from the source of truth, or stale)."),
    paths(
        entity::article, entity::article_page, entity::article_by_slug, entity::author,
        lists::published, lists::by_tag, lists::by_author, lists::search
    ),
    modifiers(&BearerScheme, &TooManyRequests)
)]
struct ApiDoc;

/// The document as pretty JSON (what `/openapi.json` serves and what is checked in).
pub fn openapi_json() -> String {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serialises");
    describe_parameters(&mut doc);
    serde_json::to_string_pretty(&doc).expect("JSON")
}

/// Every parameter's schema and every refusal, from the constants the
/// handlers check them with, so that the document says exactly what they
/// accept (schemathesis holds them to it: tests/api_fuzz.rs).
fn describe_parameters(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for operation in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|p| p.values_mut()) {
        for parameter in operation.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
            let schema = match (parameter["in"].as_str(), parameter["name"].as_str()) {
                (Some("header"), Some("Sluice-Consistency")) | (Some("query"), Some("consistency")) => {
                    json!({"type": "string", "pattern": consistency::PATTERN})
                }
                (Some("path"), Some("id")) => json!({"type": "string", "format": "uuid"}),
                (Some("query"), Some("limit")) => json!({"type": "integer", "minimum": 1, "maximum": lists::MAX_LIMIT}),
                (Some("query"), Some("cursor")) => json!({"type": "string", "pattern": lists::CURSOR_PATTERN}),
                (Some("query"), Some("q")) => {
                    json!({"type": "string", "minLength": 1, "maxLength": lists::MAX_QUERY_LEN,
                           "pattern": r"^[^\u0000]*\S[^\u0000]*$"})
                }
                _ => continue,
            };
            parameter["schema"] = schema;
        }
        if let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) {
            // The lag is `unknown` when the read model cannot say (never a guess).
            for response in responses.values_mut() {
                for lag in ["Sluice-Lag-Messages", "Sluice-Lag-Ms"] {
                    if let Some(header) = response.pointer_mut(&format!("/headers/{lag}")) {
                        header["schema"] = json!({"type": "string", "pattern": "^([0-9]+|unknown)$"});
                        header["description"] = json!("A whole number, or `unknown` when the read model cannot say");
                    }
                }
            }
            responses.insert(
                "401".into(),
                json!({"description": "A read token is required (SLUICE_READ_TOKENS) and none or a wrong one was given"}),
            );
            responses.insert(
                "422".into(),
                json!({"description": "A well-formed consistency token that no command answered, or a Sluice-Consistency header and consistency parameter that disagree", "content": {"application/json": {"schema": {"type": "object"}}}}),
            );
        }
    }
}
