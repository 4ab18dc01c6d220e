//! `sluice relay replay`: re-publish the outbox rows of a time range.

use chrono::{DateTime, Utc};
use sluice_core::Secret;
use sluice_relay::{RelayConfig, RelayMetrics};

#[derive(clap::Subcommand)]
pub enum Action {
    /// Re-publish the outbox rows created in [--since, --until) (rows kept by
    /// SLUICE_OUTBOX_RETENTION_SECS), then the newest retained version of each
    /// key among them, so that it stays the key's last record in the compacted
    /// topic. Consumers skip versions they have. Refused while a relay is
    /// active on the slot (its records could land after the replay's) unless --force.
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
    /// The relay's slot (its lock tells whether a relay is active).
    #[arg(long, env = "SLUICE_SLOT", default_value = "sluice_outbox")]
    pub slot: String,
    /// The headers records carry, as the relay's (`all`, `none`, or names joined by `+`).
    #[arg(long, env = "SLUICE_HEADERS", default_value = "all")]
    pub headers: String,
    /// Per aggregate type, as the relay's (`article=none;author=...`).
    #[arg(long, env = "SLUICE_TOPIC_HEADERS", default_value = "")]
    pub topic_headers: String,
    /// Replay even while a relay is active on the slot.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(action: Action) -> anyhow::Result<()> {
    let Action::Replay(args) = action;
    let config = RelayConfig {
        database_url: Secret::new(args.database_url),
        brokers: args.brokers,
        topic_prefix: args.topic_prefix,
        outbox_tables: args.outbox_tables,
        slot: args.slot,
        headers: args.headers,
        topic_headers: args.topic_headers,
        ..RelayConfig::default()
    };
    config.header_selection().map_err(|e| anyhow::anyhow!(e))?;
    let until = args.until.unwrap_or_else(Utc::now);
    let metrics = RelayMetrics::register(&sluice_telemetry::prometheus::Registry::new())?;
    let done = sluice_relay::replay(&config, args.since, until, args.force, metrics).await?;
    println!(
        "re-published {} outbox rows created in [{}, {until}), then the newest version of {} aggregates so that each stays its key's last record",
        done.range, args.since, done.latest
    );
    Ok(())
}
