//! `sluice relay replay`: re-publish the outbox rows of a time range.

use chrono::{DateTime, Utc};
use sluice_core::Secret;
use sluice_relay::{RelayConfig, RelayMetrics};

#[derive(clap::Subcommand)]
pub enum Action {
    /// Re-publish the outbox rows created in [--since, --until) (rows kept by
    /// SLUICE_OUTBOX_RETENTION_SECS). Consumers skip versions they have.
    Replay(ReplayArgs),
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// RFC 3339 time, e.g. 2026-11-23T10:00:00Z.
    #[arg(long)]
    pub since: DateTime<Utc>,
    /// RFC 3339 time; default now.
    #[arg(long)]
    pub until: Option<DateTime<Utc>>,
    #[arg(long, env = "SLUICE_DATABASE_URL", default_value = crate::dev::DEV_DATABASE_URL, hide_default_value = true)]
    pub database_url: String,
    #[arg(long, env = "SLUICE_BROKERS", default_value = crate::dev::DEFAULT_BROKERS)]
    pub brokers: String,
    #[arg(long, env = "SLUICE_TOPIC_PREFIX", default_value = "sluice")]
    pub topic_prefix: String,
    #[arg(long, env = "SLUICE_OUTBOX_TABLES", default_value = "cms.outbox")]
    pub outbox_tables: String,
}

pub async fn run(action: Action) -> anyhow::Result<()> {
    let Action::Replay(args) = action;
    let config = RelayConfig {
        database_url: Secret::new(args.database_url),
        brokers: args.brokers,
        topic_prefix: args.topic_prefix,
        outbox_tables: args.outbox_tables,
        ..RelayConfig::default()
    };
    let until = args.until.unwrap_or_else(Utc::now);
    let metrics = RelayMetrics::register(&sluice_telemetry::prometheus::Registry::new())?;
    let rows = sluice_relay::replay(&config, args.since, until, metrics).await?;
    println!("re-published {rows} outbox rows created in [{}, {until})", args.since);
    Ok(())
}
