use anyhow::Context;
use sluice_core::topics::state_topic;
use sluice_projection::lag::{PartitionLag, projection_lag};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct LagArgs {
    #[arg(long, env = "SLUICE_BROKERS", default_value = crate::dev::DEFAULT_BROKERS)]
    pub brokers: String,
    /// Which read model's stored positions to read.
    #[arg(long, value_enum, default_value = "redis")]
    pub store: crate::projection::Store,
    #[arg(long, env = "SLUICE_REDIS_URL", hide_env_values = true, default_value = crate::dev::DEFAULT_REDIS_URL)]
    pub redis_url: String,
    /// With --store postgres (a secret: never printed).
    #[arg(long, env = "SLUICE_DATABASE_URL", hide_env_values = true, default_value = crate::dev::DEV_DATABASE_URL)]
    pub database_url: String,
    /// With --store postgres: the read model's schema.
    #[arg(long, default_value = sluice_store_postgres::DEFAULT_SCHEMA)]
    pub pg_schema: String,
    #[arg(long, default_value = "cms")]
    pub projection: String,
    #[arg(long, default_value = "sluice")]
    pub topic_prefix: String,
    #[arg(long, default_value = "article")]
    pub aggregate: String,
    /// Instead: the lag of every consumer group the broker lists, from
    /// their Kafka commits (as lag-exporter exports it).
    #[arg(long)]
    pub groups: bool,
    /// With --groups: also these groups (for brokers that cannot list them).
    #[arg(long = "group")]
    pub group: Vec<String>,
}

pub async fn run(args: LagArgs) -> anyhow::Result<()> {
    if args.groups || !args.group.is_empty() {
        return groups(&args).await;
    }
    let lags = measure(&args).await?;
    print(&lags);
    Ok(())
}

/// Every group's committed offsets, end offsets and lag, one table.
async fn groups(args: &LagArgs) -> anyhow::Result<()> {
    let (brokers, named) = (args.brokers.clone(), args.group.clone());
    let (reports, listed) = tokio::task::spawn_blocking(move || {
        let mut scanner = sluice_lag::scan::Scanner::new(&brokers, &named, 2, 2)?;
        let reports = scanner.scan()?;
        anyhow::Ok((reports, scanner.lists_groups))
    })
    .await??;
    if listed == Some(false) {
        println!("(the broker did not list its groups: only the --group ones are shown)");
    }
    println!(
        "{:<36} {:<28} {:>9} {:>10} {:>10} {:>10} {:>10}",
        "group", "topic", "partition", "committed", "end", "lag (msgs)", "lag (s)"
    );
    for report in &reports {
        if let Some(error) = &report.error {
            println!("{:<36} offsets could not be read: {error}", report.group);
        }
        for row in &report.rows {
            let seconds = row.lag_seconds.map_or("?".to_string(), |s| format!("{s:.1}"));
            println!(
                "{:<36} {:<28} {:>9} {:>10} {:>10} {:>10} {:>10}",
                report.group, row.topic, row.partition, row.committed, row.end, row.lag_messages, seconds
            );
        }
    }
    Ok(())
}

pub async fn measure(args: &LagArgs) -> anyhow::Result<Vec<PartitionLag>> {
    let consumer = Arc::new(sluice_kafka::metadata_client(&args.brokers)?);
    let topic = state_topic(&args.topic_prefix, &args.aggregate);
    let positions = match args.store {
        crate::projection::Store::Redis => {
            let client = redis::Client::open(args.redis_url.as_str()).context("redis url")?;
            let mut conn = client.get_multiplexed_async_connection().await.context("connect to Redis")?;
            let generation = sluice_store_redis::generation::serving(&mut conn, &args.projection).await?;
            sluice_store_redis::stored_positions(&mut conn, &generation, &topic).await?
        }
        crate::projection::Store::Postgres => {
            let schema = sluice_store_postgres::SchemaName::parse(&args.pg_schema).map_err(anyhow::Error::msg)?;
            // The URL is a secret: the connection error is reported without it.
            let (client, connection) = tokio_postgres::connect(&args.database_url, tokio_postgres::NoTls)
                .await
                .map_err(|e| anyhow::anyhow!("connect to the read model's database: {e}"))?;
            let connection = tokio::spawn(connection);
            let positions = sluice_store_postgres::stored_positions(&client, &schema, &args.projection, &topic).await;
            connection.abort();
            positions?
        }
    };
    projection_lag(consumer, &positions, &topic).await
}

pub fn print(lags: &[PartitionLag]) {
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    println!(
        "{:<32} {:>9} {:>10} {:>10} {:>12} {:>16}",
        "topic", "partition", "end", "applied", "lag (msgs)", "last applied"
    );
    for l in lags {
        let age =
            l.applied_at_ms.map_or("never".to_string(), |at| format!("{:.1} s ago", (now_ms - at) as f64 / 1000.0));
        println!(
            "{:<32} {:>9} {:>10} {:>10} {:>12} {:>16}",
            l.topic, l.partition, l.end_offset, l.position, l.messages, age
        );
    }
    let total: i64 = lags.iter().map(|l| l.messages).sum();
    println!("total lag: {total} messages");
}
