//! outbox-relay: wiring only; the relay lives in `sluice-relay`.

use sluice_relay::{RelayConfig, RelayMetrics};
use sluice_telemetry::OpsServer;
use std::process::ExitCode;

fn main() -> ExitCode {
    sluice_telemetry::run_service("outbox-relay", |config: RelayConfig| async move {
        let shutdown = sluice_telemetry::shutdown_token();
        let (ops, metrics) = OpsServer::start(&config.listen, &shutdown, RelayMetrics::register)?;
        let result = sluice_relay::run_relay(config, metrics, ops.readiness.clone(), shutdown.clone()).await;
        shutdown.cancel();
        ops.stopped().await?;
        result
    })
}
