//! create-article commands/s over HTTP beside the same INSERTs without HTTP.

use anyhow::Context;
use futures::StreamExt;
use std::time::Instant;

#[derive(clap::Args)]
pub struct CommandsArgs {
    #[arg(long, default_value_t = 3000)]
    pub commands: usize,
    #[command(flatten)]
    pub target: crate::load::CommandTarget,
    /// The command API's database (for the raw baseline).
    #[arg(long, env = "SLUICE_DATABASE_URL", default_value = crate::dev::DEV_DATABASE_URL)]
    pub database_url: String,
    #[command(flatten)]
    pub output: super::report::Output,
}

pub async fn run(args: CommandsArgs) -> anyhow::Result<()> {
    let run = std::process::id();
    let http = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let url = args.target.articles_url();
    let start = Instant::now();
    let accepted = futures::stream::iter(0..args.commands)
        .map(|i| {
            let (http, url, token) = (http.clone(), url.clone(), args.target.token.clone());
            async move {
                let body = serde_json::json!({"title": format!("Bench {run}-{i}"), "body": "x".repeat(500)});
                http.post(&url).bearer_auth(token).json(&body).send().await.is_ok_and(|r| r.status() == 202)
            }
        })
        .buffer_unordered(args.target.concurrency)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let ours = start.elapsed();
    anyhow::ensure!(accepted == args.commands, "only {accepted} of {} commands were accepted", args.commands);

    let raw = raw_inserts(&args, run).await?;
    let ours_rate = args.commands as f64 / ours.as_secs_f64();
    let raw_rate = args.commands as f64 / raw.as_secs_f64();
    println!(
        "create-article over HTTP : {ours_rate:>8.0} commands/s ({} in {:.2} s, concurrency {})",
        args.commands,
        ours.as_secs_f64(),
        args.target.concurrency
    );
    println!(
        "raw INSERTs (row+outbox) : {raw_rate:>8.0} transactions/s ({} in {:.2} s, concurrency {})",
        args.commands,
        raw.as_secs_f64(),
        args.target.concurrency
    );
    println!("ratio                    : {:.2}", ours_rate / raw_rate);
    let table = [super::report::stage_row(
        "create-article over HTTP",
        ours_rate,
        "raw INSERTs (row + outbox), same concurrency",
        raw_rate,
    )];
    let figures =
        serde_json::json!({"commands": args.commands, "concurrency": args.target.concurrency, "table": table});
    super::report::record(&args.output.results, "commands", figures).await
}

/// The same rows (article + outbox, one transaction each) straight into copies
/// of the tables, without HTTP, validation, idempotency or the catch-up log.
async fn raw_inserts(args: &CommandsArgs, run: u32) -> anyhow::Result<std::time::Duration> {
    let pool = cms_write::connect_pool(&args.database_url, args.target.concurrency)?;
    let setup = pool.get().await.context("connect for the raw baseline")?;
    setup
        .batch_execute(
            "drop table if exists bench_articles, bench_outbox;
             create table bench_articles (like articles including all);
             create table bench_outbox (like outbox including all);",
        )
        .await
        .context("create the baseline tables")?;
    let payload = vec![0u8; 600];
    let start = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..args.commands)
        .map(|i| {
            let (pool, payload) = (pool.clone(), payload.clone());
            async move {
                let mut client = pool.get().await?;
                let tx = client.transaction().await?;
                let id = uuid::Uuid::now_v7();
                let now = chrono::Utc::now();
                tx.execute(
                    "insert into bench_articles (id, slug, title, body, status, version, created_at, updated_at)
                     values ($1, $2, $3, $4, 'DRAFT', 1, $5, $5)",
                    &[&id, &format!("bench-{run}-{i}"), &format!("Bench {run}-{i}"), &"x".repeat(500), &now],
                )
                .await?;
                tx.execute(
                    "insert into bench_outbox (id, aggregatetype, aggregateid, type, payload, aggregate_version)
                     values ($1, 'article', $2, 'ArticleDrafted', $3, 1)",
                    &[&uuid::Uuid::now_v7(), &id.to_string(), &payload],
                )
                .await?;
                tx.commit().await?;
                Ok(())
            }
        })
        .buffer_unordered(args.target.concurrency)
        .collect()
        .await;
    let elapsed = start.elapsed();
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    setup.batch_execute("drop table bench_articles, bench_outbox").await?;
    Ok(elapsed)
}
