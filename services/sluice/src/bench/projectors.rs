//! Each projector beside the raw consume rate of the same topic and the raw
//! write rate of the same store, in one run: the applied rate of a backlog
//! (the projector is up and caught up, then paused while the backlog is
//! produced), and the bootstrap of a large compacted topic from scratch,
//! with the projector's peak RSS. The projectors are the release service
//! binaries, started as the services would be.

use anyhow::Context;
use futures::StreamExt;
use sluice_avro::{RegistryEncoder, RegistryEndpoint};
use sluice_core::Secret;
use sluice_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use sluice_kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use sluice_kafka::rdkafka::util::Timeout;
use sluice_kafka::rdkafka::{Offset, TopicPartitionList};
use sluice_kafka::{CleanupPolicy, TopicSpec};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ProjectorsArgs {
    /// Records of the backlog the running projectors apply.
    #[arg(long, default_value_t = 200_000)]
    pub records: usize,
    /// Records of the topic the projectors bootstrap from (the backlog's
    /// included).
    #[arg(long, default_value_t = 1_000_000)]
    pub bootstrap_records: usize,
    /// Distinct articles (keys); each gets a new version per round.
    #[arg(long, default_value_t = 20_000)]
    pub keys: usize,
    #[arg(long, env = "SLUICE_BROKERS", default_value = crate::dev::DEFAULT_BROKERS)]
    pub brokers: String,
    #[arg(long, env = "SLUICE_REGISTRY_URL", default_value = "http://127.0.0.1:8081")]
    pub registry_url: String,
    /// A write token of the registry (the bench registers its schema).
    #[arg(long, env = "SLUICE_REGISTRY_TOKEN", hide_env_values = true, default_value = crate::dev::DEV_REGISTRY_TOKEN)]
    pub registry_token: String,
    #[arg(long, env = "SLUICE_REDIS_URL", default_value = crate::dev::DEFAULT_REDIS_URL)]
    pub redis_url: String,
    #[arg(long, env = "SLUICE_DATABASE_URL", default_value = crate::dev::DEV_DATABASE_URL)]
    pub database_url: String,
    #[arg(long, default_value = "schemas")]
    pub schemas_dir: String,
    #[command(flatten)]
    pub output: super::report::Output,
}

const PARTITIONS: i32 = 3;
/// Records per raw store round trip: the projectors' default batch size.
const RAW_BATCH: usize = 500;

