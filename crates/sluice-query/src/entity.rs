//! One aggregate: an article (its snapshot, its page, by slug) or an author
//! (its snapshot, its page with article counts), as fresh as asked.

use crate::QueryState;
use crate::answer::{Freshness, Meta, Problem, problem, respond};
use crate::consistency::{self, Consistency};
use crate::lag::Lag;
use crate::model::{Held, Source, Unavailable};
use crate::refresh::{self, Outcome};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_core::ConsistencyToken;
use std::time::Instant;

/// The query parameters every read takes.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReadParams {
    pub consistency: Option<String>,
}

/// The consistency asked for, or the 400 that says what is wrong.
pub fn asked(headers: &HeaderMap, parameter: Option<&str>) -> Result<Consistency, Problem> {
    if headers.get_all(consistency::HEADER).iter().count() > 1 {
        return Err(problem(StatusCode::BAD_REQUEST, "Sluice-Consistency header: give it once"));
    }
    let header = match headers.get(consistency::HEADER).map(|v| v.to_str()) {
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return Err(problem(StatusCode::BAD_REQUEST, "Sluice-Consistency header: not ASCII")),
        None => None,
    };
    consistency::from_request(header, parameter).map_err(|e| {
        let status = if e.unprocessable { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::BAD_REQUEST };
        problem(status, &e.message)
    })
}

/// What a read of one aggregate found, and how fresh it is.
pub struct One {
    pub found: Option<(Value, i64)>,
    pub extra: Option<Value>,
    pub meta: Meta,
}

pub fn unavailable(u: Unavailable) -> Problem {
    match u {
        Unavailable::NotBuilt => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the read model is not built yet (or is being rebuilt), retry later",
        ),
        Unavailable::Down(_) => problem(StatusCode::SERVICE_UNAVAILABLE, "no read model answers, retry later"),
    }
}

fn check_id(what: &str, id: &str) -> Result<(), Problem> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| problem(StatusCode::BAD_REQUEST, &format!("{what} id must be a UUID")))
}

/// Reads `aggregate_type` `id` as fresh as `asked`.
pub async fn read_one(q: &QueryState, aggregate_type: &str, id: &str, asked: &Consistency) -> Result<One, Problem> {
    let topic = q.topic(aggregate_type);
    let partition = q.lag.partition_of(&topic, id);
    let (held, store) = q.models.held(aggregate_type, id, &topic, partition, None).await.map_err(unavailable)?;
    let lag = partition.and_then(|p| q.lag.lag(&topic, p, held.applied.as_ref()));
    let version = held.version();
    match asked {
        Consistency::Eventual => Ok(projected(held, lag, store, Freshness::Projected)),
        Consistency::Bounded { max_staleness } => {
            if lag.is_some_and(|l| u128::try_from(l.millis).unwrap_or(0) <= max_staleness.as_millis()) {
                Ok(projected(held, lag, store, Freshness::Projected))
            } else {
                Ok(refreshed(q, aggregate_type, id, None, held, lag, store).await)
            }
        }
        Consistency::AtLeast(token) if token.aggregate_type == aggregate_type && token.aggregate_id == id => {
            if version.is_some_and(|v| v >= token.version) {
                Ok(projected(held, lag, store, Freshness::Projected))
            } else {
                Ok(refreshed(q, aggregate_type, id, Some(token.version), held, lag, store).await)
            }
        }
        Consistency::AtLeast(token) => {
            let reached = wait_for(q, token, None).await;
            let (held, store) =
                q.models.held(aggregate_type, id, &topic, partition, None).await.map_err(unavailable)?;
            let lag = partition.and_then(|p| q.lag.lag(&topic, p, held.applied.as_ref()));
            let freshness = if reached { Freshness::Projected } else { Freshness::Stale };
            Ok(projected(held, lag, store, freshness))
        }
    }
}

fn projected(held: Held, lag: Option<Lag>, store: Source, freshness: Freshness) -> One {
    let meta = Meta { version: held.found.as_ref().map(|(_, v)| *v), lag, freshness, store };
    One { found: held.found, extra: held.extra, meta }
}

