use anyhow::Context;
use futures::StreamExt;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct LoadArgs {
    /// How many create-article commands to send.
    #[arg(long, default_value_t = 300)]
    pub articles: usize,
    #[command(flatten)]
    pub target: CommandTarget,
    /// Wait until every accepted article is in the Redis read model, then print the lag.
    #[arg(long)]
    pub wait: bool,
    #[arg(long, default_value_t = 120)]
    pub wait_seconds: u64,
    #[command(flatten)]
    pub lag: crate::lag::LagArgs,
}

/// Where commands go, and how many at once.
#[derive(clap::Args)]
pub struct CommandTarget {
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    #[arg(long, env = "SLUICE_COMMAND_URL", default_value = "http://127.0.0.1:8080")]
    pub command_url: String,
    /// Bearer token with write access.
    #[arg(long, env = "SLUICE_TOKEN", default_value = crate::dev::DEV_WRITE_TOKEN, hide_default_value = true, hide_env_values = true)]
    pub token: String,
}

impl CommandTarget {
    pub fn articles_url(&self) -> String {
        format!("{}/articles", self.command_url.trim_end_matches('/'))
    }
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let mut redis = redis_connection(&args.lag.redis_url).await?;
    let generation = sluice_store_redis::generation::serving(&mut redis, &args.lag.projection).await?;
    let ids_key = sluice_store_redis::keys::ids(&generation, &args.lag.aggregate);
    let before: usize = redis::cmd("SCARD").arg(&ids_key).query_async(&mut redis).await?;

    let http =
        reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).timeout(Duration::from_secs(30)).build()?;
    let url = args.target.articles_url();
    let run_id = std::process::id();
    let start = Instant::now();
    let results: Vec<Result<(u16, Option<String>), String>> = futures::stream::iter(0..args.articles)
        .map(|i| {
            let (http, url, token) = (http.clone(), url.clone(), args.target.token.clone());
            async move {
                let body = serde_json::json!({
                    "title": format!("Load article {run_id}-{i}"),
                    "body": format!("Body of article {i} of load run {run_id}."),
                });
                http.post(&url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| {
                        let location = r.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_string);
                        (r.status().as_u16(), location)
                    })
                    .map_err(|e| e.to_string())
            }
        })
        .buffer_unordered(args.target.concurrency.max(1))
        .collect()
        .await;
    let elapsed = start.elapsed();
    let accepted = results.iter().filter(|r| matches!(r, Ok((202, _)))).count();
    let failed: Vec<_> = results.iter().filter(|r| !matches!(r, Ok((202, _)))).take(3).collect();
    let sample = results.iter().find_map(|r| r.as_ref().ok().and_then(|(_, l)| l.clone()));
    println!(
        "sent {} commands in {:.2} s ({:.0}/s): {accepted} accepted",
        args.articles,
        elapsed.as_secs_f64(),
        args.articles as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    if !failed.is_empty() {
        println!("first failures: {failed:?}");
    }
    if !args.wait {
        return Ok(());
    }
    let expected = before + accepted;
    let deadline = Instant::now() + Duration::from_secs(args.wait_seconds);
    let mut count: usize;
    loop {
        count = redis::cmd("SCARD").arg(&ids_key).query_async(&mut redis).await?;
        if count >= expected || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "read model: {} articles added (before {before}, now {count}); commands accepted: {accepted}; first write to last projection: {:.2} s",
        count - before,
        start.elapsed().as_secs_f64()
    );
    crate::lag::print(&crate::lag::measure(&args.lag).await?);
    anyhow::ensure!(
        count - before == accepted && accepted == args.articles,
        "mismatch: {accepted}/{} commands accepted, {} reached the read model",
        args.articles,
        count - before
    );
    println!("OK: every accepted command reached the read model");
    if let Some(location) = sample {
        show(&http, &location).await;
    }
    Ok(())
}

async fn redis_connection(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url).context("redis url")?;
    client.get_multiplexed_async_connection().await.context("connect to Redis")
}

/// Prints one article as the query API serves it, with its Sluice headers.
async fn show(http: &reqwest::Client, location: &str) {
    match http.get(location).send().await {
        Ok(r) => {
            let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
            let headers: Vec<String> =
                ["Sluice-Version", "Sluice-Freshness", "Sluice-Lag-Messages", "Sluice-Lag-Ms", "Sluice-Read-Model"]
                    .iter()
                    .map(|name| format!("{name}: {}", header(&name.to_ascii_lowercase())))
                    .collect();
            let body = r.text().await.unwrap_or_default();
            println!("\nGET {location}\n{}\n{body}", headers.join("  "));
        }
        Err(e) => println!("GET {location} failed: {e}"),
    }
}
