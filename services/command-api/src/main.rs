//! command-api: configuration and wiring; the write side lives in `cms-write`.

mod config;

use anyhow::Context;
use cms_write::{AppState, CommandService, Encoders, Tokens};
use config::Config;
use sluice_avro::{RegistryEncoder, RegistryEndpoint, SchemaSet};
use sluice_core::topics;
use sluice_telemetry::Readiness;
use sluice_telemetry::prometheus::Registry;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

fn main() -> ExitCode {
    // `command-api openapi` prints the OpenAPI document (`make openapi`).
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        println!("{}", cms_write::openapi_json());
        return ExitCode::SUCCESS;
    }
    sluice_telemetry::run_service("command-api", run)
}

async fn run(config: Config) -> anyhow::Result<()> {
    let shutdown = sluice_telemetry::shutdown_token();
    let outbox = config.outbox()?;
    let schemas = SchemaSet::load(config.schemas_dir.as_ref())?;

    let pool = cms_write::connect_pool(config.database_url.expose(), config.db_pool_size)?;
    let applied = retry_at_start("migrate the database", || async {
        let mut client = pool.get().await?;
        cms_write::migrations::migrate(&mut client, &outbox).await
    })
    .await?;
    tracing::info!(?applied, "database migrated");

    let encoders = Encoders {
        article: Arc::new(register(&config, &schemas, cms_domain::aggregate::ARTICLE).await?),
        author: Arc::new(register(&config, &schemas, cms_domain::aggregate::AUTHOR).await?),
    };
    let ttl = Duration::from_secs(config.idempotency_ttl_secs);
    let service = CommandService::new(pool, outbox, encoders, config.query_base_url.clone(), ttl);
    let tokens = Tokens::parse(&config.write_tokens, &config.read_tokens);
    if config.auth_disabled {
        tracing::warn!("authentication is disabled (SLUICE_AUTH_DISABLED): anyone can write");
    }
    let scheduler = tokio::spawn(cms_write::scheduler::run(
        service.clone(),
        Duration::from_millis(config.schedule_interval_ms),
        shutdown.clone(),
    ));
    let readiness = Readiness::default();
    let registry = Registry::new();
    let http = sluice_telemetry::http_metrics::HttpMetrics::register(&registry, "command_api")?;
    let limit = sluice_telemetry::rate_limit::RateLimit::new(config.rate_limit, config.rate_burst)
        .map_err(anyhow::Error::msg)?
        .map(|l| l.knowing(&tokens));
    let api = cms_write::router(AppState { service }, tokens, config.max_body_bytes, config.auth_disabled);
    let api = sluice_telemetry::rate_limit::layer(limit, api);
    let app = http.layer(api).merge(sluice_telemetry::ops_router(registry, readiness.clone()));
    readiness.set_ready(true);
    let served = sluice_telemetry::serve(&config.listen, app, shutdown.clone()).await;
    shutdown.cancel();
    scheduler.await.context("scheduler task")?;
    served
}

/// The encoder for the newest schema of `aggregate`, under its state topic's subject.
async fn register(config: &Config, schemas: &SchemaSet, aggregate: &str) -> anyhow::Result<RegistryEncoder> {
    let schema =
        schemas.latest(aggregate).with_context(|| format!("no {aggregate} schema in {}", config.schemas_dir))?;
    let subject = topics::value_subject(&topics::state_topic(&config.topic_prefix, aggregate));
    let encoder = retry_at_start(&format!("find the {aggregate} schema in the registry"), || async {
        if config.auto_register {
            let registry = RegistryEndpoint::new(&config.registry_url, config.registry_token.clone());
            RegistryEncoder::register(&registry, &subject, &schema.text).await
        } else {
            RegistryEncoder::lookup(&config.registry_url, &subject, &schema.text).await
        }
    })
    .await?;
    tracing::info!(%subject, schema_id = encoder.schema_id(), version = schema.version, "writer schema registered");
    Ok(encoder)
}

/// Dependencies may start a moment after us (local stack, Kubernetes): retry
/// for a minute, then give up with the last error.
async fn retry_at_start<T, E, F, Fut>(what: &str, mut op: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Into<anyhow::Error>,
{
    let start = tokio::time::Instant::now();
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if start.elapsed() < Duration::from_secs(60) => {
                tracing::warn!(error = %format!("{:#}", e.into()), "{what} failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.into().context(format!("{what} failed for 60 s"))),
        }
    }
}
