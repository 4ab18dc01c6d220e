//! Relay throughput beside a raw producer sending the same keys and payloads
//! to the same broker, and commit-to-consumable latency at a steady rate
//! beside the broker's own produce-to-consumable floor, in one run.

use super::report::row;
use super::stats::{ms, percentiles};
use anyhow::Context;
use futures::StreamExt;
use sluice_kafka::rdkafka::Message;
use sluice_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use sluice_kafka::rdkafka::producer::FutureRecord;
use sluice_kafka::rdkafka::util::Timeout;
use sluice_kafka::{CleanupPolicy, TopicSpec};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct RelayArgs {
    /// Rows for the throughput runs.
    #[arg(long, default_value_t = 50_000)]
    pub rows: usize,
    #[arg(long, default_value_t = 600)]
    pub payload_bytes: usize,
    /// Steady rate for the latency runs, rows per second.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Also relay one transaction of this many rows and report the relay's peak RSS.
    #[arg(long)]
    pub large_rows: Option<usize>,
    #[arg(long, env = "SLUICE_DATABASE_URL", default_value = crate::dev::DEV_DATABASE_URL)]
    pub database_url: String,
    #[arg(long, env = "SLUICE_BROKERS", default_value = crate::dev::DEFAULT_BROKERS)]
    pub brokers: String,
    #[arg(long, default_value = "http://127.0.0.1:9090/metrics")]
    pub relay_metrics: String,
    #[command(flatten)]
    pub output: super::report::Output,
}

const KEYS: usize = 1000;

pub async fn run(args: RelayArgs) -> anyhow::Result<()> {
    let run = std::process::id();
    let aggregate = format!("bench{run}");
    let relay_topic = format!("sluice.{aggregate}.state");
    let raw_topic = format!("bench.raw{run}.state");
    sluice_kafka::ensure_topics(
        &args.brokers,
        &[TopicSpec { name: raw_topic.clone(), partitions: 3, cleanup: CleanupPolicy::Compact }],
    )
    .await?;
    let (db, conn) = tokio_postgres::connect(&args.database_url, tokio_postgres::NoTls)
        .await
        .context("connect to the local stack's database")?;
    tokio::spawn(conn);
    let relay_pid = relay_pid()?;
    let probe = AckProbe::new(&args.relay_metrics)?;
    let payload = vec![b'x'; args.payload_bytes];

    // Warm-up: the relay creates the bench topic.
    let before = probe.acknowledged().await?;
    insert_rows(&db, OUTBOX, &aggregate, 0, 1, &payload).await?;
    probe.wait_acknowledged(before + 1, Duration::from_secs(60)).await?;

    // Throughput, raw producer: the same keys and payloads, without and with
    // the seven headers every Sluice record carries (tansu stores each header
    // as a row, so they cost the broker more than the payload).
    let producer = sluice_kafka::producer(&args.brokers, "sluice-bench-raw")?;
    let raw = raw_throughput(&producer, &raw_topic, args.rows, &payload, false).await?;
    let raw_headers = raw_throughput(&producer, &raw_topic, args.rows, &payload, true).await?;

    // Throughput, relay: the rows wait in the outbox while the relay is
    // paused, then it relays the backlog.
    let mut pids: Vec<(&str, u32)> =
        ["outbox-relay", "tansu"].into_iter().filter_map(|n| crate::dev::dev_pid(n).ok().map(|p| (n, p))).collect();
    // PostgreSQL's logical decoding runs in the relay's WAL sender process.
    pids.extend(wal_senders().into_iter().map(|p| ("postgres wal sender", p)));
    // (Its metrics endpoint does not answer while it is stopped.)
    let before = probe.acknowledged().await?;
    sluice_stack::signal_pid(relay_pid, sluice_stack::SIGSTOP);
    let inserted = insert_backlog(&db, OUTBOX, &aggregate, args.rows, &payload).await;
    let cpu_before = cpu_seconds(&pids);
    sluice_stack::signal_pid(relay_pid, sluice_stack::SIGCONT);
    let start = Instant::now();
    inserted?;
    probe.wait_acknowledged(before + args.rows as u64, Duration::from_secs(3600)).await?;
    let relayed = start.elapsed();
    let cpu_after = cpu_seconds(&pids);
    let raw_rate = args.rows as f64 / raw.as_secs_f64();
    let raw_headers_rate = args.rows as f64 / raw_headers.as_secs_f64();
    let relay_rate = args.rows as f64 / relayed.as_secs_f64();
    println!("throughput ({} rows, {} B payloads, {KEYS} keys, 3 partitions)", args.rows, args.payload_bytes);
    println!("  raw rdkafka producer               : {raw_rate:>8.0} records/s");
    println!("  raw producer with the 7 headers    : {raw_headers_rate:>8.0} records/s");
    println!("  relay (committed -> acked)         : {relay_rate:>8.0} rows/s");
    println!(
        "  ratio to raw / to raw with headers : {:.2} / {:.2}",
        relay_rate / raw_rate,
        relay_rate / raw_headers_rate
    );
    let used: Vec<String> = pids
        .iter()
        .zip(cpu_before.iter().zip(&cpu_after))
        .map(|((n, _), (b, a))| format!("{n} {:.1} s", a - b))
        .collect();
    println!(
        "  CPU used while relaying            : {} (2 cores, {:.1} s wall)",
        used.join(", "),
        relayed.as_secs_f64()
    );

    // Latency at a steady rate.
    let floor =
        percentiles(&mut raw_latency(&args.brokers, &raw_topic, args.rate, args.seconds, args.payload_bytes).await?);
    let relay = percentiles(
        &mut outbox_latency(
            &args.brokers,
            &db,
            OUTBOX,
            &aggregate,
            &relay_topic,
            Steady { rate: args.rate, seconds: args.seconds, payload_bytes: args.payload_bytes },
        )
        .await?,
    );
    println!("latency at {} rows/s for {} s (p50 / p99)", args.rate, args.seconds);
    println!("  broker floor, produce -> consumable : {:>7.1} / {:>7.1} ms", ms(floor.0), ms(floor.1));
    println!("  relay, commit -> consumable         : {:>7.1} / {:>7.1} ms", ms(relay.0), ms(relay.1));

    let backlog = format!("relay, {}-row backlog, every header", args.rows);
    let mut table = vec![
        super::report::stage_row(&backlog, relay_rate, "raw producer, the same 7 headers", raw_headers_rate),
        row(&backlog, "/s", relay_rate, "raw producer, no header", Some(raw_rate)),
    ];
    for (q, ours, broker) in [("p50", relay.0, floor.0), ("p99", relay.1, floor.1)] {
        let figure = format!("relay commit -> consumable {q} at {}/s", args.rate);
        table.push(row(&figure, "ms", ms(ours), &format!("broker floor {q}"), Some(ms(broker))));
    }
    if let Some(rows) = args.large_rows {
        table.extend(large_transaction(&probe, &db, &aggregate, rows, relay_pid).await?);
    }
    let figures =
        serde_json::json!({"rows": args.rows, "payload_bytes": args.payload_bytes, "rate": args.rate, "table": table});
    super::report::record(&args.output.results, "relay", figures).await
}