pub async fn run(args: ProjectorsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.keys >= RAW_BATCH, "--keys must be at least {RAW_BATCH}");
    let run = std::process::id();
    let prefix = format!("bench{run}");
    let topic = sluice_core::topics::state_topic(&prefix, "article");
    let spec = TopicSpec { name: topic.clone(), partitions: PARTITIONS, cleanup: CleanupPolicy::Compact };
    sluice_kafka::ensure_topics(&args.brokers, &[spec]).await?;
    let set = sluice_avro::SchemaSet::load(args.schemas_dir.as_ref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let latest = set.latest("article").context("no article schema")?;
    let registry = RegistryEndpoint::new(&args.registry_url, Secret::new(args.registry_token.clone()));
    let encoder = RegistryEncoder::register(&registry, &format!("{topic}-value"), &latest.text).await?;
    let producer = sluice_kafka::producer(&args.brokers, "sluice-bench-projectors")?;
    let pg_schema = |store: &str| format!("bench_{run}_{store}");

    // Applied rate: each projector up and caught up on an empty topic,
    // paused, then the backlog is produced and it is let go.
    let projectors = [
        Projector::start(&args, &prefix, "redis", &pg_schema("redis"))?,
        Projector::start(&args, &prefix, "postgres", &pg_schema("postgres"))?,
    ];
    for p in &projectors {
        p.wait_ready(Duration::from_secs(120)).await?;
        sluice_stack::signal_pid(p.pid(), sluice_stack::SIGSTOP);
    }
    let articles = Articles { keys: args.keys, run };
    let produced = produce(&producer, &encoder, &topic, &articles, 0..args.records).await?;
    println!(
        "projectors: {} article snapshots ({} keys, {} partitions), produced at {:.0} records/s",
        args.records,
        args.keys,
        PARTITIONS,
        args.records as f64 / produced.as_secs_f64()
    );
    let first_consume = raw_consume(&args.brokers, &topic, args.records).await?;
    let redis_raw = raw_redis(&args.redis_url, run, &articles, args.records).await?;
    let mut applied = Vec::new();
    for p in &projectors {
        sluice_stack::signal_pid(p.pid(), sluice_stack::SIGCONT);
        applied.push(p.wait_position(&topic, args.records as i64, Duration::from_secs(1800)).await?);
    }
    // The raw PostgreSQL table is the projector's own articles table's
    // twin (columns, generated search column, indexes).
    let pg_raw = raw_postgres(&args.database_url, &pg_schema("postgres"), &articles, args.records).await?;
    // Raw consume again, once the broker is idle: the faster run counts.
    let consume = first_consume.min(raw_consume(&args.brokers, &topic, args.records).await?);
    let rate = |d: Duration| args.records as f64 / d.as_secs_f64();
    println!("  raw consume (no group, faster of two runs) : {:>8.0} records/s", rate(consume));
    println!("  raw Redis writes (HSET, pipelined by {RAW_BATCH})   : {:>8.0} records/s", rate(redis_raw));
    println!("  projector-redis, applied                    : {:>8.0} records/s", rate(applied[0]));
    println!(
        "    ratio to the slower of raw consume and raw Redis : {:.2}",
        rate(applied[0]) / rate(consume).min(rate(redis_raw))
    );
    println!("  raw PostgreSQL upserts (UNNEST, {RAW_BATCH} rows)     : {:>8.0} records/s", rate(pg_raw));
    println!("  projector-postgres, applied                 : {:>8.0} records/s", rate(applied[1]));
    println!(
        "    ratio to the slower of raw consume and raw PostgreSQL : {:.2}",
        rate(applied[1]) / rate(consume).min(rate(pg_raw))
    );
    for p in projectors {
        p.stop();
    }
    let mut table = vec![];
    for (store, applied, raw_store) in [("redis", applied[0], redis_raw), ("postgres", applied[1], pg_raw)] {
        let (slower, which) =
            if consume >= raw_store { (consume, "raw consume") } else { (raw_store, "raw store writes") };
        table.push(super::report::stage_row(
            &format!("projector-{store}, {}-record backlog applied", args.records),
            rate(applied),
            &format!("the slower of raw consume and raw {store} ({which})"),
            rate(slower),
        ));
    }

    // Bootstrap from scratch of the whole topic, beside raw consume of it.
    let total = args.bootstrap_records.max(args.records);
    produce(&producer, &encoder, &topic, &articles, args.records..total).await?;
    println!("bootstrap of a {total}-record compacted topic ({} keys)", args.keys);
    let mut consume = raw_consume(&args.brokers, &topic, total).await?;
    let rate = |d: Duration| total as f64 / d.as_secs_f64();
    let mut built = Vec::new();
    for store in ["redis", "postgres"] {
        let p = Projector::start(&args, &prefix, store, &pg_schema(&format!("{store}_boot")))?;
        let took = p.wait_ready(Duration::from_secs(3600)).await?;
        built.push((store, took, p.peak_rss_mib()));
        p.stop();
    }
    consume = consume.min(raw_consume(&args.brokers, &topic, total).await?);
    println!("  raw consume (the faster of two runs)        : {:>8.0} records/s", rate(consume));
    for (store, took, rss) in built {
        println!(
            "  projector-{store:<8} ready after {:>6.1} s      : {:>8.0} records/s, ratio {:.2}, peak RSS {rss:.1} MiB",
            took.as_secs_f64(),
            rate(took),
            rate(took) / rate(consume)
        );
        table.push(super::report::row(
            &format!("projector-{store}, bootstrap of {total} records"),
            "/s",
            rate(took),
            "raw consume of the topic",
            Some(rate(consume)),
        ));
        table.push(super::report::rss_row(&format!("projector-{store}, peak RSS bootstrapping"), rss));
    }
    let figures =
        serde_json::json!({"records": args.records, "bootstrap_records": total, "keys": args.keys, "table": table});
    super::report::record(&args.output.results, "projectors", figures).await
}

/// The bench's article snapshots: record `i` is version `i / keys + 1` of
/// article `i % keys`.
struct Articles {
    keys: usize,
    run: u32,
}

