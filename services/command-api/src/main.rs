//! command-api: configuration and wiring; the write side lives in `cms-write`.

mod config;

use anyhow::Context;
use cms_write::{AppState, Repository};
use config::Config;
use sluice_avro::{RegistryEncoder, SchemaSet};
use sluice_core::topics;
use sluice_telemetry::Readiness;
use sluice_telemetry::prometheus::Registry;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

fn main() -> ExitCode {
    sluice_telemetry::run_service("command-api", run)
}

async fn run(config: Config) -> anyhow::Result<()> {
    let shutdown = sluice_telemetry::shutdown_token();
    let outbox = config.outbox()?;
    let schemas = SchemaSet::load(config.schemas_dir.as_ref())?;
    let article_schema = schemas
        .latest(cms_domain::aggregate::ARTICLE)
        .context("no article schema in the schemas folder")?;

    let mut pg = deadpool_postgres::Config::new();
    pg.url = Some(config.database_url.expose().to_string());
    pg.pool = Some(deadpool_postgres::PoolConfig::new(config.db_pool_size));
    let pool = pg
        .create_pool(
            Some(deadpool_postgres::Runtime::Tokio1),
            tokio_postgres::NoTls,
        )
        .context("database pool")?;
    let applied = retry_at_start("migrate the database", || async {
        let mut client = pool.get().await?;
        cms_write::migrations::migrate(&mut client, &outbox).await
    })
    .await?;
    tracing::info!(?applied, "database migrated");

    let subject = topics::value_subject(&topics::state_topic(
        &config.topic_prefix,
        cms_domain::aggregate::ARTICLE,
    ));
    let encoder = retry_at_start("register the article schema", || {
        RegistryEncoder::register(&config.registry_url, &subject, &article_schema.text)
    })
    .await?;
    tracing::info!(%subject, schema_id = encoder.schema_id(), version = article_schema.version, "writer schema registered");

    let repository = Repository::new(pool, outbox, Arc::new(encoder));
    let readiness = Readiness::default();
    let app = cms_write::router(
        AppState {
            repository,
            query_base_url: config.query_base_url.clone(),
        },
        config.max_body_bytes,
    )
    .merge(sluice_telemetry::ops_router(
        Registry::new(),
        readiness.clone(),
    ));
    readiness.set_ready(true);
    sluice_telemetry::serve(&config.listen, app, shutdown).await
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
