//! outbox-relay: wiring only; the relay lives in `sluice-relay`.

use sluice_relay::{RelayConfig, RelayMetrics};
use sluice_telemetry::Readiness;
use sluice_telemetry::prometheus::Registry;
use std::process::ExitCode;

fn main() -> ExitCode {
    sluice_telemetry::run_service("outbox-relay", |config: RelayConfig| async move {
        let shutdown = sluice_telemetry::shutdown_token();
        let registry = Registry::new();
        let metrics = RelayMetrics::register(&registry)?;
        let readiness = Readiness::default();
        let ops = sluice_telemetry::ops_router(registry, readiness.clone());
        let (listen, token) = (config.listen.clone(), shutdown.clone());
        let server = tokio::spawn(async move { sluice_telemetry::serve(&listen, ops, token).await });
        let result = sluice_relay::run_relay(config, metrics, readiness, shutdown.clone()).await;
        shutdown.cancel();
        server.await??;
        result
    })
}
