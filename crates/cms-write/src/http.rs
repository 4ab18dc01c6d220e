//! HTTP routes of the command API.

use crate::{CommandError, ConsistencyToken, Repository};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use cms_domain::{DraftArticle, aggregate};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

#[derive(Clone)]
pub struct AppState {
    pub repository: Repository,
    /// Base URL of the query API, for `Location`.
    pub query_base_url: String,
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/articles", post(draft_article))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// The answer to an accepted command.
#[derive(Debug, Serialize)]
pub struct Accepted {
    pub status: &'static str,
    pub id: String,
    pub version: i64,
    pub consistency_token: String,
}

struct AcceptedResponse {
    location: String,
    body: Accepted,
}

impl IntoResponse for AcceptedResponse {
    fn into_response(self) -> Response {
        (
            StatusCode::ACCEPTED,
            [(header::LOCATION, self.location)],
            Json(self.body),
        )
            .into_response()
    }
}

/// JSON body whose rejections become our error shape: 415 for a wrong content
/// type, 413 over the limit, 400 for syntax, wrong types and unknown fields.
struct Command<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Command<T> {
    type Rejection = CommandError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Command(v)),
            Err(JsonRejection::MissingJsonContentType(e)) => {
                Err(CommandError::UnsupportedMediaType(e.body_text()))
            }
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(CommandError::TooLarge(e.body_text()))
            }
            Err(e) => Err(CommandError::BadRequest(e.body_text())),
        }
    }
}

fn traceparent(headers: &HeaderMap) -> Option<&str> {
    headers.get("traceparent").and_then(|v| v.to_str().ok())
}

async fn draft_article(
    State(state): State<AppState>,
    headers: HeaderMap,
    Command(command): Command<DraftArticle>,
) -> Result<AcceptedResponse, CommandError> {
    let id = Uuid::now_v7();
    let (article, event) = command
        .execute(id, chrono::Utc::now())
        .map_err(|rejection| CommandError::Invalid(rejection.0))?;
    state
        .repository
        .insert_article(&article, event, traceparent(&headers))
        .await?;
    let token = ConsistencyToken {
        aggregate_type: aggregate::ARTICLE.into(),
        aggregate_id: article.id.clone(),
        version: article.version,
    };
    Ok(AcceptedResponse {
        location: format!(
            "{}/articles/{}",
            state.query_base_url.trim_end_matches('/'),
            article.id
        ),
        body: Accepted {
            status: "accepted",
            id: article.id,
            version: article.version,
            consistency_token: token.encode(),
        },
    })
}
