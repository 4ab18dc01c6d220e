//! `sluice reconcile --store redis|postgres`: compares every aggregate of the
//! source of truth with a read model and repairs what is behind through the
//! projectors' own version-guarded upsert; prints what it found. With
//! `--every SECS` it runs again on that schedule until stopped.

use crate::projection::Store;
use sluice_core::Secret;
use sluice_query::model::{Models, PgModel, RedisModel, Source};
use sluice_query::reconcile::{self, Finding};
use sluice_query::source::SourceOfTruth;
use std::time::Duration;

#[derive(clap::Args)]
pub struct ReconcileArgs {
    #[arg(long, value_enum)]
    store: Store,
    /// The command API (the source of truth).
    #[arg(long, env = "SLUICE_SOURCE_URL", default_value = "http://127.0.0.1:8080")]
    source_url: String,
    /// A read token of the command API (a secret: never printed).
    #[arg(long, env = "SLUICE_SOURCE_TOKEN", hide_env_values = true, default_value = "")]
    source_token: String,
    #[arg(long, default_value = "sluice")]
    topic_prefix: String,
    /// The projection (Redis: the alias its serving pointer names; PostgreSQL: the projection's name).
    #[arg(long, default_value = "cms")]
    projection: String,
    /// With --store redis.
    #[arg(long, env = "SLUICE_REDIS_URL", hide_env_values = true, default_value = crate::dev::DEFAULT_REDIS_URL)]
    redis_url: String,
    /// With --store postgres: a role that writes the read schema (a secret: never printed).
    #[arg(long, env = "SLUICE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// With --store postgres: the read model's schema.
    #[arg(long, default_value = sluice_store_postgres::DEFAULT_SCHEMA)]
    pg_schema: String,
    /// Run again every this many seconds (a schedule), until stopped.
    #[arg(long)]
    every: Option<u64>,
}

async fn models(args: &ReconcileArgs) -> anyhow::Result<(Models, Source)> {
    Ok(match args.store {
        Store::Redis => {
            let redis = RedisModel::connect(&args.redis_url, &args.projection).await?;
            (Models { redis: Some(redis), postgres: None }, Source::Redis)
        }
        Store::Postgres => {
            let url =
                args.database_url.as_deref().ok_or_else(|| anyhow::anyhow!("--store postgres needs --database-url"))?;
            let pg = PgModel {
                reads: sluice_store_postgres::reads::PgReads::connect(url, &args.pg_schema, &args.projection)?,
                store: sluice_store_postgres::PostgresStore::connect(url, &args.pg_schema, &args.projection)?,
            };
            (Models { redis: None, postgres: Some(pg) }, Source::Postgres)
        }
    })
}

pub async fn run(args: ReconcileArgs) -> anyhow::Result<()> {
    let (models, into) = models(&args).await?;
    let source = SourceOfTruth::new(&args.source_url, Secret::new(args.source_token.clone()), Duration::from_secs(30))?;
    loop {
        let report = match reconcile::run(&models, into, &source, &args.topic_prefix).await {
            Ok(report) => report,
            // On a schedule, a run that could not read the log or the read
            // model is retried at the next one.
            Err(e) if args.every.is_some() => {
                eprintln!("reconcile run failed: {e:#}");
                tokio::time::sleep(Duration::from_secs(args.every.unwrap_or(60))).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        for (aggregate_type, id, finding) in &report.findings {
            match finding {
                Finding::Repaired { had: Some(had), now } => {
                    println!("repaired {aggregate_type} {id}: version {had} -> {now}")
                }
                Finding::Repaired { had: None, now } => println!("repaired {aggregate_type} {id}: missing -> {now}"),
                Finding::Ahead { had, source } => println!(
                    "left alone {aggregate_type} {id}: the read model holds version {had}, ahead of the source's {source}"
                ),
                Finding::Differs { version } => println!(
                    "left alone {aggregate_type} {id}: another document at version {version} (rebuild the projection)"
                ),
                Finding::Failed { reason } => println!("not repaired {aggregate_type} {id}: {reason}"),
            }
        }
        println!(
            "{} {}: checked {} aggregates, repaired {}, left alone {}",
            into.name(),
            args.projection,
            report.checked,
            report.repaired(),
            report.findings.len() - report.repaired()
        );
        let failed = report.findings.iter().filter(|(_, _, f)| matches!(f, Finding::Failed { .. })).count();
        match args.every {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None if failed > 0 => anyhow::bail!("{failed} repairs failed"),
            None => return Ok(()),
        }
    }
}
