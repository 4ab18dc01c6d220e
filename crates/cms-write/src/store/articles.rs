use super::{to_micros, to_time};
use chrono::{DateTime, Utc};
use cms_domain::{Article, ArticleStatus};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

const COLUMNS: &str =
    "id, slug, title, body, author_id, status, version, created_at, updated_at, published_at, tags, scheduled_at";

fn from_row(row: &Row) -> Result<Article, tokio_postgres::Error> {
    let status: String = row.try_get("status")?;
    Ok(Article {
        id: row.try_get::<_, Uuid>("id")?.to_string(),
        slug: row.try_get("slug")?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        author_id: row.try_get::<_, Option<Uuid>>("author_id")?.map(|a| a.to_string()),
        status: ArticleStatus::parse(&status).unwrap_or(ArticleStatus::Draft),
        version: row.try_get("version")?,
        created_at: to_micros(row.try_get("created_at")?),
        updated_at: to_micros(row.try_get("updated_at")?),
        published_at: row.try_get::<_, Option<DateTime<Utc>>>("published_at")?.map(to_micros),
        tags: row.try_get("tags")?,
        scheduled_at: row.try_get::<_, Option<DateTime<Utc>>>("scheduled_at")?.map(to_micros),
    })
}

/// The article as it is now (None: never written, or erased).
pub async fn load<C: GenericClient>(client: &C, id: Uuid) -> Result<Option<Article>, tokio_postgres::Error> {
    let sql = format!("select {COLUMNS} from articles where id = $1");
    client.query_opt(&client.prepare_cached(&sql).await?, &[&id]).await?.as_ref().map(from_row).transpose()
}

/// The article, locked for the rest of the transaction.
pub async fn load_for_update<C: GenericClient>(tx: &C, id: Uuid) -> Result<Option<Article>, tokio_postgres::Error> {
    let sql = format!("select {COLUMNS} from articles where id = $1 for update");
    tx.query_opt(&tx.prepare_cached(&sql).await?, &[&id]).await?.as_ref().map(from_row).transpose()
}

/// Scheduled articles whose time has come, locked; rows another worker holds
/// are skipped, so each is published exactly once.
pub async fn due_for_update<C: GenericClient>(tx: &C, limit: i64) -> Result<Vec<Article>, tokio_postgres::Error> {
    let sql = format!(
        "select {COLUMNS} from articles where status = 'SCHEDULED' and scheduled_at <= now()
         order by scheduled_at limit $1 for update skip locked"
    );
    tx.query(&tx.prepare_cached(&sql).await?, &[&limit]).await?.iter().map(from_row).collect()
}

/// Inserts a new article; false when its slug is taken.
pub async fn insert<C: GenericClient>(tx: &C, id: Uuid, a: &Article) -> Result<bool, tokio_postgres::Error> {
    let author: Option<Uuid> = a.author_id.as_deref().and_then(|s| s.parse().ok());
    let sql = format!(
        "insert into articles ({COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         on conflict (slug) do nothing"
    );
    let n = tx
        .execute(
            &tx.prepare_cached(&sql).await?,
            &[
                &id,
                &a.slug,
                &a.title,
                &a.body,
                &author,
                &a.status.as_str(),
                &a.version,
                &to_time(a.created_at),
                &to_time(a.updated_at),
                &a.published_at.map(to_time),
                &a.tags,
                &a.scheduled_at.map(to_time),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Writes the next version; the `version = previous` guard makes a lost update impossible.
pub async fn update<C: GenericClient>(tx: &C, id: Uuid, a: &Article) -> Result<bool, tokio_postgres::Error> {
    let n = tx
        .execute(
            &tx.prepare_cached(
                "update articles set slug = $2, title = $3, body = $4, status = $5, version = $6, updated_at = $7,
                    published_at = $8, tags = $9, scheduled_at = $10
             where id = $1 and version = $6::bigint - 1",
            )
            .await?,
            &[
                &id,
                &a.slug,
                &a.title,
                &a.body,
                &a.status.as_str(),
                &a.version,
                &to_time(a.updated_at),
                &a.published_at.map(to_time),
                &a.tags,
                &a.scheduled_at.map(to_time),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Whether another article already uses `slug`.
pub async fn slug_taken<C: GenericClient>(tx: &C, slug: &str, except: Uuid) -> Result<bool, tokio_postgres::Error> {
    Ok(tx
        .query_opt(&tx.prepare_cached("select 1 from articles where slug = $1 and id <> $2").await?, &[&slug, &except])
        .await?
        .is_some())
}

/// Whether the article exists (a foreign key check for commands that name one).
pub async fn exists<C: GenericClient>(tx: &C, id: Uuid) -> Result<bool, tokio_postgres::Error> {
    Ok(tx.query_opt(&tx.prepare_cached("select 1 from articles where id = $1").await?, &[&id]).await?.is_some())
}

/// Erases the article: its row, and its copies in the catch-up log and in
/// the outbox (rows the relay has not deleted yet, kept for a retention, or
/// dead-lettered). What the relay still has to read of them is in the WAL,
/// ahead of the erasure's own event, so the topic still ends with it.
pub async fn erase<C: GenericClient>(tx: &C, id: Uuid, outbox: &str) -> Result<(), tokio_postgres::Error> {
    let key = id.to_string();
    tx.execute(&tx.prepare_cached("delete from articles where id = $1").await?, &[&id]).await?;
    tx.execute(
        &tx.prepare_cached("delete from changes where aggregate_type = 'article' and aggregate_id = $1").await?,
        &[&key],
    )
    .await?;
    let sql = format!("delete from {outbox} where aggregatetype = 'article' and aggregateid = $1");
    tx.execute(&tx.prepare_cached(&sql).await?, &[&key]).await?;
    Ok(())
}
