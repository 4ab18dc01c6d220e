//! Stores aggregates and their outbox events in one transaction.

use crate::CommandError;
use chrono::{DateTime, Utc};
use cms_domain::{Article, ArticleEvent, Reason, aggregate};
use deadpool_postgres::Pool;
use sluice_avro::RegistryEncoder;
use sluice_outbox::{OutboxEvent, OutboxTable};
use std::sync::Arc;
use tokio_postgres::error::SqlState;

#[derive(Clone)]
pub struct Repository {
    pool: Pool,
    outbox: OutboxTable,
    article_encoder: Arc<RegistryEncoder>,
}

impl Repository {
    pub fn new(pool: Pool, outbox: OutboxTable, article_encoder: Arc<RegistryEncoder>) -> Self {
        Self {
            pool,
            outbox,
            article_encoder,
        }
    }

    /// Inserts a new article and its event; a taken slug is a validation error.
    pub async fn insert_article(
        &self,
        article: &Article,
        event: ArticleEvent,
        traceparent: Option<&str>,
    ) -> Result<(), CommandError> {
        let payload = self
            .article_encoder
            .encode(article)
            .map_err(|e| CommandError::Internal(format!("encode article snapshot: {e}")))?;
        let outbox_event = OutboxEvent::new(
            aggregate::ARTICLE,
            &article.id,
            event.name(),
            article.version,
            payload,
        )
        .with_traceparent(traceparent);
        let id: uuid::Uuid = article
            .id
            .parse()
            .map_err(|e| CommandError::Internal(format!("article id: {e}")))?;
        let author: Option<uuid::Uuid> = match &article.author_id {
            Some(a) => Some(
                a.parse()
                    .map_err(|e| CommandError::Internal(format!("author id: {e}")))?,
            ),
            None => None,
        };
        let mut client = self
            .pool
            .get()
            .await
            .map_err(|e| CommandError::Unavailable(e.to_string()))?;
        let tx = client.transaction().await.map_err(db_error)?;
        let inserted = tx
            .execute(
                "insert into articles (id, slug, title, body, author_id, status, version, created_at, updated_at, published_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 on conflict (slug) do nothing",
                &[
                    &id,
                    &article.slug,
                    &article.title,
                    &article.body,
                    &author,
                    &article.status.as_str(),
                    &article.version,
                    &micros_to_time(article.created_at),
                    &micros_to_time(article.updated_at),
                    &article.published_at.map(micros_to_time),
                ],
            )
            .await
            .map_err(db_error)?;
        if inserted == 0 {
            return Err(CommandError::Invalid(vec![Reason::new(
                "slug",
                "is already taken by another article",
            )]));
        }
        sluice_outbox::append(&*tx, &self.outbox, &outbox_event)
            .await
            .map_err(|e| CommandError::Internal(e.to_string()))?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }
}

fn micros_to_time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn db_error(e: tokio_postgres::Error) -> CommandError {
    match e.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => {
            CommandError::Invalid(vec![Reason::new("id", "already exists")])
        }
        Some(_) => CommandError::Internal(e.to_string()),
        None => CommandError::Unavailable(e.to_string()),
    }
}
