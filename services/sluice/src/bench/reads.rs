//! query-api `eventual` reads beside raw Redis reads of the same keys, and
//! the latency of an on-demand refresh (`at-least` reads of writes the paused
//! projector has not applied).

use super::report::row;
use super::stats::{ms, percentiles};
use crate::load::CommandTarget;
use futures::StreamExt;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ReadsArgs {
    /// Articles created for the reads.
    #[arg(long, default_value_t = 2_000)]
    articles: usize,
    /// Reads of each kind.
    #[arg(long, default_value_t = 30_000)]
    reads: usize,
    /// Reads in flight at once (both kinds).
    #[arg(long, default_value_t = 32)]
    readers: usize,
    /// On-demand refreshes measured (one at a time).
    #[arg(long, default_value_t = 300)]
    refreshes: usize,
    #[arg(long, default_value = "http://127.0.0.1:8082")]
    query_url: String,
    #[arg(long, env = "SLUICE_REDIS_URL", hide_env_values = true, default_value = crate::dev::DEFAULT_REDIS_URL)]
    redis_url: String,
    #[arg(long, default_value = "cms")]
    projection: String,
    #[command(flatten)]
    target: CommandTarget,
    #[command(flatten)]
    output: super::report::Output,
}

struct Written {
    id: String,
    token: String,
}

async fn send(
    http: &reqwest::Client,
    target: &CommandTarget,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<Written> {
    let url = format!("{}{path}", target.command_url.trim_end_matches('/'));
    let r = http.post(&url).bearer_auth(&target.token).json(&body).send().await?;
    anyhow::ensure!(r.status() == 202, "{path}: {}", r.status());
    let answer: serde_json::Value = r.json().await?;
    let field = |f: &str| answer[f].as_str().map(str::to_string).ok_or_else(|| anyhow::anyhow!("no {f} in {answer}"));
    Ok(Written { id: field("id")?, token: field("consistency_token")? })
}

/// A deterministic spread of `n` picks among `len` keys.
fn picks(n: usize, len: usize) -> Vec<usize> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % len as u64) as usize
        })
        .collect()
}

