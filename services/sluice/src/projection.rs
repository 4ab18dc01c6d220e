//! `sluice projection bootstrap`: builds a projection under a new name from
//! the compacted topics, in this process (the projector runtime is a
//! library), with a progress bar; exits once it reached the end offsets
//! captured when it started. A projector service started afterwards with the
//! same name goes on from the positions the store holds.

use serde::{Deserialize, Serialize};
use sluice_core::validate::Validate;
use sluice_projection::service::{ServiceConfig, StoreSettings};
use sluice_projection::{ProjectionMetrics, ProjectionStore};
use sluice_telemetry::Readiness;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Subcommand)]
pub enum Action {
    /// Build a projection under a new name from the topics, then exit.
    Bootstrap(BootstrapArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Store {
    Redis,
    Postgres,
}

#[derive(clap::Args)]
pub struct BootstrapArgs {
    /// The new projection's name.
    #[arg(long)]
    name: String,
    #[arg(long, value_enum)]
    store: Store,
    #[arg(long, env = "SLUICE_BROKERS", default_value = crate::dev::DEFAULT_BROKERS)]
    brokers: String,
    #[arg(long, env = "SLUICE_REGISTRY_URL", default_value = "http://127.0.0.1:8081")]
    registry_url: String,
    #[arg(long, default_value = "sluice")]
    topic_prefix: String,
    #[arg(long, default_value = "article,author")]
    aggregates: String,
    #[arg(long, default_value = "schemas")]
    schemas_dir: String,
    /// With --store redis.
    #[arg(long, env = "SLUICE_REDIS_URL", hide_env_values = true, default_value = crate::dev::DEFAULT_REDIS_URL)]
    redis_url: String,
    /// With --store postgres (a secret: never printed).
    #[arg(long, env = "SLUICE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// With --store postgres: the read model's schema.
    #[arg(long, default_value = "cms_read")]
    pg_schema: String,
}

/// Store settings as the projector services name them, so that the
/// bootstrap joins the consumer group the service of that name will use.
#[derive(Debug, Default, Serialize, Deserialize)]
struct As<const POSTGRES: bool>;

impl<const POSTGRES: bool> StoreSettings for As<POSTGRES> {
    const SERVICE: &'static str = if POSTGRES { "projector-postgres" } else { "projector-redis" };
    const DEFAULT_LISTEN: &'static str = "127.0.0.1:0";
    const DEFAULT_AGGREGATES: &'static str = "article,author";

    fn validate(&self, projection: &str) -> Result<(), String> {
        if projection.contains(['{', '}', ':']) {
            return Err("--name must not contain '{', '}' or ':'".into());
        }
        Ok(())
    }
}

pub async fn run(action: Action) -> anyhow::Result<()> {
    let Action::Bootstrap(args) = action;
    // Progress is also logged (JSON on stderr, every few seconds); the bar
    // and the verdict go to stdout.
    sluice_telemetry::init_logging("sluice-projection-bootstrap");
    match args.store {
        Store::Redis => {
            let store = sluice_store_redis::RedisStore::connect(&args.redis_url, &args.name).await?;
            bootstrap::<false, _>(&args, store).await
        }
        Store::Postgres => {
            let url =
                args.database_url.as_deref().ok_or_else(|| anyhow::anyhow!("--store postgres needs --database-url"))?;
            let store = sluice_store_postgres::PostgresStore::connect(url, &args.pg_schema, &args.name)?;
            bootstrap::<true, _>(&args, store).await
        }
    }
}

async fn bootstrap<const POSTGRES: bool, S: ProjectionStore + 'static>(
    args: &BootstrapArgs,
    store: S,
) -> anyhow::Result<()> {
    let config = ServiceConfig::<As<POSTGRES>> {
        brokers: args.brokers.clone(),
        registry_url: args.registry_url.clone(),
        topic_prefix: args.topic_prefix.clone(),
        aggregates: args.aggregates.clone(),
        projection: args.name.clone(),
        schemas_dir: args.schemas_dir.clone(),
        ..Default::default()
    };
    config.validate().map_err(anyhow::Error::msg)?;
    let runtime = config.runtime_config()?;
    let registry = sluice_telemetry::prometheus::Registry::new();
    let metrics = ProjectionMetrics::register(&registry)?;
    let readiness = Readiness::default();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let projector = tokio::spawn(sluice_projection::run_projector(
        runtime,
        Arc::new(store),
        metrics.clone(),
        readiness.clone(),
        shutdown.clone(),
    ));

    let bar = indicatif::ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stdout()).with_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} records ({percent}%) {per_sec} ETA {eta}",
        )?
        .progress_chars("=> "),
    );
    let name = args.name.as_str();
    while !readiness.is_ready() {
        if projector.is_finished() {
            break;
        }
        bar.set_length(metrics.bootstrap_end.with_label_values(&[name]).get().max(0) as u64);
        bar.set_position(metrics.bootstrap_position.with_label_values(&[name]).get().max(0) as u64);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let records = metrics.bootstrap_end.with_label_values(&[name]).get();
    bar.set_length(records.max(0) as u64);
    bar.set_position(records.max(0) as u64);
    bar.finish();
    shutdown.cancel();
    projector.await??;
    anyhow::ensure!(readiness.is_ready(), "the projection stopped before it was ready");
    let elapsed = started.elapsed();
    println!(
        "projection {name} is ready: {records} records in {:.1} s ({:.0} records/s); start a projector with SLUICE_PROJECTION={name} to keep it current",
        elapsed.as_secs_f64(),
        records as f64 / elapsed.as_secs_f64().max(0.001)
    );
    Ok(())
}