/// Fetches from the source of truth (at least `min_version`, when given);
/// the read model's data marked stale when the source cannot be asked.
async fn refreshed(
    q: &QueryState,
    aggregate_type: &str,
    id: &str,
    min_version: Option<i64>,
    held: Held,
    lag: Option<Lag>,
    store: Source,
) -> One {
    let mut outcome = refresh::refresh(q, store, aggregate_type, id).await;
    // A refresh joined may have started before the write the token is for.
    if let (Outcome::Fetched { version, .. }, Some(min)) = (&outcome, min_version)
        && *version < min
    {
        outcome = refresh::refresh(q, store, aggregate_type, id).await;
    }
    let refreshed = |found, extra, version| One {
        found,
        extra,
        meta: Meta { version, lag, freshness: Freshness::Refreshed, store },
    };
    match outcome {
        // The source of truth is behind the token (it served an older
        // read): nothing this read can do.
        Outcome::Fetched { version, .. } if min_version.is_some_and(|min| version < min) => {
            projected(held, lag, store, Freshness::Stale)
        }
        Outcome::Fetched { doc, version, .. } => {
            // What the read model holds now: the refresh, or something newer
            // the projector applied meanwhile, with the views (the author's
            // name) that go with it.
            let topic = q.topic(aggregate_type);
            let now = q.models.held(aggregate_type, id, &topic, None, Some(store)).await;
            match now {
                Ok((now, _)) if now.version().is_some_and(|v| v >= version) => {
                    let v = now.version();
                    refreshed(now.found, now.extra, v)
                }
                _ => refreshed(Some((doc, version)), None, Some(version)),
            }
        }
        Outcome::Gone => refreshed(None, None, None),
        Outcome::Failed => projected(held, lag, store, Freshness::Stale),
    }
}

/// Waits until the read model (`only` that one, when given) holds the
/// token's aggregate at its version (or its erasure at it or later), up to
/// the configured deadline.
pub async fn wait_for(q: &QueryState, token: &ConsistencyToken, only: Option<Source>) -> bool {
    let topic = q.topic(&token.aggregate_type);
    let started = Instant::now();
    loop {
        let held = q.models.held(&token.aggregate_type, &token.aggregate_id, &topic, None, only).await;
        if let Ok((held, _)) = held
            && held.version().is_some_and(|v| v >= token.version)
        {
            return true;
        }
        if started.elapsed() >= q.wait_deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Renders `one` (404 when nothing was found) and counts it.
fn render(
    q: &QueryState,
    route: &str,
    asked: &Consistency,
    one: One,
    body: impl FnOnce(Value, Option<Value>) -> Value,
) -> Response {
    let meta = one.meta;
    q.metrics.reads.with_label_values(&[route, asked.mode(), meta.freshness.as_str(), meta.store.name()]).inc();
    if let Some(lag) = meta.lag {
        q.metrics.staleness_seconds.observe(lag.millis as f64 / 1000.0);
    }
    match one.found {
        Some((doc, _)) => respond(StatusCode::OK, body(doc, one.extra), &meta),
        None => respond(StatusCode::NOT_FOUND, json!({"error": "not found"}), &meta),
    }
}

type Params = Result<Query<ReadParams>, axum::extract::rejection::QueryRejection>;

fn params(p: Params) -> Result<ReadParams, Problem> {
    p.map(|Query(p)| p).map_err(|e| problem(StatusCode::BAD_REQUEST, &e.body_text()))
}

async fn one(
    q: QueryState,
    route: &str,
    aggregate_type: &str,
    id: &str,
    headers: &HeaderMap,
    p: Params,
    body: impl FnOnce(Value, Option<Value>) -> Value,
) -> Response {
    let result = async {
        check_id(aggregate_type, id)?;
        let asked = asked(headers, params(p)?.consistency.as_deref())?;
        let one = read_one(&q, aggregate_type, id, &asked).await?;
        Ok::<_, Problem>(render(&q, route, &asked, one, body))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

#[utoipa::path(get, path = "/articles/{id}", tag = "reads",
    params(("id" = String, Path, description = "the article's id (a UUID)"),
           ("Sluice-Consistency" = Option<String>, Header, description = "eventual (default), `bounded; max-staleness-ms=N` or `at-least; token=T`"),
           ("consistency" = Option<String>, Query, description = "the same as the header")),
    responses((status = 200, description = "The article's snapshot", body = Object, headers(("Sluice-Version" = i64), ("Sluice-Lag-Messages" = i64), ("Sluice-Lag-Ms" = i64), ("Sluice-Freshness" = String), ("Sluice-Read-Model" = String))),
              (status = 400, description = "A parameter is malformed", body = Object),
              (status = 404, description = "Not in the read model (or, refreshed, not in the source of truth)", body = Object),
              (status = 503, description = "No read model answers", body = Object)),
    security((), ("bearer" = [])))]
pub async fn article(State(q): State<QueryState>, Path(id): Path<String>, headers: HeaderMap, p: Params) -> Response {
    one(q, "article", "article", &id, &headers, p, |doc, _| doc).await
}

/// The article as a page shows it: its snapshot and its author's name.
#[utoipa::path(get, path = "/articles/{id}/page", tag = "reads",
    params(("id" = String, Path, description = "the article's id (a UUID)"),
           ("Sluice-Consistency" = Option<String>, Header, description = "eventual (default), `bounded; max-staleness-ms=N` or `at-least; token=T`"),
           ("consistency" = Option<String>, Query, description = "the same as the header")),
    responses((status = 200, description = "`{article, author_name}`", body = Object, headers(("Sluice-Version" = i64), ("Sluice-Lag-Messages" = i64), ("Sluice-Lag-Ms" = i64), ("Sluice-Freshness" = String), ("Sluice-Read-Model" = String))),
              (status = 400, description = "A parameter is malformed", body = Object),
              (status = 404, description = "Not in the read model (or, refreshed, not in the source of truth)", body = Object),
              (status = 503, description = "No read model answers", body = Object)),
    security((), ("bearer" = [])))]
