//! Lists of published articles (all, by tag, by author; newest first, with a
//! cursor) and full-text search. A list cannot be fetched from the source of
//! truth: a bounded or at-least read waits, up to the configured deadline,
//! for the read model to get there, and answers `stale` if it does not.

use crate::QueryState;
use crate::answer::{Freshness, Meta, Problem, problem, respond};
use crate::consistency::Consistency;
use crate::entity::{asked, unavailable, wait_for};
use crate::lag::Lag;
use crate::model::{Source, Unavailable};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_store_redis::reads::{Cursor, Published};
use std::time::Instant;

const DEFAULT_LIMIT: usize = 20;
pub(crate) const MAX_LIMIT: usize = 100;
pub(crate) const MAX_QUERY_LEN: usize = 200;
/// A `next_cursor`: `<published_at>.<article id>` (what `cursor` accepts).
pub(crate) const CURSOR_PATTERN: &str =
    r"^-?[0-9]{1,18}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/// Exactly the cursors [`CURSOR_PATTERN`] matches.
fn cursor(value: &str) -> Option<Cursor> {
    let (at, id) = value.split_once('.')?;
    let digits = at.strip_prefix('-').unwrap_or(at);
    let well_formed = (1..=18).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && sluice_core::text::is_hyphenated_uuid(id);
    well_formed.then(|| Cursor::decode(value)).flatten()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    consistency: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    consistency: Option<String>,
    limit: Option<usize>,
    q: Option<String>,
}

type Rejection = axum::extract::rejection::QueryRejection;

fn bad(message: &str) -> Problem {
    problem(StatusCode::BAD_REQUEST, message)
}

fn limit(limit: Option<usize>) -> Result<usize, Problem> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err(bad(&format!("limit must be between 1 and {MAX_LIMIT}"))),
    }
}

/// One listed article as answered.
fn item(doc: Value, author_name: Option<String>) -> Value {
    json!({"article": doc, "author_name": author_name})
}

