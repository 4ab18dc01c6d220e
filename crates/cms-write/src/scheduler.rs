//! Background work of the command API: publishing scheduled articles whose
//! time has come, and purging expired idempotency keys.

use crate::CommandService;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs until `shutdown`. Safe to run in every replica (rows are claimed with
/// `FOR UPDATE SKIP LOCKED`).
pub async fn run(service: CommandService, every: Duration, shutdown: CancellationToken) {
    let purge_every = (Duration::from_secs(60).as_millis() / every.as_millis().max(1)).max(1) as u64;
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match service.publish_due(100).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(published = n, "published scheduled articles"),
            Err(e) => tracing::warn!(error = %e, "scheduled publishing failed; will retry"),
        }
        ticks += 1;
        if ticks.is_multiple_of(purge_every) {
            match service.purge_expired_keys().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "expired idempotency keys removed"),
                Err(e) => tracing::warn!(error = %e, "idempotency key purge failed"),
            }
        }
    }
}
