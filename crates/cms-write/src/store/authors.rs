use super::{to_micros, to_time};
use cms_domain::Author;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

fn from_row(row: &Row) -> Result<Author, tokio_postgres::Error> {
    Ok(Author {
        id: row.try_get::<_, Uuid>("id")?.to_string(),
        name: row.try_get("name")?,
        bio: row.try_get("bio")?,
        version: row.try_get("version")?,
        created_at: to_micros(row.try_get("created_at")?),
        updated_at: to_micros(row.try_get("updated_at")?),
    })
}

const SELECT: &str = "select id, name, bio, version, created_at, updated_at from authors where id = $1";

/// The author as it is now.
pub async fn load<C: GenericClient>(client: &C, id: Uuid) -> Result<Option<Author>, tokio_postgres::Error> {
    client.query_opt(&client.prepare_cached(SELECT).await?, &[&id]).await?.as_ref().map(from_row).transpose()
}

pub async fn load_for_update<C: GenericClient>(tx: &C, id: Uuid) -> Result<Option<Author>, tokio_postgres::Error> {
    tx.query_opt(&tx.prepare_cached(&format!("{SELECT} for update")).await?, &[&id])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub async fn insert<C: GenericClient>(tx: &C, id: Uuid, a: &Author) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        &tx.prepare_cached(
            "insert into authors (id, name, bio, version, created_at, updated_at) values ($1, $2, $3, $4, $5, $6)",
        )
        .await?,
        &[&id, &a.name, &a.bio, &a.version, &to_time(a.created_at), &to_time(a.updated_at)],
    )
    .await?;
    Ok(())
}

pub async fn update<C: GenericClient>(tx: &C, id: Uuid, a: &Author) -> Result<bool, tokio_postgres::Error> {
    let n = tx
        .execute(
            &tx.prepare_cached("update authors set name = $2, bio = $3, version = $4, updated_at = $5 where id = $1 and version = $4::bigint - 1").await?,
            &[&id, &a.name, &a.bio, &a.version, &to_time(a.updated_at)],
        )
        .await?;
    Ok(n == 1)
}

pub async fn exists<C: GenericClient>(tx: &C, id: Uuid) -> Result<bool, tokio_postgres::Error> {
    Ok(tx.query_opt(&tx.prepare_cached("select 1 from authors where id = $1").await?, &[&id]).await?.is_some())
}
