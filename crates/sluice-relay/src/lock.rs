//! The relay lock: a session advisory lock per slot, held by the active relay
//! for as long as it plans, snapshots and streams. PostgreSQL releases a new
//! slot right after creating it, so the slot alone does not keep a second
//! relay from judging it incomplete and dropping it mid-snapshot; the lock
//! does. It dies with the session, so a relay that crashes lets a standby in.

use anyhow::Context;
use std::time::Duration;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

fn key(slot: &str) -> String {
    format!("sluice-relay/{slot}")
}

/// Takes the lock if free; true when this session now holds it.
pub(crate) async fn try_acquire(client: &Client, slot: &str) -> anyhow::Result<bool> {
    Ok(client
        .query_one("select pg_try_advisory_lock(hashtextextended($1, 0))", &[&key(slot)])
        .await
        .context("take the relay lock")?
        .get(0))
}

/// How [`acquire`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// The lock was free.
    AtOnce,
    /// Another relay held it; this one waited as a standby and took over.
    TookOver,
    /// Shut down while waiting.
    ShutDown,
}

/// Waits (as a standby) until this session holds the lock, or shutdown.
pub(crate) async fn acquire(client: &Client, slot: &str, shutdown: &CancellationToken) -> anyhow::Result<Acquired> {
    // The server must notice soon when this relay's host or network goes
    // away (the default is hours of TCP silence): until it does, it keeps
    // the lock and no standby can take over.
    client
        .batch_execute("set tcp_keepalives_idle = 10; set tcp_keepalives_interval = 5; set tcp_keepalives_count = 3")
        .await
        .context("set TCP keepalives on the lock's session")?;
    let mut announced = false;
    loop {
        if try_acquire(client, slot).await? {
            if announced {
                tracing::info!(slot, "the active relay went away; taking over");
                return Ok(Acquired::TookOver);
            }
            return Ok(Acquired::AtOnce);
        }
        if !announced {
            tracing::info!(slot, "standby: another relay is active on this slot; waiting to take over");
            announced = true;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(Acquired::ShutDown),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
