//! End-to-end latency: a create-article command's 202 answer (its
//! transaction committed just before) until the article is in the Redis read
//! model and in the PostgreSQL read model, at steady rates, beside the
//! broker's own produce -> consumable latency at the same rate and payload
//! size; then the peak RSS of every service of the local stack.

use super::relay::raw_latency;
use super::report;
use super::stats::{Quantiles, ms};
use futures::StreamExt;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(clap::Args)]
pub struct E2eArgs {
    /// Steady command rates, per second.
    #[arg(long, value_delimiter = ',', default_values_t = [500u64, 1000])]
    pub rates: Vec<u64>,
    /// How long each rate is held.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    #[command(flatten)]
    pub target: crate::load::CommandTarget,
    /// The PostgreSQL read model's database.
    #[arg(long, env = "SLUICE_DATABASE_URL", default_value = crate::dev::DEV_DATABASE_URL)]
    pub database_url: String,
    #[arg(long, default_value = sluice_store_postgres::DEFAULT_SCHEMA)]
    pub pg_schema: String,
    #[arg(long, env = "SLUICE_REDIS_URL", default_value = crate::dev::DEFAULT_REDIS_URL)]
    pub redis_url: String,
    /// The Redis projection (its serving alias).
    #[arg(long, default_value = "cms")]
    pub projection: String,
    #[arg(long, env = "SLUICE_BROKERS", default_value = crate::dev::DEFAULT_BROKERS)]
    pub brokers: String,
    /// Then search for the highest rate the whole system sustains, holding
    /// each candidate this many seconds (0: no search).
    #[arg(long, default_value_t = 0)]
    pub find_max_seconds: u64,
    #[command(flatten)]
    pub output: report::Output,
}

/// Bytes of the Avro snapshot a create-article command with a 500-byte body
/// writes (the broker floor sends payloads of this size).
const SNAPSHOT_BYTES: usize = 600;

/// How long a command may take to show up before it counts as missing.
const VISIBLE_DEADLINE: Duration = Duration::from_secs(120);

pub async fn run(args: E2eArgs) -> anyhow::Result<()> {
    let mut figures = Vec::new();
    let mut distributions = Vec::new();
    for &rate in &args.rates {
        let ours = commands_at(&args, rate, args.seconds).await?;
        let floor = raw_latency(
            &args.brokers,
            &format!("bench.e2e{}.floor", std::process::id()),
            rate,
            args.seconds,
            SNAPSHOT_BYTES,
        )
        .await?;
        let (redis, postgres) = (durations(&ours.redis), durations(&ours.postgres));
        distributions.push((format!("Redis read model, {rate}/s"), redis.clone()));
        distributions.push((format!("PostgreSQL read model, {rate}/s"), postgres.clone()));
        distributions.push((format!("broker floor, {rate}/s"), floor.clone()));
        let floor = Quantiles::of(floor);
        let (redis, postgres) = (Quantiles::of(redis), Quantiles::of(postgres));
        println!(
            "end-to-end at {rate} commands/s for {} s: {} accepted ({:.0}/s achieved), 202 -> visible (p50 / p95 / p99)",
            args.seconds, ours.accepted, ours.achieved
        );
        for (name, q) in [
            ("Redis read model", &redis),
            ("PostgreSQL read model", &postgres),
            ("broker floor, produce -> consumable", &floor),
        ] {
            println!(
                "  {name:<36}: {:>7.1} / {:>7.1} / {:>7.1} ms ({} samples)",
                ms(q.p50),
                ms(q.p95),
                ms(q.p99),
                q.samples
            );
        }
        figures.push(json!({
            "rate": rate,
            "seconds": args.seconds,
            "accepted": ours.accepted,
            "achieved_per_second": ours.achieved,
            "redis_ms": redis.json(),
            "postgres_ms": postgres.json(),
            "broker_floor_ms": floor.json(),
        }));
    }
    let plot = report::plot_path(&args.output.results, "e2e");
    super::plot::latency_file(&plot, "Command answered -> visible in the read model", &distributions)?;
    println!("(plot written to {})", plot.display());
    let rss = peak_rss();
    println!("peak RSS since start (VmHWM):");
    for (name, mib) in &rss {
        println!("  {name:<20}: {mib:>7.1} MiB");
    }
    let rss: serde_json::Map<String, serde_json::Value> =
        rss.into_iter().map(|(n, m)| (n.to_string(), json!(m))).collect();
    let mut table = rows(&figures, &rss);
    let mut section = json!({"latency": figures, "peak_rss_mib": rss});
    if args.find_max_seconds > 0 {
        let found = super::sustained::search(&args).await?;
        table.push(found.row());
        section["max_sustained"] = found.json();
    }
    section["table"] = json!(table);
    report::record(&args.output.results, "e2e", section).await?;
    Ok(())
}

