use anyhow::Context;
use axum::Router;
use tokio_util::sync::CancellationToken;

/// Serves `router` on `listen` until `shutdown` fires, letting requests in
/// flight finish.
pub async fn serve(listen: &str, router: Router, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(listen, "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .context("http server")
}
