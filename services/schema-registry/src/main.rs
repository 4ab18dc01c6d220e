//! schema-registry: wiring only; the registry lives in `sluice-registry`.

use serde::{Deserialize, Serialize};
use sluice_core::Secret;
use sluice_core::validate::{Validate, check_listen, check_not_empty, check_url};
use sluice_registry::{Leader, Registry};
use sluice_telemetry::auth::Tokens;
use sluice_telemetry::prometheus::Registry as Metrics;
use sluice_telemetry::rate_limit::{self, RateLimit};
use std::process::ExitCode;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// `host:port` for the registry API and the ops endpoints.
    listen: String,
    /// SLUICE_BROKERS: where the schemas topic lives.
    brokers: String,
    /// SLUICE_TOPIC: the compacted topic holding every schema.
    topic: String,
    /// SLUICE_LEADER_URL: empty for the leader; a follower forwards writes there.
    leader_url: String,
    /// SLUICE_WRITE_TOKENS: comma-separated tokens allowed to register, delete
    /// and set compatibility (reads stay open to every client).
    write_tokens: Secret,
    /// SLUICE_AUTH_DISABLED=true accepts writes from anyone (local experiments only).
    auth_disabled: bool,
    /// SLUICE_RATE_LIMIT: requests per second per caller (bearer token, or
    /// address without one); 0 = no limit.
    rate_limit: f64,
    /// SLUICE_RATE_BURST: requests a caller may send at once.
    rate_burst: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8081".into(),
            brokers: "127.0.0.1:9092".into(),
            topic: "_schemas".into(),
            leader_url: String::new(),
            write_tokens: Secret::default(),
            auth_disabled: false,
            rate_limit: 0.0,
            rate_burst: 100,
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), String> {
        check_listen("SLUICE_LISTEN", &self.listen)?;
        RateLimit::new(self.rate_limit, self.rate_burst)?;
        check_not_empty("SLUICE_BROKERS", &self.brokers)?;
        check_not_empty("SLUICE_TOPIC", &self.topic)?;
        if Tokens::parse(&self.write_tokens, &Secret::default()).write.is_empty() && !self.auth_disabled {
            return Err("SLUICE_WRITE_TOKENS is empty: set at least one token for registry writes (or SLUICE_AUTH_DISABLED=true for local experiments)".into());
        }
        if !self.leader_url.is_empty() {
            check_url("SLUICE_LEADER_URL", &self.leader_url, &["http", "https"])?;
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    sluice_telemetry::run_service("schema-registry", |config: Config| async move {
        let shutdown = sluice_telemetry::shutdown_token();
        let readiness = sluice_telemetry::Readiness::default();
        let metrics = Metrics::new();
        let http = sluice_telemetry::http_metrics::HttpMetrics::register(&metrics, "registry")?;
        let ops = sluice_telemetry::ops_router(metrics, readiness.clone());
        // The broker may be starting, or busy compacting at its own start:
        // keep trying rather than exit.
        let open = || Registry::open(&config.brokers, &config.topic, shutdown.clone());
        let registry = match sluice_telemetry::retry_until_shutdown("open the schemas topic", &shutdown, open).await {
            Ok(registry) => registry,
            Err(_) if shutdown.is_cancelled() => return Ok(()),
            Err(e) => return Err(e),
        };
        let leader = if config.leader_url.is_empty() {
            None
        } else {
            // A forwarded write waits for the leader's broker acknowledgement;
            // a leader that never answers must not hold the client forever.
            let http = reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .timeout(std::time::Duration::from_secs(30))
                .build()?;
            Some(Leader { url: config.leader_url.clone(), http })
        };
        if let Some(l) = &leader {
            tracing::info!(leader = %l.url, "follower: writes are forwarded to the leader");
        }
        readiness.set_ready(true);
        let tokens = Tokens::parse(&config.write_tokens, &Secret::default());
        let limit = RateLimit::new(config.rate_limit, config.rate_burst)
            .map_err(anyhow::Error::msg)?
            .map(|l| l.knowing(&tokens));
        let writes_need = if config.auth_disabled {
            tracing::warn!("SLUICE_AUTH_DISABLED: anyone may register, delete and change compatibility");
            None
        } else {
            Some(tokens)
        };
        let api = sluice_registry::router(registry, leader, writes_need);
        let app = http.layer(rate_limit::layer(limit, api)).merge(ops);
        sluice_telemetry::serve(&config.listen, app, shutdown).await
    })
}
