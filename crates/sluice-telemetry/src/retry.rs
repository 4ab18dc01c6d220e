use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Retries `op` with capped exponential back-off until it succeeds or shutdown.
pub async fn retry_until_shutdown<T, F, Fut>(what: &str, shutdown: &CancellationToken, mut op: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "{what} failed; retrying in {delay:?}");
                tokio::select! {
                    _ = shutdown.cancelled() => return Err(e.context(format!("{what}: gave up on shutdown"))),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