impl Articles {
    fn get(&self, i: usize) -> cms_domain::Article {
        let key = i % self.keys;
        let version = (i / self.keys + 1) as i64;
        let at = 1_700_000_000_000_000 + i as i64;
        cms_domain::Article {
            id: format!("{:08x}-0000-4000-8000-{:012x}", self.run, key),
            slug: format!("article-{key}"),
            title: format!("Article {key}, version {version}"),
            body: "A body of a few sentences, as an article has. ".repeat(6),
            author_id: None,
            status: cms_domain::ArticleStatus::Draft,
            version,
            created_at: at,
            updated_at: at,
            published_at: None,
            tags: vec!["bench".into(), format!("t{}", key % 10)],
            scheduled_at: None,
        }
    }
}

async fn produce(
    producer: &FutureProducer,
    encoder: &RegistryEncoder,
    topic: &str,
    articles: &Articles,
    range: std::ops::Range<usize>,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let results = futures::stream::iter(range)
        .map(|i| {
            let article = articles.get(i);
            let bytes = encoder.encode(&article);
            async move {
                let bytes = bytes?;
                let version = article.version.to_string();
                let headers = sluice_kafka::rdkafka::message::OwnedHeaders::new()
                    .insert(sluice_kafka::rdkafka::message::Header {
                        key: sluice_core::headers::AGGREGATE_VERSION,
                        value: Some(version.as_str()),
                    })
                    .insert(sluice_kafka::rdkafka::message::Header {
                        key: sluice_core::headers::AGGREGATE_TYPE,
                        value: Some("article"),
                    });
                let record = FutureRecord::to(topic).key(&article.id).payload(&bytes).headers(headers);
                producer.send(record, Timeout::Never).await.map_err(|(e, _)| anyhow::Error::from(e))?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(10_000)
        .collect::<Vec<_>>()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    Ok(start.elapsed())
}

/// Time to read `records` records of `topic` from the beginning, from the
/// first one received: librdkafka's own poll loop on a thread of its own, no
/// group to join, nothing done with the records.
async fn raw_consume(brokers: &str, topic: &str, records: usize) -> anyhow::Result<Duration> {
    let consumer: BaseConsumer = sluice_kafka::consumer_config(brokers, &format!("bench-raw-{}", std::process::id()))
        .set("queued.max.messages.kbytes", "65536")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    tokio::task::spawn_blocking(move || {
        let (mut seen, mut start, mut idle) = (0usize, None, Instant::now());
        while seen < records {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(_)) => {
                    start.get_or_insert_with(Instant::now);
                    seen += 1;
                    idle = Instant::now();
                }
                Some(Err(e)) => return Err(anyhow::Error::from(e)),
                None => anyhow::ensure!(idle.elapsed() < Duration::from_secs(60), "raw consume stalled at {seen}"),
            }
        }
        Ok(start.map_or(Duration::ZERO, |s| s.elapsed()))
    })
    .await?
}

/// Time to write the same snapshots to Redis as hashes, pipelined.
async fn raw_redis(url: &str, run: u32, articles: &Articles, records: usize) -> anyhow::Result<Duration> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let docs: Vec<(String, i64, String)> = (0..records)
        .map(|i| {
            let a = articles.get(i);
            let doc = serde_json::to_string(&a).unwrap_or_default();
            (format!("bench-raw:{run}:article:{}", a.id), a.version, doc)
        })
        .collect();
    let start = Instant::now();
    for chunk in docs.chunks(RAW_BATCH) {
        let mut pipe = redis::pipe();
        for (key, version, doc) in chunk {
            pipe.cmd("HSET").arg(key).arg("version").arg(version).arg("doc").arg(doc).ignore();
        }
        let _: () = pipe.query_async(&mut conn).await?;
    }
    let took = start.elapsed();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("bench-raw:{run}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let _: () = redis::cmd("UNLINK").arg(keys).query_async(&mut conn).await?;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    Ok(took)
}

/// Time to upsert the same snapshots, version-guarded, into a twin of the
/// projector's articles table, `RAW_BATCH` rows per statement.
async fn raw_postgres(url: &str, schema: &str, articles: &Articles, records: usize) -> anyhow::Result<Duration> {
    let (db, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let raw = format!("\"{schema}\".raw_articles");
    db.batch_execute(&format!("create table {raw} (like \"{schema}\".articles including all)")).await?;
    let upsert = db
        .prepare(&format!(
            "insert into {raw} as t (id, slug, title, body, author_id, status, tags, created_at, updated_at, version)
             select i.id, i.slug, i.title, i.body, null, i.status, string_to_array(i.tags, ','),
                    to_timestamp(i.at / 1e6), to_timestamp(i.at / 1e6), i.version
               from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
                           $8::bigint[]) as i(id, slug, title, body, status, tags, at, version)
             on conflict (id) do update set slug = excluded.slug, title = excluded.title, body = excluded.body,
                    status = excluded.status, tags = excluded.tags, updated_at = excluded.updated_at,
                    version = excluded.version
              where t.version < excluded.version"
        ))
        .await?;
    let start = Instant::now();
    for from in (0..records).step_by(RAW_BATCH) {
        let batch: Vec<cms_domain::Article> =
            (from..(from + RAW_BATCH).min(records)).map(|i| articles.get(i)).collect();
        let col = |f: &dyn Fn(&cms_domain::Article) -> String| batch.iter().map(f).collect::<Vec<String>>();
        let (ids, slugs, titles, bodies) =
            (col(&|a| a.id.clone()), col(&|a| a.slug.clone()), col(&|a| a.title.clone()), col(&|a| a.body.clone()));
        let (statuses, tags) = (col(&|a| a.status.as_str().to_string()), col(&|a| a.tags.join(",")));
        let ats: Vec<i64> = batch.iter().map(|a| a.updated_at).collect();
        let versions: Vec<i64> = batch.iter().map(|a| a.version).collect();
        db.execute(&upsert, &[&ids, &slugs, &titles, &bodies, &statuses, &tags, &ats, &versions]).await?;
    }
    let took = start.elapsed();
    db.batch_execute(&format!("drop table {raw}")).await?;
    Ok(took)
}

/// A projector service (release binary) on the bench topic.
struct Projector {
    child: Child,
    metrics_url: String,
    ready_url: String,
    http: reqwest::Client,
}

impl Projector {
    fn start(args: &ProjectorsArgs, prefix: &str, store: &str, pg_schema: &str) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let binary = std::env::current_exe()?.with_file_name(format!("projector-{store}"));
        let mut command = Command::new(&binary);
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("SLUICE_")) {
            command.env_remove(name);
        }
        if store == "redis" {
            command.env("SLUICE_REDIS_URL", &args.redis_url);
        } else {
            command.env("SLUICE_DATABASE_URL", &args.database_url).env("SLUICE_PG_SCHEMA", pg_schema);
        }
        command
            .env("SLUICE_LISTEN", format!("127.0.0.1:{port}"))
            .env("SLUICE_BROKERS", &args.brokers)
            .env("SLUICE_REGISTRY_URL", &args.registry_url)
            .env("SLUICE_TOPIC_PREFIX", prefix)
            .env("SLUICE_AGGREGATES", "article")
            .env("SLUICE_PROJECTION", format!("{prefix}-{pg_schema}").replace('_', "-"))
            .env("SLUICE_SCHEMAS_DIR", &args.schemas_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().with_context(|| format!("start {}", binary.display()))?;
        Ok(Self {
            child,
            metrics_url: format!("http://127.0.0.1:{port}/metrics"),
            ready_url: format!("http://127.0.0.1:{port}/readyz"),
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time from now until it says it is ready (bootstrap complete).
    async fn wait_ready(&self, deadline: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        loop {
            if let Ok(r) = self.http.get(&self.ready_url).send().await
                && r.status().is_success()
            {
                return Ok(start.elapsed());
            }
            anyhow::ensure!(start.elapsed() < deadline, "a projector was not ready within {deadline:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Time from its first stored position on `topic` until their sum
    /// reaches `end` (all partitions, from an empty topic).
    async fn wait_position(&self, topic: &str, end: i64, deadline: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let mut first = None;
        loop {
            let position = self.position(topic).await.unwrap_or(0);
            if position > 0 && first.is_none() {
                first = Some(Instant::now());
            }
            if position >= end {
                return Ok(first.map_or(Duration::ZERO, |f| f.elapsed()));
            }
            anyhow::ensure!(start.elapsed() < deadline, "a projector did not apply {end} records within {deadline:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn position(&self, topic: &str) -> anyhow::Result<i64> {
        let text = self.http.get(&self.metrics_url).send().await?.text().await?;
        let label = format!("topic=\"{topic}\"");
        Ok(text
            .lines()
            .filter(|l| l.starts_with("sluice_projection_position_offset{") && l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as i64)
    }

    fn peak_rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))?
                    .trim()
                    .trim_end_matches(" kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map_or(0.0, |kib| kib / 1024.0)
    }

    fn stop(mut self) {
        sluice_stack::signal_pid(self.pid(), sluice_stack::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