pub async fn run(args: ReadsArgs) -> anyhow::Result<()> {
    let http =
        reqwest::Client::builder().timeout(Duration::from_secs(30)).pool_max_idle_per_host(args.readers).build()?;
    let run = std::process::id();
    let written: Vec<Written> = futures::stream::iter(0..args.articles)
        .map(|i| {
            let body = serde_json::json!({"title": format!("Read bench {run}-{i}"), "body": "x".repeat(500)});
            let (http, target) = (&http, &args.target);
            async move { send(http, target, "/articles", body).await }
        })
        .buffer_unordered(args.target.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let client = redis::Client::open(args.redis_url.as_str())?;
    let mut redis = client.get_multiplexed_async_connection().await?;
    let generation = sluice_store_redis::generation::serving(&mut redis, &args.projection).await?;
    let keys: Vec<String> =
        written.iter().map(|w| sluice_store_redis::keys::document(&generation, "article", &w.id)).collect();
    // Every article projected before anything is measured.
    let started = Instant::now();
    for key in &keys {
        while !redis::cmd("EXISTS").arg(key).query_async::<bool>(&mut redis).await? {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(300), "the articles were not projected in 5 min");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let order = picks(args.reads, written.len());

    let query = args.query_url.trim_end_matches('/').to_string();
    let urls = order.iter().map(|&i| format!("{query}/articles/{}", written[i].id));
    let (mut ours, ours_time) = timed(urls, args.readers, |url| {
        let http = &http;
        async move {
            let r = http.get(&url).send().await?;
            anyhow::ensure!(r.status() == 200, "GET {url}: {}", r.status());
            r.bytes().await?;
            Ok(())
        }
    })
    .await?;
    // The HTTP floor on this box: the same client and concurrency on a route
    // that does nothing (query-api's /healthz).
    let healthz = std::iter::repeat_n(format!("{query}/healthz"), args.reads);
    let (mut floor, floor_time) = timed(healthz, args.readers, |url| {
        let http = &http;
        async move {
            let r = http.get(&url).send().await?;
            anyhow::ensure!(r.status() == 200, "GET {url}: {}", r.status());
            r.bytes().await?;
            Ok(())
        }
    })
    .await?;
    let (mut raw, raw_time) = timed(order.iter().map(|&i| keys[i].clone()), args.readers, |key| {
        let mut conn = redis.clone();
        async move {
            let doc: Option<String> = redis::cmd("HGET").arg(&key).arg("doc").query_async(&mut conn).await?;
            anyhow::ensure!(doc.is_some(), "{key} has no document");
            Ok(())
        }
    })
    .await?;
    let refresh = refreshes(&args, &http, &written).await?;

    let (ours_p50, ours_p99) = percentiles(&mut ours);
    let (raw_p50, raw_p99) = percentiles(&mut raw);
    let (floor_p50, floor_p99) = percentiles(&mut floor);
    let floor_rate = args.reads as f64 / floor_time.as_secs_f64();
    let ours_rate = args.reads as f64 / ours_time.as_secs_f64();
    let raw_rate = args.reads as f64 / raw_time.as_secs_f64();
    println!("reads ({} articles, {} reads of each kind, {} in flight)", args.articles, args.reads, args.readers);
    println!(
        "  query-api eventual GET /articles/{{id}} : {ours_rate:>8.0} reads/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
        ms(ours_p50),
        ms(ours_p99)
    );
    println!(
        "  raw Redis HGET of the same keys        : {raw_rate:>8.0} reads/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
        ms(raw_p50),
        ms(raw_p99)
    );
    println!(
        "  HTTP floor (GET /healthz, same client)  : {floor_rate:>8.0} reads/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
        ms(floor_p50),
        ms(floor_p99)
    );
    println!("  ratio to raw Redis                     : {:.2}", ours_rate / raw_rate);
    println!("  ratio to the HTTP floor                : {:.2}", ours_rate / floor_rate);
    let (mut latencies, refreshed) = refresh;
    let (p50, p99) = percentiles(&mut latencies);
    println!(
        "  on-demand refresh (at-least read of an unprojected write, one at a time): p50 {:.2} ms  p99 {:.2} ms \
         ({refreshed} of {} answered refreshed)",
        ms(p50),
        ms(p99),
        latencies.len()
    );
    let table = [
        row(
            "query-api eventual GET /articles/{id}",
            "/s",
            ours_rate,
            "raw Redis HGET of the same keys",
            Some(raw_rate),
        ),
        row("query-api eventual GET /articles/{id}", "/s", ours_rate, "HTTP floor (GET /healthz)", Some(floor_rate)),
        row("query-api read p99", "ms", ms(ours_p99), "raw Redis HGET p99", Some(ms(raw_p99))),
        row("on-demand refresh p50", "ms", ms(p50), "", None),
        row("on-demand refresh p99", "ms", ms(p99), "", None),
    ];
    let figures =
        serde_json::json!({"articles": args.articles, "reads": args.reads, "readers": args.readers, "table": table});
    super::report::record(&args.output.results, "reads", figures).await
}

/// Runs `read` on every item, `readers` at a time: each one's latency and
/// the time they all took.
async fn timed<I, F, Fut>(items: I, readers: usize, read: F) -> anyhow::Result<(Vec<Duration>, Duration)>
where
    I: Iterator,
    F: Fn(I::Item) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let start = Instant::now();
    let latencies = futures::stream::iter(items)
        .map(|item| {
            let t = Instant::now();
            let done = read(item);
            async move { done.await.map(|()| t.elapsed()) }
        })
        .buffer_unordered(readers)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    Ok((latencies, start.elapsed()))
}

/// Pauses the projector, edits articles, reads each back with its token.
async fn refreshes(
    args: &ReadsArgs,
    http: &reqwest::Client,
    written: &[Written],
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let projector = crate::dev::dev_pid("projector-redis")?;
    sluice_stack::signal_pid(projector, sluice_stack::SIGSTOP);
    let measured = async {
        let mut edits = Vec::new();
        for w in written.iter().take(args.refreshes) {
            let body = serde_json::json!({"title": format!("Edited {}", w.id)});
            let path = format!("/articles/{}/edit", w.id);
            let edit = send(http, &args.target, &path, body).await?;
            edits.push(Written { id: w.id.clone(), token: edit.token });
        }
        let query = args.query_url.trim_end_matches('/');
        let (mut latencies, mut refreshed) = (Vec::new(), 0);
        for e in &edits {
            let t = Instant::now();
            let r = http
                .get(format!("{query}/articles/{}", e.id))
                .header("sluice-consistency", format!("at-least; token={}", e.token))
                .send()
                .await?;
            let fresh = r.headers().get("sluice-freshness").is_some_and(|v| v == "refreshed");
            anyhow::ensure!(r.status() == 200, "at-least read: {}", r.status());
            r.bytes().await?;
            latencies.push(t.elapsed());
            refreshed += usize::from(fresh);
        }
        anyhow::Ok((latencies, refreshed))
    }
    .await;
    sluice_stack::signal_pid(projector, sluice_stack::SIGCONT);
    measured
}
