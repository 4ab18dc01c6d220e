//! One handler per command: parse, hand to the service, render the answer.

use super::AppState;
use super::extract::{Command, Meta, NoFields};
use crate::CommandError;
use crate::service::Answer;
use crate::store::changes::{self, Change, Cursor};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cms_domain::{
    ArticleCommand, AuthorCommand, CreateAuthor, DraftArticle, EditArticle, RenameAuthor, ScheduleArticle,
    UpdateAuthorBio,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Body of an accepted command.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AcceptedBody {
    /// Always `accepted`.
    pub status: String,
    pub id: String,
    /// The aggregate's version after the command.
    pub version: i64,
    /// Hand to the query API (`Sluice-Consistency: at-least; token=...`) to read your write.
    pub consistency_token: String,
}

/// Body of a refused command.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Always `rejected`.
    pub status: String,
    pub error: String,
    /// Present on 422: every field that was wrong.
    pub reasons: Option<Vec<cms_domain::Reason>>,
    /// Present on 409.
    pub current_version: Option<i64>,
}

fn render(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::ACCEPTED);
    let mut response = (status, Json(answer.body)).into_response();
    if let Some(location) = answer.location.and_then(|l| header::HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// The aggregate in the path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct IdPath {
    /// The aggregate's id.
    #[allow(dead_code)] // only described: handlers take the text and say what is wrong with it
    id: Uuid,
}

/// `If-Match`, taken by commands on an existing aggregate (`Meta`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct VersionHeader {
    /// The version the command expects the aggregate at (`3`, `"3"` or `W/"3"`): 409 when it is at another.
    #[param(rename = "If-Match", value_type = String, required = false,
            pattern = r#"^\s*(W/)?("[1-9][0-9]{0,17}"|[1-9][0-9]{0,17})\s*$"#)]
    #[allow(dead_code)]
    if_match: Option<String>,
}

/// `Idempotency-Key`, taken by every command (`Meta`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyHeader {
    /// A retried command with the same key (and body) gets the first answer again; another body is 422.
    #[param(rename = "Idempotency-Key", value_type = String, required = false, min_length = 1, max_length = 255,
            pattern = "^[!-~]+$")]
    #[allow(dead_code)]
    idempotency_key: Option<String>,
}

fn parse_id(id: &str) -> Result<Uuid, CommandError> {
    Uuid::parse_str(id).map_err(|_| CommandError::BadRequest(format!("`{id}` is not a UUID")))
}

