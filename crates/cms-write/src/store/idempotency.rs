//! Idempotency keys: the first accepted answer to a command, replayed to retries.

use deadpool_postgres::GenericClient;
use std::time::Duration;

/// A stored first answer.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAnswer {
    pub status: u16,
    pub location: Option<String>,
    pub body: serde_json::Value,
}

#[derive(Debug, PartialEq)]
pub enum Claim {
    /// The key is ours for this transaction: run the command, then `complete`.
    Claimed,
    /// A first answer exists for the same request.
    Replay(StoredAnswer),
    /// The key was used with a different request.
    Mismatch,
}

/// Claims `key` within the caller's transaction. A concurrent request with
/// the same key waits on the primary key until this transaction ends, then
/// sees its answer. Expired keys are reclaimed.
pub async fn claim<C: GenericClient>(
    tx: &C,
    scope: &str,
    key: &str,
    request_hash: &[u8],
    ttl: Duration,
) -> Result<Claim, tokio_postgres::Error> {
    let ttl_secs = ttl.as_secs_f64();
    tx.execute(
        &tx.prepare_cached("delete from idempotency_keys where scope = $1 and key = $2 and created_at < now() - make_interval(secs => $3)").await?,
        &[&scope, &key, &ttl_secs],
    )
    .await?;
    let inserted = tx
        .execute(
            &tx.prepare_cached(
                "insert into idempotency_keys (scope, key, request_hash) values ($1, $2, $3) on conflict do nothing",
            )
            .await?,
            &[&scope, &key, &request_hash],
        )
        .await?;
    if inserted == 1 {
        return Ok(Claim::Claimed);
    }
    let row = tx
        .query_one(
            &tx.prepare_cached(
                "select request_hash, status, location, response from idempotency_keys where scope = $1 and key = $2",
            )
            .await?,
            &[&scope, &key],
        )
        .await?;
    let stored_hash: Vec<u8> = row.try_get("request_hash")?;
    if stored_hash != request_hash {
        return Ok(Claim::Mismatch);
    }
    let status: Option<i32> = row.try_get("status")?;
    Ok(Claim::Replay(StoredAnswer {
        status: status.and_then(|s| u16::try_from(s).ok()).unwrap_or(202),
        location: row.try_get("location")?,
        body: row.try_get::<_, Option<serde_json::Value>>("response")?.unwrap_or_default(),
    }))
}

/// Records the answer of a claimed key, in the command's transaction.
pub async fn complete<C: GenericClient>(
    tx: &C,
    scope: &str,
    key: &str,
    answer: &StoredAnswer,
) -> Result<(), tokio_postgres::Error> {
    let status = i32::from(answer.status);
    tx.execute(
        &tx.prepare_cached(
            "update idempotency_keys set status = $3, location = $4, response = $5 where scope = $1 and key = $2",
        )
        .await?,
        &[&scope, &key, &status, &answer.location, &answer.body],
    )
    .await?;
    Ok(())
}

/// Deletes expired keys; returns how many.
pub async fn purge_expired<C: GenericClient>(client: &C, ttl: Duration) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            &client
                .prepare_cached("delete from idempotency_keys where created_at < now() - make_interval(secs => $1)")
                .await?,
            &[&ttl.as_secs_f64()],
        )
        .await
}