fn relay_pid() -> anyhow::Result<u32> {
    crate::dev::dev_pid("outbox-relay").context("the local stack's relay is not running (make up)")
}

/// PostgreSQL processes whose title says they are WAL senders.
fn wal_senders() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return vec![] };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with("postgres: walsender"))
        })
        .collect()
}

/// User + system CPU seconds of each process.
pub(super) fn cpu_seconds(pids: &[(&str, u32)]) -> Vec<f64> {
    let ticks = 100.0; // USER_HZ on Linux
    pids.iter()
        .map(|(_, pid)| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(')')?.1.to_string();
                    let fields: Vec<&str> = rest.split_whitespace().collect();
                    Some((fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?) / ticks)
                })
                .unwrap_or(0.0)
        })
        .collect()
}

async fn raw_throughput(
    producer: &sluice_kafka::rdkafka::producer::FutureProducer,
    topic: &str,
    rows: usize,
    payload: &[u8],
    with_headers: bool,
) -> anyhow::Result<Duration> {
    use sluice_kafka::rdkafka::message::{Header, OwnedHeaders};
    const NAMES: [&str; 7] = [
        "sluice.event_id",
        "sluice.event_type",
        "sluice.aggregate_type",
        "sluice.aggregate_version",
        "sluice.source_lsn",
        "sluice.committed_at",
        "traceparent",
    ];
    let start = Instant::now();
    let sends = futures::stream::iter(0..rows)
        .map(|i| async move {
            let key = format!("k{}", i % KEYS);
            let mut record = FutureRecord::to(topic).key(&key).payload(payload);
            if with_headers {
                let mut headers = OwnedHeaders::new_with_capacity(NAMES.len());
                for name in NAMES {
                    headers = headers.insert(Header { key: name, value: Some("0123456789abcdef0123456789abcdef") });
                }
                record = record.headers(headers);
            }
            producer.send(record, Timeout::Never).await.map_err(|(e, _)| e)
        })
        .buffer_unordered(10_000)
        .collect::<Vec<_>>()
        .await;
    let elapsed = start.elapsed();
    anyhow::ensure!(sends.iter().all(Result::is_ok), "raw producer failures");
    Ok(elapsed)
}