#[utoipa::path(post, path = "/articles", tag = "articles", request_body = DraftArticle,
    params(IdempotencyHeader),
    responses((status = 202, body = AcceptedBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn draft_article(
    State(s): State<AppState>,
    meta: Meta,
    cmd: Command<DraftArticle>,
) -> Result<Response, CommandError> {
    Ok(render(s.service.draft_article(&meta.context(cmd.digest), cmd.body).await?))
}

async fn on_article(
    s: &AppState,
    id: &str,
    meta: Meta,
    digest: Vec<u8>,
    command: ArticleCommand,
) -> Result<Response, CommandError> {
    let id = parse_id(id)?;
    Ok(render(s.service.article_command(&meta.context(digest), id, command).await?))
}

#[utoipa::path(post, path = "/articles/{id}/edit", tag = "articles", request_body = EditArticle,
    params(IdPath, VersionHeader, IdempotencyHeader),
    responses((status = 202, body = AcceptedBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn edit_article(
    State(s): State<AppState>,
    Path(id): Path<String>,
    meta: Meta,
    cmd: Command<EditArticle>,
) -> Result<Response, CommandError> {
    on_article(&s, &id, meta, cmd.digest, ArticleCommand::Edit(cmd.body)).await
}

#[utoipa::path(post, path = "/articles/{id}/schedule", tag = "articles", request_body = ScheduleArticle,
    params(IdPath, VersionHeader, IdempotencyHeader),
    responses((status = 202, body = AcceptedBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn schedule_article(
    State(s): State<AppState>,
    Path(id): Path<String>,
    meta: Meta,
    cmd: Command<ScheduleArticle>,
) -> Result<Response, CommandError> {
    on_article(&s, &id, meta, cmd.digest, ArticleCommand::Schedule(cmd.body)).await
}

macro_rules! article_action {
    ($name:ident, $path:literal, $command:expr) => {
        #[utoipa::path(post, path = $path, tag = "articles",
            params(IdPath, VersionHeader, IdempotencyHeader),
            responses((status = 202, body = AcceptedBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
            security(("bearer" = [])))]
        pub async fn $name(State(s): State<AppState>, Path(id): Path<String>, meta: Meta, cmd: Command<NoFields>) -> Result<Response, CommandError> {
            on_article(&s, &id, meta, cmd.digest, $command).await
        }
    };
}

article_action!(publish_article, "/articles/{id}/publish", ArticleCommand::Publish);
article_action!(unpublish_article, "/articles/{id}/unpublish", ArticleCommand::Unpublish);
article_action!(archive_article, "/articles/{id}/archive", ArticleCommand::Archive);
article_action!(restore_article, "/articles/{id}/restore", ArticleCommand::Restore);

/// Erases an article for good (a hard delete, e.g. an erasure request): its row, its snapshots in the
/// catch-up log and its outbox rows are deleted, and its last event has no snapshot, so the relay sends a
/// tombstone (null value, same key): compaction drops the article from the topic and every read model
/// removes it, keeping only the version it was erased at. Answers 202 without `Location`.
#[utoipa::path(delete, path = "/articles/{id}", tag = "articles",
    params(IdPath, VersionHeader, IdempotencyHeader),
    responses((status = 202, body = AcceptedBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn erase_article(
    State(s): State<AppState>,
    Path(id): Path<String>,
    meta: Meta,
) -> Result<Response, CommandError> {
    let id = parse_id(&id)?;
    Ok(render(s.service.erase_article(&meta.context(Vec::new()), id).await?))
}

#[utoipa::path(post, path = "/authors", tag = "authors", request_body = CreateAuthor,
    params(IdempotencyHeader),
    responses((status = 202, body = AcceptedBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_author(
    State(s): State<AppState>,
    meta: Meta,
    cmd: Command<CreateAuthor>,
) -> Result<Response, CommandError> {
    Ok(render(s.service.create_author(&meta.context(cmd.digest), cmd.body).await?))
}

async fn on_author(
    s: &AppState,
    id: &str,
    meta: Meta,
    digest: Vec<u8>,
    command: AuthorCommand,
) -> Result<Response, CommandError> {
    let id = parse_id(id)?;
    Ok(render(s.service.author_command(&meta.context(digest), id, command).await?))
}

#[utoipa::path(post, path = "/authors/{id}/rename", tag = "authors", request_body = RenameAuthor,
    params(IdPath, VersionHeader, IdempotencyHeader),
    responses((status = 202, body = AcceptedBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn rename_author(
    State(s): State<AppState>,
    Path(id): Path<String>,
    meta: Meta,
    cmd: Command<RenameAuthor>,
) -> Result<Response, CommandError> {
    on_author(&s, &id, meta, cmd.digest, AuthorCommand::Rename(cmd.body)).await
}

#[utoipa::path(post, path = "/authors/{id}/bio", tag = "authors", request_body = UpdateAuthorBio,
    params(IdPath, VersionHeader, IdempotencyHeader),
    responses((status = 202, body = AcceptedBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_author_bio(
    State(s): State<AppState>,
    Path(id): Path<String>,
    meta: Meta,
    cmd: Command<UpdateAuthorBio>,
) -> Result<Response, CommandError> {
    on_author(&s, &id, meta, cmd.digest, AuthorCommand::UpdateBio(cmd.body)).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    /// Cursor from a previous page's `next_cursor`; omit (or empty) to start from the beginning.
    #[param(value_type = String, required = false, pattern = r"^([0-9]{1,18}\.[0-9]{1,18})?$")]
    pub after: Option<String>,
    /// Changes per page, default 100.
    #[param(value_type = i64, required = false, minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChangesPage {
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<Change>,
    /// Pass as `after` to get the next page.
    pub next_cursor: String,
}

/// Every change (the full snapshot after each accepted command), page by page, for catch-up readers.
///
/// Order: by `order_txid`, the id of the writing transaction raised to the `order_txid` of the same
/// aggregate's previous change when that one is larger, then by a sequence. Transaction ids are assigned
/// at a transaction's first write, not at its commit, so across aggregates this is **not commit order**:
/// changes of commands that ran at the same time come out in either order. What holds:
/// within one aggregate, versions ascend; a command sent after another one was answered comes after it;
/// a page only holds changes below the oldest transaction still running, so a transaction that commits
/// late is never skipped (its changes come after every cursor handed out before it committed), and a
/// long-running transaction holds the next pages back until it ends. An empty page returns the same cursor.
#[utoipa::path(get, path = "/changes", tag = "changes", params(ChangesQuery),
    responses((status = 200, body = ChangesPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_changes(
    State(s): State<AppState>,
    query: Result<Query<ChangesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ChangesPage>, CommandError> {
    let Query(q) = query.map_err(|e| CommandError::BadRequest(e.body_text()))?;
    let after = match q.after.as_deref() {
        None | Some("") => Cursor::default(),
        Some(c) => {
            Cursor::parse(c).ok_or_else(|| CommandError::BadRequest(format!("`{c}` is not a cursor from /changes")))?
        }
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(CommandError::BadRequest("limit must be between 1 and 1000".into()));
    }
    let client = s.service.connection().await?;
    let page = changes::page(&client, after, limit).await.map_err(crate::service::db_error)?;
    let next_cursor = page.last().map_or(after.to_string(), |c| c.cursor.clone());
    Ok(Json(ChangesPage { changes: page, next_cursor }))
}

/// The snapshot as JSON with its version in `Sluice-Version`.
fn snapshot<T: Serialize>(item: &T, version: i64) -> Response {
    let mut response = Json(item).into_response();
    response.headers_mut().insert("sluice-version", header::HeaderValue::from(version));
    response
}

/// The article as the source of truth holds it now: its snapshot (the fields
/// of its Avro schema) and its version (also in `Sluice-Version`). 404 for an
/// article that does not exist or was erased. For on-demand updates of read
/// models; a read token is enough.
#[utoipa::path(get, path = "/articles/{id}", tag = "articles", params(IdPath),
    responses((status = 200, description = "The article's current snapshot", body = Object),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_article(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, CommandError> {
    let id = parse_id(&id)?;
    let client = s.service.connection().await?;
    let article = crate::store::articles::load(&client, id).await.map_err(crate::service::db_error)?;
    let article = article.ok_or(CommandError::NotFound)?;
    Ok(snapshot(&article, article.version))
}

/// The author as the source of truth holds it now (see `GET /articles/{id}`).
#[utoipa::path(get, path = "/authors/{id}", tag = "authors", params(IdPath),
    responses((status = 200, description = "The author's current snapshot", body = Object),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_author(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, CommandError> {
    let id = parse_id(&id)?;
    let client = s.service.connection().await?;
    let author = crate::store::authors::load(&client, id).await.map_err(crate::service::db_error)?;
    let author = author.ok_or(CommandError::NotFound)?;
    Ok(snapshot(&author, author.version))
}
