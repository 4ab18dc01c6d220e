use crate::Readiness;
use prometheus::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What a background service (no API of its own) needs for operations: a
/// metrics registry, a readiness flag, and `/metrics` `/healthz` `/readyz`
/// served on `listen` until `shutdown`.
pub struct OpsServer {
    pub registry: Registry,
    pub readiness: Readiness,
    server: JoinHandle<anyhow::Result<()>>,
}

impl OpsServer {
    /// `register` adds the service's metrics before the server starts.
    pub fn start<M>(
        listen: &str,
        shutdown: &CancellationToken,
        register: impl FnOnce(&Registry) -> anyhow::Result<M>,
    ) -> anyhow::Result<(Self, M)> {
        let registry = Registry::new();
        let metrics = register(&registry)?;
        let readiness = Readiness::default();
        let router = crate::ops_router(registry.clone(), readiness.clone());
        let (listen, token) = (listen.to_string(), shutdown.clone());
        let server = tokio::spawn(async move { crate::serve(&listen, router, token).await });
        Ok((Self { registry, readiness, server }, metrics))
    }

    /// Waits for the server to stop (after `shutdown` fired).
    pub async fn stopped(self) -> anyhow::Result<()> {
        self.server.await?
    }
}