/// The summary table's lines: each read model's p50 and p99 beside the
/// broker floor's at each rate, and the largest service's peak RSS.
fn rows(figures: &[serde_json::Value], rss: &serde_json::Map<String, serde_json::Value>) -> Vec<serde_json::Value> {
    let mut table = Vec::new();
    for f in figures {
        let rate = f["rate"].as_u64().unwrap_or(0);
        for (model, key) in [("Redis", "redis_ms"), ("PostgreSQL", "postgres_ms")] {
            for q in ["p50", "p99"] {
                table.push(report::row(
                    &format!("202 -> visible in {model}, {q} at {rate}/s"),
                    "ms",
                    f[key][q].as_f64().unwrap_or(f64::NAN),
                    &format!("broker floor, produce -> consumable {q}"),
                    f["broker_floor_ms"][q].as_f64(),
                ));
            }
        }
    }
    let largest = rss
        .iter()
        .filter(|(name, _)| *name != "tansu")
        .filter_map(|(name, mib)| Some((name, mib.as_f64()?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((name, mib)) = largest {
        table.push(report::rss_row(&format!("largest service peak RSS ({name})"), mib));
    }
    table
}

/// When a command was answered and how long it took to become visible.
pub(super) type Samples = Vec<(Instant, Duration)>;

pub(super) fn durations(samples: &Samples) -> Vec<Duration> {
    samples.iter().map(|s| s.1).collect()
}

pub(super) struct Measured {
    pub accepted: usize,
    pub achieved: f64,
    /// 202 -> visible, one sample per command seen.
    pub redis: Samples,
    pub postgres: Samples,
}

/// Sends create-article commands at `rate` for the run's seconds; each
/// accepted id goes to both watchers with the time of its answer.
pub(super) async fn commands_at(args: &E2eArgs, rate: u64, seconds: u64) -> anyhow::Result<Measured> {
    let (to_redis, redis_ids) = mpsc::unbounded_channel();
    let (to_pg, pg_ids) = mpsc::unbounded_channel();
    let redis = tokio::spawn(watch_redis(args.redis_url.clone(), args.projection.clone(), redis_ids));
    let postgres = tokio::spawn(watch_postgres(args.database_url.clone(), args.pg_schema.clone(), pg_ids));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let url = args.target.articles_url();
    let total = (rate * seconds) as usize;
    let run = format!("{}-{rate}-{seconds}", std::process::id());
    let start = Instant::now();
    let first = tokio::time::Instant::now();
    let step = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let accepted = futures::stream::iter(0..total)
        .then(|i| async move {
            tokio::time::sleep_until(first + step * i as u32).await;
            i
        })
        .map(|i| {
            let (http, url, token, run) = (http.clone(), url.clone(), args.target.token.clone(), run.clone());
            let (to_redis, to_pg) = (to_redis.clone(), to_pg.clone());
            async move {
                let body = json!({"title": format!("E2e {run}-{i}"), "body": "x".repeat(500)});
                let answer = http.post(&url).bearer_auth(token).json(&body).send().await.ok()?;
                if answer.status() != 202 {
                    return None;
                }
                let answered = Instant::now();
                let id = answer.json::<serde_json::Value>().await.ok()?["id"].as_str()?.to_string();
                let _ = to_redis.send((id.clone(), answered));
                let _ = to_pg.send((id, answered));
                Some(())
            }
        })
        .buffer_unordered(args.target.concurrency.max(1) * 4)
        .filter(|ok| std::future::ready(ok.is_some()))
        .count()
        .await;
    let achieved = accepted as f64 / start.elapsed().as_secs_f64();
    drop((to_redis, to_pg));
    let (redis, postgres) = (redis.await??, postgres.await??);
    anyhow::ensure!(accepted > 0, "no command was accepted at {}", args.target.command_url);
    Ok(Measured { accepted, achieved, redis, postgres })
}

/// Ids waiting to be seen, with the time their command was answered.
type Pending = HashMap<String, Instant>;

/// Takes new ids from `ids` and polls for the pending ones with `seen`
/// until every id was seen (or waited `VISIBLE_DEADLINE` after the last
/// one came); how long each took.
async fn watch<F, Fut>(
    mut ids: mpsc::UnboundedReceiver<(String, Instant)>,
    every: Duration,
    mut seen: F,
) -> anyhow::Result<Samples>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<String>>>,
{
    let mut pending = Pending::new();
    let mut took = Vec::new();
    let mut open = true;
    let mut last_new = Instant::now();
    while open || !pending.is_empty() {
        while let Ok((id, at)) = ids.try_recv() {
            pending.insert(id, at);
            last_new = Instant::now();
        }
        if open && ids.is_closed() && ids.is_empty() {
            open = false;
        }
        if !pending.is_empty() {
            let now_seen = seen(pending.keys().cloned().collect()).await?;
            let now = Instant::now();
            for id in now_seen {
                if let Some(at) = pending.remove(&id) {
                    took.push((at, now.saturating_duration_since(at)));
                }
            }
        }
        if !open && last_new.elapsed() > VISIBLE_DEADLINE {
            eprintln!(
                "warning: {} articles were not visible {VISIBLE_DEADLINE:?} after the last command",
                pending.len()
            );
            break;
        }
        tokio::time::sleep(every).await;
    }
    Ok(took)
}

async fn watch_redis(
    url: String,
    alias: String,
    ids: mpsc::UnboundedReceiver<(String, Instant)>,
) -> anyhow::Result<Samples> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let generation = sluice_store_redis::generation::serving(&mut conn, &alias).await?;
    let key = sluice_store_redis::keys::ids(&generation, "article");
    watch(ids, Duration::from_millis(2), |pending| {
        let (mut conn, key) = (conn.clone(), key.clone());
        async move {
            let members: Vec<bool> = redis::cmd("SMISMEMBER").arg(&key).arg(&pending).query_async(&mut conn).await?;
            Ok(pending.into_iter().zip(members).filter(|(_, m)| *m).map(|(id, _)| id).collect())
        }
    })
    .await
}

async fn watch_postgres(
    url: String,
    schema: String,
    ids: mpsc::UnboundedReceiver<(String, Instant)>,
) -> anyhow::Result<Samples> {
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let statement = db.prepare(&format!("select id from \"{schema}\".articles where id = any($1::text[])")).await?;
    watch(ids, Duration::from_millis(5), |pending| {
        let (db, statement) = (&db, &statement);
        async move { Ok(db.query(statement, &[&pending]).await?.iter().map(|r| r.get(0)).collect()) }
    })
    .await
}

/// Peak resident memory (VmHWM) of each process of the local stack, MiB.
fn peak_rss() -> Vec<(&'static str, f64)> {
    const PROCESSES: [&str; 8] = [
        "command-api",
        "outbox-relay",
        "schema-registry",
        "projector-redis",
        "projector-postgres",
        "query-api",
        "lag-exporter",
        "tansu",
    ];
    PROCESSES
        .into_iter()
        .filter_map(|name| {
            let pid = crate::dev::dev_pid(name).ok()?;
            Some((name, super::relay::peak_rss_kib(pid)? as f64 / 1024.0))
        })
        .collect()
}