/// Commits `rows` rows into `table` in 1,000-row transactions (the
/// relaying process is paused meanwhile); warns when that took long enough
/// for PostgreSQL to drop a paused WAL sender's connection.
pub(super) async fn insert_backlog(
    db: &tokio_postgres::Client,
    table: &str,
    aggregate: &str,
    rows: usize,
    payload: &[u8],
) -> anyhow::Result<()> {
    let start = Instant::now();
    for chunk in (0..rows).step_by(1000) {
        insert_rows(db, table, aggregate, chunk, 1000.min(rows - chunk), payload).await?;
    }
    let took = start.elapsed();
    println!("  ({rows} rows committed in {:.1} s while paused)", took.as_secs_f64());
    if took > Duration::from_secs(50) {
        eprintln!("warning: longer than PostgreSQL's default wal_sender_timeout (60 s) allows a paused reader");
    }
    Ok(())
}

/// The stack's outbox table.
const OUTBOX: &str = "cms.outbox";

/// Inserts `count` rows into `table` in one transaction: keys `k0`..`k999`,
/// versions `from + 1`...
pub(super) async fn insert_rows(
    db: &tokio_postgres::Client,
    table: &str,
    aggregate: &str,
    from: usize,
    count: usize,
    payload: &[u8],
) -> anyhow::Result<()> {
    db.execute(
        &format!(
            "insert into {table} (id, aggregatetype, aggregateid, type, payload, aggregate_version)
             select gen_random_uuid(), $1, 'k' || ((g - 1) % 1000), 'BenchEvent', $2, g
             from generate_series($3::bigint + 1, $3::bigint + $4::bigint) g"
        ),
        &[&aggregate, &payload, &(from as i64), &(count as i64)],
    )
    .await?;
    Ok(())
}

/// Reads the relay's acknowledged-records counter, with one HTTP client for
/// the whole run (it is polled every few milliseconds).
pub(super) struct AckProbe {
    http: reqwest::Client,
    url: String,
}

impl AckProbe {
    pub(super) fn new(url: &str) -> anyhow::Result<Self> {
        Ok(Self { http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?, url: url.into() })
    }

