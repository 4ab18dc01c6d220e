//! Command handling: one transaction per command holding the aggregate row,
//! its outbox event, its catch-up log row and the idempotency record.

use crate::store::idempotency::{self, Claim, StoredAnswer};
use crate::store::{articles, authors, changes};
use crate::{CommandError, ConsistencyToken};
use chrono::Utc;
use cms_domain::{
    Article, ArticleCommand, ArticleEvent, Author, AuthorCommand, CreateAuthor, DraftArticle, Reason, aggregate,
};
use deadpool_postgres::{GenericClient, Pool, Transaction};
use serde::Serialize;
use serde_json::json;
use sluice_avro::RegistryEncoder;
use sluice_outbox::{OutboxEvent, OutboxTable};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

/// Writer schemas, registered at start.
#[derive(Clone)]
pub struct Encoders {
    pub article: Arc<RegistryEncoder>,
    pub author: Arc<RegistryEncoder>,
}

/// Per-request facts that are not part of the command body.
#[derive(Debug, Clone, Default)]
pub struct CommandContext {
    /// `If-Match`: the version the client last saw.
    pub expected_version: Option<i64>,
    pub idempotency: Option<IdempotencyKey>,
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// What the key is valid for: method and path.
    pub scope: String,
    pub key: String,
    /// Digest of the request body: the same key with another body is refused.
    pub request_hash: Vec<u8>,
}

/// The answer to a command: `202` with `Location` and a JSON body.
pub type Answer = StoredAnswer;

#[derive(Clone)]
pub struct CommandService {
    pool: Pool,
    outbox: OutboxTable,
    /// The outbox INSERT, prepared once per pooled connection.
    outbox_insert: String,
    encoders: Encoders,
    query_base_url: String,
    idempotency_ttl: Duration,
}

/// What a command wrote, to be recorded as its event.
struct Written<'a, T: Serialize> {
    aggregate_type: &'static str,
    snapshot: &'a T,
    id: &'a str,
    version: i64,
    event: &'static str,
}

impl CommandService {
    pub fn new(
        pool: Pool,
        outbox: OutboxTable,
        encoders: Encoders,
        query_base_url: String,
        idempotency_ttl: Duration,
    ) -> Self {
        Self {
            pool,
            outbox_insert: sluice_outbox::insert_sql(&outbox),
            outbox,
            encoders,
            query_base_url: query_base_url.trim_end_matches('/').to_string(),
            idempotency_ttl,
        }
    }

    /// A pooled connection; a database that cannot be reached is "retry later".
    pub async fn connection(&self) -> Result<deadpool_postgres::Object, CommandError> {
        self.pool.get().await.map_err(|e| CommandError::Unavailable(e.to_string()))
    }

    pub async fn draft_article(&self, ctx: &CommandContext, command: DraftArticle) -> Result<Answer, CommandError> {
        let mut client = self.connection().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        if let Some(replay) = self.claim(&tx, ctx).await? {
            return Ok(replay);
        }
        if ctx.expected_version.is_some() {
            return Err(CommandError::BadRequest("If-Match does not apply to creating an article".into()));
        }
        if let Some(author) = command.author_id
            && !authors::exists(&tx, author).await.map_err(db_error)?
        {
            return Err(CommandError::Invalid(vec![Reason::new("author_id", "no such author")]));
        }
        let id = Uuid::now_v7();
        let (article, event) = command.execute(id, Utc::now()).map_err(|r| CommandError::Invalid(r.0))?;
        if !articles::insert(&tx, id, &article).await.map_err(db_error)? {
            return Err(CommandError::Invalid(vec![Reason::new("slug", "is already taken by another article")]));
        }
        self.finish(tx, ctx, article_written(&article, event)).await
    }

