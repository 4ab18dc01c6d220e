//! lag-exporter: the consumer-group lag of every group (committed and end
//! offsets, lag in messages and seconds, a Burrow-like status) on `/metrics`.
//! Configuration and wiring; the scanning lives in `sluice-lag`.

use serde::{Deserialize, Serialize};
use sluice_core::validate::{Validate, check_listen, check_not_empty};
use sluice_lag::metrics::LagMetrics;
use sluice_lag::scan::Scanner;
use sluice_telemetry::Readiness;
use sluice_telemetry::prometheus::Registry;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    listen: String,
    brokers: String,
    /// SLUICE_GROUPS: comma-separated groups to scan beside those the broker
    /// lists (all of them, where it cannot list groups).
    groups: String,
    /// SLUICE_INTERVAL_MS: time between scans.
    interval_ms: u64,
    /// SLUICE_WINDOW: scans a status looks back over.
    window: usize,
    /// SLUICE_HISTORY: end-offset points kept per partition for time lag.
    history: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9094".into(),
            brokers: "127.0.0.1:9092".into(),
            groups: String::new(),
            interval_ms: 10_000,
            window: 10,
            history: 360,
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), String> {
        check_listen("SLUICE_LISTEN", &self.listen)?;
        check_not_empty("SLUICE_BROKERS", &self.brokers)?;
        if !(100..=3_600_000).contains(&self.interval_ms) {
            return Err("SLUICE_INTERVAL_MS must be between 100 and 3600000".into());
        }
        if !(2..=1_000).contains(&self.window) {
            return Err("SLUICE_WINDOW must be between 2 and 1000".into());
        }
        if !(2..=100_000).contains(&self.history) {
            return Err("SLUICE_HISTORY must be between 2 and 100000".into());
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    sluice_telemetry::run_service("lag-exporter", |config: Config| async move {
        let registry = Registry::new();
        let metrics = LagMetrics::register(&registry)?;
        let groups: Vec<String> =
            config.groups.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_string).collect();
        let scanner = Scanner::new(&config.brokers, &groups, config.window, config.history)?;
        let readiness = Readiness::default();
        let every = Duration::from_millis(config.interval_ms);
        tokio::spawn(scan_forever(scanner, metrics, readiness.clone(), every));
        let app = sluice_telemetry::ops_router(registry, readiness);
        sluice_telemetry::serve(&config.listen, app, sluice_telemetry::shutdown_token()).await
    })
}

/// Scans every `every`; ready once a scan succeeded.
async fn scan_forever(scanner: Scanner, metrics: LagMetrics, readiness: Readiness, every: Duration) {
    let scanner = Arc::new(Mutex::new(scanner));
    loop {
        let shared = scanner.clone();
        let result = tokio::task::spawn_blocking(move || shared.lock().unwrap_or_else(|e| e.into_inner()).scan())
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the scan panicked: {e}")));
        metrics.scans.inc();
        match result {
            Ok(reports) => {
                metrics.update(&reports);
                readiness.set_ready(true);
            }
            Err(e) => {
                metrics.scan_errors.inc();
                tracing::warn!(error = %format!("{e:#}"), "scan failed");
            }
        }
        tokio::time::sleep(every).await;
    }
}