/// Waits for what `asked` needs of a list (in `only` that read model, when
/// given); whether it got there.
async fn settle(q: &QueryState, asked: &Consistency, only: Option<Source>) -> bool {
    match asked {
        Consistency::Eventual => true,
        Consistency::AtLeast(token) => wait_for(q, token, only).await,
        Consistency::Bounded { max_staleness } => {
            let topic = q.topic("article");
            let started = Instant::now();
            loop {
                if let Ok(positions) = q.models.positions(&topic, only).await
                    && let Some(lag) = q.lag.topic_lag(&topic, &positions)
                    && u128::try_from(lag.millis).unwrap_or(0) <= max_staleness.as_millis()
                {
                    return true;
                }
                if started.elapsed() >= q.wait_deadline {
                    return false;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}

/// The worst lag of the article topic's partitions in the read model.
pub async fn list_lag(q: &QueryState) -> Option<Lag> {
    let topic = q.topic("article");
    let positions = q.models.positions(&topic, None).await.ok()?;
    q.lag.topic_lag(&topic, &positions)
}

fn answer(
    q: &QueryState,
    route: &str,
    asked: &Consistency,
    reached: bool,
    lag: Option<Lag>,
    store: Source,
    body: Value,
) -> Response {
    let freshness = if reached { Freshness::Projected } else { Freshness::Stale };
    q.metrics.reads.with_label_values(&[route, asked.mode(), freshness.as_str(), store.name()]).inc();
    if let Some(lag) = lag {
        q.metrics.staleness_seconds.observe(lag.millis as f64 / 1000.0);
    }
    respond(StatusCode::OK, body, &Meta { version: None, lag, freshness, store })
}

async fn list(
    q: QueryState,
    route: &str,
    which: Published,
    headers: HeaderMap,
    p: Result<Query<ListParams>, Rejection>,
) -> Response {
    let result = async {
        let Query(p) = p.map_err(|e| bad(&e.body_text()))?;
        let asked = asked(&headers, p.consistency.as_deref())?;
        let limit = limit(p.limit)?;
        let cursor = match p.cursor.as_deref() {
            Some(c) => Some(cursor(c).ok_or_else(|| bad("cursor: not a cursor this API answered"))?),
            None => None,
        };
        let reached = settle(&q, &asked, None).await;
        let lag = list_lag(&q).await;
        let (items, store) = fetch(&q, &which, cursor.as_ref(), limit).await?;
        let next = (items.len() == limit).then(|| items.last().map(|(c, _)| c.encode())).flatten();
        let items: Vec<Value> = items.into_iter().map(|(_, v)| v).collect();
        Ok::<_, Problem>(answer(&q, route, &asked, reached, lag, store, json!({"items": items, "next_cursor": next})))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// A page from Redis, or from PostgreSQL when Redis cannot answer.
async fn fetch(
    q: &QueryState,
    which: &Published,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<(Vec<(Cursor, Value)>, Source), Problem> {
    if let Some(redis) = q.models.redis.as_ref().filter(|r| !r.resting()) {
        let mut conn = redis.conn.clone();
        match sluice_store_redis::reads::published(&mut conn, &redis.alias, which, after, limit).await {
            Ok(Some(listed)) => {
                let mut items = Vec::new();
                for l in listed {
                    let doc: Value = serde_json::from_str(&l.doc).unwrap_or(Value::Null);
                    items.push((Cursor { published_at: l.published_at, id: l.id }, item(doc, l.author_name)));
                }
                return Ok((items, Source::Redis));
            }
            Ok(None) => redis.failed(&anyhow::anyhow!("the Redis read model is not built")),
            Err(e) => redis.failed(&e),
        }
    }
    let Some(pg) = &q.models.postgres else { return Err(unavailable(Unavailable::NotBuilt)) };
    let (tag, author) = match which {
        Published::All => (None, None),
        Published::Tag(t) => (Some(t.as_str()), None),
        Published::Author(a) => (None, Some(a.as_str())),
    };
    let rows = pg
        .reads
        .published(tag, author, after.map(|c| (c.published_at, c.id.as_str())), limit as i64)
        .await
        .map_err(|e| unavailable(Unavailable::Down(e)))?;
    let items = rows
        .into_iter()
        .map(|r| (Cursor { published_at: r.published_at.unwrap_or(0), id: r.id }, item(r.doc, r.author_name)))
        .collect();
    Ok((items, Source::Postgres))
}

#[utoipa::path(get, path = "/articles", tag = "reads",
    params(("limit" = Option<usize>, Query, description = "1 to 100, default 20"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
           ("Sluice-Consistency" = Option<String>, Header, description = "eventual (default), `bounded; max-staleness-ms=N` (waits up to the deadline) or `at-least; token=T` (waits for the token's aggregate)"),
           ("consistency" = Option<String>, Query, description = "the same as the header")),
    responses((status = 200, description = "`{items: [{article, author_name}], next_cursor}`: published articles, newest first", body = Object, headers(("Sluice-Lag-Messages" = i64), ("Sluice-Lag-Ms" = i64), ("Sluice-Freshness" = String), ("Sluice-Read-Model" = String))),
              (status = 400, description = "A parameter is malformed", body = Object),
              (status = 503, description = "No read model answers", body = Object)),
    security((), ("bearer" = [])))]
pub async fn published(
    State(q): State<QueryState>,
    headers: HeaderMap,
    p: Result<Query<ListParams>, Rejection>,
) -> Response {
    list(q, "published", Published::All, headers, p).await
}

#[utoipa::path(get, path = "/tags/{tag}/articles", tag = "reads",
    params(("tag" = String, Path, description = "the tag"),
           ("limit" = Option<usize>, Query, description = "1 to 100, default 20"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
           ("Sluice-Consistency" = Option<String>, Header, description = "eventual (default), `bounded; max-staleness-ms=N` (waits up to the deadline) or `at-least; token=T` (waits for the token's aggregate)"),
           ("consistency" = Option<String>, Query, description = "the same as the header")),
    responses((status = 200, description = "Published articles with the tag, newest first", body = Object, headers(("Sluice-Lag-Messages" = i64), ("Sluice-Lag-Ms" = i64), ("Sluice-Freshness" = String), ("Sluice-Read-Model" = String))),
              (status = 400, description = "A parameter is malformed", body = Object),
              (status = 503, description = "No read model answers", body = Object)),
    security((), ("bearer" = [])))]
pub async fn by_tag(
    State(q): State<QueryState>,
    Path(tag): Path<String>,
    headers: HeaderMap,
    p: Result<Query<ListParams>, Rejection>,
) -> Response {
    list(q, "published_by_tag", Published::Tag(tag), headers, p).await
}

#[utoipa::path(get, path = "/authors/{id}/articles", tag = "reads",
    params(("id" = String, Path, description = "the author's id (a UUID)"),
           ("limit" = Option<usize>, Query, description = "1 to 100, default 20"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
           ("Sluice-Consistency" = Option<String>, Header, description = "eventual (default), `bounded; max-staleness-ms=N` (waits up to the deadline) or `at-least; token=T` (waits for the token's aggregate)"),
           ("consistency" = Option<String>, Query, description = "the same as the header")),
    responses((status = 200, description = "The author's published articles, newest first", body = Object, headers(("Sluice-Lag-Messages" = i64), ("Sluice-Lag-Ms" = i64), ("Sluice-Freshness" = String), ("Sluice-Read-Model" = String))),
              (status = 400, description = "A parameter is malformed", body = Object),
              (status = 503, description = "No read model answers", body = Object)),
    security((), ("bearer" = [])))]
pub async fn by_author(
    State(q): State<QueryState>,
    Path(author): Path<String>,
    headers: HeaderMap,
    p: Result<Query<ListParams>, Rejection>,
) -> Response {
    if uuid::Uuid::parse_str(&author).is_err() {
        return bad("author id must be a UUID").into_response();
    }
    list(q, "published_by_author", Published::Author(author), headers, p).await
}

/// Full-text search over published articles (PostgreSQL read model).
#[utoipa::path(get, path = "/articles/search", tag = "reads",
    params(("limit" = Option<usize>, Query, description = "1 to 100, default 20"),
           ("q" = String, Query, description = "the words to search for (web search syntax)"),
           ("Sluice-Consistency" = Option<String>, Header, description = "eventual (default), `bounded; max-staleness-ms=N` (waits up to the deadline) or `at-least; token=T` (waits for the token's aggregate)"),
           ("consistency" = Option<String>, Query, description = "the same as the header")),
    responses((status = 200, description = "`{items: [{article, author_name}]}`, best match first", body = Object, headers(("Sluice-Lag-Messages" = i64), ("Sluice-Lag-Ms" = i64), ("Sluice-Freshness" = String), ("Sluice-Read-Model" = String))),
              (status = 400, description = "A parameter is malformed", body = Object),
              (status = 503, description = "No read model answers", body = Object)),
    security((), ("bearer" = [])))]
pub async fn search(
    State(q): State<QueryState>,
    headers: HeaderMap,
    p: Result<Query<SearchParams>, Rejection>,
) -> Response {
    let result = async {
        let Query(p) = p.map_err(|e| bad(&e.body_text()))?;
        let asked = asked(&headers, p.consistency.as_deref())?;
        let limit = limit(p.limit)?;
        let raw = p.q.as_deref().unwrap_or_default();
        let text = raw.trim_matches(sluice_core::text::is_pattern_space);
        if raw.contains('\0') {
            return Err(bad("q: must not contain the NUL character"));
        }
        if sluice_core::text::is_blank(raw) || raw.chars().count() > MAX_QUERY_LEN {
            return Err(bad(&format!("q: give the words to search for (1 to {MAX_QUERY_LEN} characters)")));
        }
        let Some(pg) = &q.models.postgres else {
            return Err(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "search needs the PostgreSQL read model (SLUICE_POSTGRES_URL is not set)",
            ));
        };
        let reached = settle(&q, &asked, Some(Source::Postgres)).await;
        let topic = q.topic("article");
        let lag = match pg.reads.positions(&topic).await {
            Ok(positions) => q.lag.topic_lag(&topic, &positions),
            _ => None,
        };
        let rows = pg.reads.search(text, limit as i64).await.map_err(|e| unavailable(Unavailable::Down(e)))?;
        let items: Vec<Value> = rows.into_iter().map(|r| item(r.doc, r.author_name)).collect();
        Ok(answer(&q, "search", &asked, reached, lag, Source::Postgres, json!({"items": items})))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}