    pub async fn article_command(
        &self,
        ctx: &CommandContext,
        id: Uuid,
        command: ArticleCommand,
    ) -> Result<Answer, CommandError> {
        let mut client = self.connection().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        if let Some(replay) = self.claim(&tx, ctx).await? {
            return Ok(replay);
        }
        let current = articles::load_for_update(&tx, id).await.map_err(db_error)?.ok_or(CommandError::NotFound)?;
        check_version(ctx, current.version)?;
        let (next, event) = current.handle(command, Utc::now()).map_err(|r| CommandError::Invalid(r.0))?;
        if next.slug != current.slug && articles::slug_taken(&tx, &next.slug, id).await.map_err(db_error)? {
            return Err(CommandError::Invalid(vec![Reason::new("slug", "is already taken by another article")]));
        }
        if !articles::update(&tx, id, &next).await.map_err(db_error)? {
            return Err(CommandError::Internal("article row changed under its lock".into()));
        }
        self.finish(tx, ctx, article_written(&next, event)).await
    }

    /// Hard-deletes an article (an erasure request): nothing of it stays in
    /// the write model, and its last event, with no snapshot, makes the relay
    /// send a tombstone so that compaction drops it from the topic and every
    /// read model removes it.
    pub async fn erase_article(&self, ctx: &CommandContext, id: Uuid) -> Result<Answer, CommandError> {
        let mut client = self.connection().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        if let Some(replay) = self.claim(&tx, ctx).await? {
            return Ok(replay);
        }
        let current = articles::load_for_update(&tx, id).await.map_err(db_error)?.ok_or(CommandError::NotFound)?;
        check_version(ctx, current.version)?;
        articles::erase(&tx, id, &self.outbox.qualified()).await.map_err(db_error)?;
        let written = Written {
            aggregate_type: aggregate::ARTICLE,
            snapshot: &serde_json::Value::Null,
            id: &current.id,
            version: current.version + 1,
            event: ArticleEvent::Erased.name(),
        };
        self.finish(tx, ctx, written).await
    }

    pub async fn create_author(&self, ctx: &CommandContext, command: CreateAuthor) -> Result<Answer, CommandError> {
        let mut client = self.connection().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        if let Some(replay) = self.claim(&tx, ctx).await? {
            return Ok(replay);
        }
        if ctx.expected_version.is_some() {
            return Err(CommandError::BadRequest("If-Match does not apply to creating an author".into()));
        }
        let id = Uuid::now_v7();
        let (author, event) = command.execute(id, Utc::now()).map_err(|r| CommandError::Invalid(r.0))?;
        authors::insert(&tx, id, &author).await.map_err(db_error)?;
        self.finish(tx, ctx, author_written(&author, event.name())).await
    }

    pub async fn author_command(
        &self,
        ctx: &CommandContext,
        id: Uuid,
        command: AuthorCommand,
    ) -> Result<Answer, CommandError> {
        let mut client = self.connection().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        if let Some(replay) = self.claim(&tx, ctx).await? {
            return Ok(replay);
        }
        let current = authors::load_for_update(&tx, id).await.map_err(db_error)?.ok_or(CommandError::NotFound)?;
        check_version(ctx, current.version)?;
        let (next, event) = current.handle(command, Utc::now()).map_err(|r| CommandError::Invalid(r.0))?;
        if !authors::update(&tx, id, &next).await.map_err(db_error)? {
            return Err(CommandError::Internal("author row changed under its lock".into()));
        }
        self.finish(tx, ctx, author_written(&next, event.name())).await
    }

    /// Publishes scheduled articles whose time has come (at most `limit`),
    /// each in its own transaction. Safe with several workers: rows another
    /// worker holds are skipped. Returns how many were published.
    pub async fn publish_due(&self, limit: i64) -> Result<usize, CommandError> {
        let mut published = 0;
        while published < limit as usize {
            let mut client = self.connection().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let Some(current) = articles::due_for_update(&tx, 1).await.map_err(db_error)?.pop() else {
                break;
            };
            let (next, event) = current
                .handle(ArticleCommand::Publish, Utc::now())
                .map_err(|r| CommandError::Internal(format!("scheduled publish refused: {:?}", r.0)))?;
            let id: Uuid =
                current.id.parse().map_err(|e| CommandError::Internal(format!("article id {}: {e}", current.id)))?;
            articles::update(&tx, id, &next).await.map_err(db_error)?;
            self.finish(tx, &CommandContext::default(), article_written(&next, event)).await?;
            published += 1;
        }
        Ok(published)
    }

    pub async fn purge_expired_keys(&self) -> Result<u64, CommandError> {
        let client = self.connection().await?;
        idempotency::purge_expired(&client, self.idempotency_ttl).await.map_err(db_error)
    }

