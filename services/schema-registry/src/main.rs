//! schema-registry: wiring only; the registry lives in `sluice-registry`.

use serde::{Deserialize, Serialize};
use sluice_core::validate::{Validate, check_listen};
use sluice_telemetry::prometheus::Registry;
use std::process::ExitCode;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// `host:port` for the registry API and the ops endpoints.
    listen: String,
}

impl Default for Config {
    fn default() -> Self {
        Self { listen: "127.0.0.1:8081".into() }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), String> {
        check_listen("SLUICE_LISTEN", &self.listen)
    }
}

fn main() -> ExitCode {
    sluice_telemetry::run_service("schema-registry", |config: Config| async move {
        let readiness = sluice_telemetry::Readiness::default();
        let app = sluice_registry::router(Default::default())
            .merge(sluice_telemetry::ops_router(Registry::new(), readiness.clone()));
        readiness.set_ready(true);
        sluice_telemetry::serve(&config.listen, app, sluice_telemetry::shutdown_token()).await
    })
}