pub async fn article_page(
    State(q): State<QueryState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    p: Params,
) -> Response {
    one(q, "article_page", "article", &id, &headers, p, |doc, name| json!({"article": doc, "author_name": name})).await
}

#[utoipa::path(get, path = "/authors/{id}", tag = "reads",
    params(("id" = String, Path, description = "the author's id (a UUID)"),
           ("Sluice-Consistency" = Option<String>, Header, description = "eventual (default), `bounded; max-staleness-ms=N` or `at-least; token=T`"),
           ("consistency" = Option<String>, Query, description = "the same as the header")),
    responses((status = 200, description = "`{author, article_counts}`: the author page", body = Object, headers(("Sluice-Version" = i64), ("Sluice-Lag-Messages" = i64), ("Sluice-Lag-Ms" = i64), ("Sluice-Freshness" = String), ("Sluice-Read-Model" = String))),
              (status = 400, description = "A parameter is malformed", body = Object),
              (status = 404, description = "Not in the read model (or, refreshed, not in the source of truth)", body = Object),
              (status = 503, description = "No read model answers", body = Object)),
    security((), ("bearer" = [])))]
pub async fn author(State(q): State<QueryState>, Path(id): Path<String>, headers: HeaderMap, p: Params) -> Response {
    one(
        q,
        "author",
        "author",
        &id,
        &headers,
        p,
        |doc, counts| json!({"author": doc, "article_counts": counts.unwrap_or_else(|| json!({}))}),
    )
    .await
}

/// The article whose current slug is `slug` (its page).
#[utoipa::path(get, path = "/articles/by-slug/{slug}", tag = "reads",
    params(("slug" = String, Path, description = "the article's slug"),
           ("Sluice-Consistency" = Option<String>, Header, description = "eventual (default), `bounded; max-staleness-ms=N` or `at-least; token=T`"),
           ("consistency" = Option<String>, Query, description = "the same as the header")),
    responses((status = 200, description = "`{article, author_name}`", body = Object, headers(("Sluice-Version" = i64), ("Sluice-Lag-Messages" = i64), ("Sluice-Lag-Ms" = i64), ("Sluice-Freshness" = String), ("Sluice-Read-Model" = String))),
              (status = 400, description = "A parameter is malformed", body = Object),
              (status = 404, description = "Not in the read model (or, refreshed, not in the source of truth)", body = Object),
              (status = 503, description = "No read model answers", body = Object)),
    security((), ("bearer" = [])))]
pub async fn article_by_slug(
    State(q): State<QueryState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    p: Params,
) -> Response {
    let result = async {
        let asked = asked(&headers, params(p)?.consistency.as_deref())?;
        // The token's article first (refreshed if need be): its slug may be
        // the one asked for, and not in the read model yet.
        if let Consistency::AtLeast(token) = &asked
            && token.aggregate_type == "article"
        {
            read_one(&q, "article", &token.aggregate_id, &asked).await?;
        }
        let ids = q.models.article_ids_by_slug(&slug).await.map_err(|e| unavailable(Unavailable::Down(e)))?;
        // Usually one; while a slug moves between two articles, the one
        // whose snapshot has it now.
        for id in ids {
            let one = read_one(&q, "article", &id, &asked).await?;
            if one.found.as_ref().is_some_and(|(doc, _)| doc["slug"] == slug.as_str()) {
                return Ok::<_, Problem>(render(
                    &q,
                    "article_by_slug",
                    &asked,
                    one,
                    |doc, name| json!({"article": doc, "author_name": name}),
                ));
            }
        }
        let lag = crate::lists::list_lag(&q).await;
        let freshness = match &asked {
            Consistency::Bounded { max_staleness }
                if lag.is_none_or(|l| u128::try_from(l.millis).unwrap_or(0) > max_staleness.as_millis()) =>
            {
                Freshness::Stale
            }
            _ => Freshness::Projected,
        };
        let store =
            if q.models.redis.as_ref().is_some_and(|r| !r.resting()) { Source::Redis } else { Source::Postgres };
        let meta = Meta { version: None, lag, freshness, store };
        Ok(respond(StatusCode::NOT_FOUND, json!({"error": format!("no article has the slug `{slug}`")}), &meta))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}