    pub(super) async fn acknowledged(&self) -> anyhow::Result<u64> {
        let text = self.http.get(&self.url).send().await.context("relay metrics")?.text().await?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("sluice_relay_acknowledged_records_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64)
    }

    async fn wait_acknowledged(&self, target: u64, deadline: Duration) -> anyhow::Result<()> {
        wait_count(target, deadline, || self.acknowledged()).await
    }
}

/// Polls `count` every 5 ms until it reaches `target`; fails after `deadline`.
pub(super) async fn wait_count<F, Fut>(target: u64, deadline: Duration, mut count: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<u64>>,
{
    let start = Instant::now();
    while count().await? < target {
        anyhow::ensure!(start.elapsed() < deadline, "{target} records not acknowledged in {deadline:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// A consumer of `topic` from its current end (assigned, no group), so a
/// latency run does not first read what is already there.
fn fresh_consumer(brokers: &str, topic: &str) -> anyhow::Result<StreamConsumer> {
    use sluice_kafka::rdkafka::{Offset, TopicPartitionList};
    let consumer: StreamConsumer = sluice_kafka::consumer(brokers, &format!("bench-{}-{topic}", std::process::id()))?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions = metadata.topics().first().map(|t| t.partitions().len()).unwrap_or(0);
    anyhow::ensure!(partitions > 0, "topic {topic} has no partitions");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions as i32 {
        let (_, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
        assignment.add_partition_offset(topic, partition, Offset::Offset(high))?;
    }
    consumer.assign(&assignment)?;
    Ok(consumer)
}

/// Receive times of keys `lat-*`, until `expected` arrived or the deadline.
async fn collect(consumer: StreamConsumer, expected: usize, deadline: Duration) -> HashMap<String, Instant> {
    let mut seen = HashMap::new();
    let start = Instant::now();
    while seen.len() < expected && start.elapsed() < deadline {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            if key.starts_with("lat-") {
                seen.entry(key).or_insert_with(Instant::now);
            }
        }
    }
    seen
}

/// The broker's own produce -> consumable latency of `payload_bytes`
/// records sent to `topic` at `rate` for `seconds`: one sample per record.
pub(super) async fn raw_latency(
    brokers: &str,
    topic: &str,
    rate: u64,
    seconds: u64,
    payload_bytes: usize,
) -> anyhow::Result<Vec<Duration>> {
    let spec = TopicSpec { name: topic.to_string(), partitions: 3, cleanup: CleanupPolicy::Compact };
    sluice_kafka::ensure_topics(brokers, &[spec]).await?;
    let producer = sluice_kafka::producer(brokers, "sluice-bench-floor")?;
    let consumer = fresh_consumer(brokers, topic)?;
    let total = (rate * seconds) as usize;
    let receiver = tokio::spawn(collect(consumer, total, Duration::from_secs(seconds + 60)));
    tokio::time::sleep(Duration::from_secs(2)).await; // let the consumer join
    let mut sent = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    let payload = vec![b'x'; payload_bytes];
    for i in 0..total {
        tick.tick().await;
        let key = format!("lat-{i}");
        sent.insert(key.clone(), Instant::now());
        producer.send_result(FutureRecord::to(topic).key(&key).payload(&payload)).map_err(|(e, _)| e)?;
    }
    let received = receiver.await?;
    Ok(latencies(&sent, &received))
}

/// A steady insert load: `rate` rows per second for `seconds`.
#[derive(Clone, Copy)]
pub(super) struct Steady {
    pub rate: u64,
    pub seconds: u64,
    pub payload_bytes: usize,
}

/// Commit -> consumable latency of rows inserted one per transaction into
/// `table` at a steady rate, read back from `topic` by a fresh consumer.
pub(super) async fn outbox_latency(
    brokers: &str,
    db: &tokio_postgres::Client,
    table: &str,
    aggregate: &str,
    topic: &str,
    load: Steady,
) -> anyhow::Result<Vec<Duration>> {
    let consumer = fresh_consumer(brokers, topic)?;
    let total = (load.rate * load.seconds) as usize;
    let receiver = tokio::spawn(collect(consumer, total, Duration::from_secs(load.seconds + 60)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let payload = vec![b'x'; load.payload_bytes];
    let statement = db
        .prepare(&format!(
            "insert into {table} (id, aggregatetype, aggregateid, type, payload, aggregate_version)
             values (gen_random_uuid(), $1, $2, 'BenchEvent', $3, 1)"
        ))
        .await?;
    let mut committed = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / load.rate.max(1)));
    for i in 0..total {
        tick.tick().await;
        let key = format!("lat-{i}");
        db.execute(&statement, &[&aggregate, &key, &payload]).await?;
        committed.insert(key, Instant::now());
    }
    let received = receiver.await?;
    Ok(latencies(&committed, &received))
}

fn latencies(start: &HashMap<String, Instant>, end: &HashMap<String, Instant>) -> Vec<Duration> {
    let samples: Vec<Duration> =
        start.iter().filter_map(|(k, t0)| end.get(k).map(|t1| t1.saturating_duration_since(*t0))).collect();
    if samples.len() < start.len() {
        eprintln!("warning: {} of {} records were not received in time", start.len() - samples.len(), start.len());
    }
    samples
}

pub(super) fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

async fn large_transaction(
    probe: &AckProbe,
    db: &tokio_postgres::Client,
    aggregate: &str,
    rows: usize,
    pid: u32,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let before_rss = peak_rss_kib(pid).unwrap_or(0);
    let before = probe.acknowledged().await?;
    let payload = vec![b'x'; 100];
    let start = Instant::now();
    insert_rows(db, OUTBOX, aggregate, 0, rows, &payload).await?;
    let committed = start.elapsed();
    probe.wait_acknowledged(before + rows as u64, Duration::from_secs(3600)).await?;
    let total = start.elapsed();
    let after_rss = peak_rss_kib(pid).unwrap_or(0);
    println!("one transaction of {rows} rows (100 B payloads)");
    println!("  committed in {:.1} s, all acknowledged after {:.1} s", committed.as_secs_f64(), total.as_secs_f64());
    println!(
        "  relay peak RSS: {:.1} MiB before, {:.1} MiB after",
        before_rss as f64 / 1024.0,
        after_rss as f64 / 1024.0
    );
    Ok(vec![
        row(&format!("relay, one {rows}-row transaction"), "/s", rows as f64 / total.as_secs_f64(), "", None),
        super::report::rss_row("relay peak RSS after it", after_rss as f64 / 1024.0),
    ])
}
