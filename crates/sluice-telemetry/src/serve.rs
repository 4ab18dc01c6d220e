use anyhow::Context;
use axum::Router;
use tokio_util::sync::CancellationToken;

/// Serves `router` on `listen` until `shutdown` fires, letting requests in
/// flight finish.
pub async fn serve(listen: &str, router: Router, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(listen, "listening");
    // The peer address identifies callers without a token (rate limits).
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .context("http server")
}