    async fn claim(&self, tx: &Transaction<'_>, ctx: &CommandContext) -> Result<Option<Answer>, CommandError> {
        let Some(k) = &ctx.idempotency else {
            return Ok(None);
        };
        match idempotency::claim(tx, &k.scope, &k.key, &k.request_hash, self.idempotency_ttl).await.map_err(db_error)? {
            Claim::Claimed => Ok(None),
            Claim::Replay(answer) => Ok(Some(answer)),
            Claim::Mismatch => Err(CommandError::Invalid(vec![Reason::new(
                "Idempotency-Key",
                "was already used with a different request",
            )])),
        }
    }

    /// Outbox event, catch-up row, idempotent answer; then commit.
    async fn finish<T: Serialize>(
        &self,
        tx: Transaction<'_>,
        ctx: &CommandContext,
        w: Written<'_, T>,
    ) -> Result<Answer, CommandError> {
        let snapshot = serde_json::to_value(w.snapshot).map_err(|e| CommandError::Internal(e.to_string()))?;
        let event = if snapshot.is_null() {
            OutboxEvent::erasure(w.aggregate_type, w.id, w.event, w.version)
        } else {
            let encoder =
                if w.aggregate_type == aggregate::ARTICLE { &self.encoders.article } else { &self.encoders.author };
            let payload =
                encoder.encode(w.snapshot).map_err(|e| CommandError::Internal(format!("encode snapshot: {e}")))?;
            OutboxEvent::new(w.aggregate_type, w.id, w.event, w.version, payload)
        }
        .with_traceparent(ctx.traceparent.as_deref());
        let insert = tx.prepare_cached(&self.outbox_insert).await.map_err(db_error)?;
        sluice_outbox::append_with(&*tx, &insert, &self.outbox, &event)
            .await
            .map_err(|e| CommandError::Internal(e.to_string()))?;
        changes::append(&tx, w.aggregate_type, w.id, w.version, w.event, &snapshot).await.map_err(db_error)?;
        let token =
            ConsistencyToken { aggregate_type: w.aggregate_type.into(), aggregate_id: w.id.into(), version: w.version };
        let answer = Answer {
            status: 202,
            // An erased aggregate has no read resource left.
            location: (!snapshot.is_null()).then(|| format!("{}/{}s/{}", self.query_base_url, w.aggregate_type, w.id)),
            body: json!({"status": "accepted", "id": w.id, "version": w.version, "consistency_token": token.encode()}),
        };
        if let Some(k) = &ctx.idempotency {
            idempotency::complete(&tx, &k.scope, &k.key, &answer).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(answer)
    }
}

fn article_written(a: &Article, event: ArticleEvent) -> Written<'_, Article> {
    Written { aggregate_type: aggregate::ARTICLE, snapshot: a, id: &a.id, version: a.version, event: event.name() }
}

fn author_written<'a>(a: &'a Author, event: &'static str) -> Written<'a, Author> {
    Written { aggregate_type: aggregate::AUTHOR, snapshot: a, id: &a.id, version: a.version, event }
}

fn check_version(ctx: &CommandContext, current: i64) -> Result<(), CommandError> {
    match ctx.expected_version {
        Some(expected) if expected != current => Err(CommandError::Conflict { expected, current }),
        _ => Ok(()),
    }
}

pub(crate) fn db_error(e: tokio_postgres::Error) -> CommandError {
    match e.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => {
            CommandError::Invalid(vec![Reason::new("id", "conflicts with an existing record")])
        }
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED => {
            CommandError::Unavailable(e.to_string())
        }
        Some(_) => CommandError::Internal(describe(&e)),
        // No server code: the connection broke (retry later) or the request
        // could not even be encoded (a bug).
        None if e.is_closed() || is_io(&e) => CommandError::Unavailable(describe(&e)),
        None => CommandError::Internal(describe(&e)),
    }
}

/// tokio-postgres' Display says only "db error"; the server's message is in the source.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => format!("{e}: {}", std::error::Error::source(e).map(ToString::to_string).unwrap_or_default()),
    }
}

fn is_io(e: &tokio_postgres::Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}
