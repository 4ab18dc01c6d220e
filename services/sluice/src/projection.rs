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
    /// Blue/green: build the next generation of a projection while the
    /// current one serves, swap it in atomically, drop the old one.
    Rebuild(crate::rebuild::RebuildArgs),
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
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Where a projection is read from and written to.
#[derive(clap::Args)]
pub struct SourceArgs {
    #[arg(long, value_enum)]
    pub store: Store,
    #[arg(long, env = "SLUICE_BROKERS", default_value = crate::dev::DEFAULT_BROKERS)]
    pub brokers: String,
    #[arg(long, env = "SLUICE_REGISTRY_URL", default_value = "http://127.0.0.1:8081")]
    pub registry_url: String,
    #[arg(long, default_value = "sluice")]
    pub topic_prefix: String,
    #[arg(long, default_value = "article,author")]
    pub aggregates: String,
    #[arg(long, default_value = "schemas")]
    pub schemas_dir: String,
    /// With --store redis.
    #[arg(long, env = "SLUICE_REDIS_URL", hide_env_values = true, default_value = crate::dev::DEFAULT_REDIS_URL)]
    pub redis_url: String,
    /// With --store postgres (a secret: never printed).
    #[arg(long, env = "SLUICE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// With --store postgres: the read model's schema.
    #[arg(long, default_value = sluice_store_postgres::DEFAULT_SCHEMA)]
    pub pg_schema: String,
}

impl SourceArgs {
    pub fn database_url(&self) -> anyhow::Result<&str> {
        self.database_url.as_deref().ok_or_else(|| anyhow::anyhow!("--store postgres needs --database-url"))
    }
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
    // Progress is also logged (JSON on stderr, every few seconds); the bar
    // and the verdict go to stdout.
    sluice_telemetry::init_logging("sluice-projection");
    let args = match action {
        Action::Bootstrap(args) => args,
        Action::Rebuild(args) => return crate::rebuild::run(args).await,
    };
    let building = match args.source.store {
        Store::Redis => {
            let store = sluice_store_redis::RedisStore::connect(&args.source.redis_url, &args.name).await?;
            build::<false, _>(&args.source, &args.name, None, store).await?
        }
        Store::Postgres => {
            let url = args.source.database_url()?;
            let store = sluice_store_postgres::PostgresStore::connect(url, &args.source.pg_schema, &args.name)?;
            build::<true, _>(&args.source, &args.name, None, store).await?
        }
    };
    let (records, elapsed) = (building.records, building.started.elapsed());
    building.stop().await?;
    println!(
        "projection {} is ready: {records} records in {:.1} s ({:.0} records/s); start a projector with SLUICE_PROJECTION={} to keep it current",
        args.name,
        elapsed.as_secs_f64(),
        records as f64 / elapsed.as_secs_f64().max(0.001),
        args.name
    );
    Ok(())
}

/// A projection being built by this process, ready: it reached the end
/// offsets captured when it started, and keeps applying what comes.
pub struct Building {
    projector: tokio::task::JoinHandle<anyhow::Result<()>>,
    shutdown: tokio_util::sync::CancellationToken,
    /// Records up to the end offsets captured at the start.
    pub records: i64,
    pub started: Instant,
}

impl Building {
    /// Stops it after the batch in hand is stored.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.projector.await?
    }

    pub fn has_stopped(&self) -> bool {
        self.projector.is_finished()
    }
}

/// Builds projection `name` in `store` from the beginning of the topics (or
/// from the positions it holds) with a progress bar, until ready. Its
/// consumer group is the projector service's of that name, or `group`.
pub async fn build<const POSTGRES: bool, S: ProjectionStore + 'static>(
    args: &SourceArgs,
    name: &str,
    group: Option<String>,
    store: S,
) -> anyhow::Result<Building> {
    let config = ServiceConfig::<As<POSTGRES>> {
        brokers: args.brokers.clone(),
        registry_url: args.registry_url.clone(),
        topic_prefix: args.topic_prefix.clone(),
        aggregates: args.aggregates.clone(),
        projection: name.to_string(),
        schemas_dir: args.schemas_dir.clone(),
        ..Default::default()
    };
    config.validate().map_err(anyhow::Error::msg)?;
    let mut runtime = config.runtime_config()?;
    if let Some(group) = group {
        runtime.group_id = group;
    }
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
    while !readiness.is_ready() && !projector.is_finished() {
        bar.set_length(metrics.bootstrap_end.with_label_values(&[name]).get().max(0) as u64);
        bar.set_position(metrics.bootstrap_position.with_label_values(&[name]).get().max(0) as u64);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let records = metrics.bootstrap_end.with_label_values(&[name]).get();
    bar.set_length(records.max(0) as u64);
    bar.set_position(records.max(0) as u64);
    bar.finish();
    let building = Building { projector, shutdown, records, started };
    if !readiness.is_ready() {
        building.stop().await?;
        anyhow::bail!("the projection stopped before it was ready");
    }
    Ok(building)
}
