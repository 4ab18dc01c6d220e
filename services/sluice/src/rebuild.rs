//! `sluice projection rebuild NAME`: blue/green. Builds the next generation
//! of a projection from the compacted topics while the current one serves,
//! swaps it in atomically once it caught up, and drops the old one. The
//! projector services follow: the swap refuses their next batch to the old
//! generation, and their next session starts on the new one. Running it
//! again after an interruption resumes the generation it was building.

use crate::projection::{self, SourceArgs, Store};
use sluice_core::topics::{retry_topic, state_topic};
use sluice_store_postgres::{PostgresStore, SchemaName, generation as pg};
use sluice_store_redis::{RedisStore, generation as redis_gen, rebuild as redis_rebuild};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct RebuildArgs {
    /// The projection (what services and readers are configured with).
    name: String,
    #[command(flatten)]
    source: SourceArgs,
}

pub async fn run(args: RebuildArgs) -> anyhow::Result<()> {
    match args.source.store {
        Store::Redis => redis(&args).await,
        Store::Postgres => postgres(&args).await,
    }
}

/// The next generation's own consumer group: the services' group keeps
/// serving the current one meanwhile.
fn group(store: &str, name: &str, generation: &str) -> Option<String> {
    Some(format!("sluice-rebuild-{store}-{name}-{generation}"))
}

/// The topics a projector stores positions for: each aggregate's state
/// topic and its retry topic.
fn projector_topics(args: &SourceArgs) -> Vec<String> {
    let aggregates = args.aggregates.split(',').map(str::trim).filter(|a| !a.is_empty());
    aggregates
        .flat_map(|a| {
            let state = state_topic(&args.topic_prefix, a);
            [retry_topic(&state), state]
        })
        .collect()
}

/// Redis: generations are projections (`<name>.gN`) behind the serving
/// pointer; the current one is sealed while the next catches up.
async fn redis(args: &RebuildArgs) -> anyhow::Result<()> {
    let name = args.name.as_str();
    let client = ::redis::Client::open(args.source.redis_url.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let lease = redis_rebuild::Lease::acquire(&conn, name).await?;
    if let Some((old, keys)) = redis_rebuild::finish_interrupted(&mut conn, name).await? {
        println!("{name}: dropped {old} ({keys} keys), left behind by an interrupted rebuild");
    }
    let current = redis_gen::serving(&mut conn, name).await?;
    let next = redis_gen::successor(name, &current);
    println!("{name}: served by {current}; building {next}");
    let store = RedisStore::connect(&args.source.redis_url, &next).await?;
    let building = projection::build::<false, _>(&args.source, &next, group("redis", name, &next), store).await?;

    let topics = projector_topics(&args.source);
    let floors = floors(&args.source.brokers, &topics).await?;
    let alive = || !building.has_stopped();
    let handed = redis_rebuild::hand_over(&mut conn, name, &current, &next, &topics, &floors, alive).await?;
    let (records, built_in) = (building.records, building.started.elapsed());
    // The services' next sessions take over.
    building.stop().await?;
    let deleted = redis_rebuild::retire(&mut conn, name, &current).await?;
    lease.release().await?;
    println!(
        "{name} now served by {next}: {records} records built in {:.1} s; {current} was sealed for {:.0} ms, then \
         dropped ({deleted} keys)",
        built_in.as_secs_f64(),
        handed.sealed_for.as_secs_f64() * 1000.0,
    );
    Ok(())
}

/// The first offset still in the log of every partition of `topics`.
async fn floors(brokers: &str, topics: &[String]) -> anyhow::Result<HashMap<(String, i32), i64>> {
    let consumer = Arc::new(sluice_kafka::metadata_client(brokers)?);
    let mut floors = HashMap::new();
    for topic in topics {
        let (c, t) = (consumer.clone(), topic.clone());
        let marks = tokio::task::spawn_blocking(move || sluice_kafka::watermarks(c.as_ref(), &t)).await??;
        floors.extend(marks.into_iter().map(|m| ((topic.clone(), m.partition), m.low)));
    }
    Ok(floors)
}

/// PostgreSQL: generations are the tables of a schema; the next one is built
/// in `<schema>_next` and moved in (see `sluice_store_postgres::generation`).
async fn postgres(args: &RebuildArgs) -> anyhow::Result<()> {
    let name = args.name.as_str();
    let url = args.source.database_url()?;
    let serving = SchemaName::parse(&args.source.pg_schema).map_err(anyhow::Error::msg)?;
    let (next, old) = pg::next_and_old(&serving)?;
    let mut client = pg::connect(url).await?;
    let watcher = pg::connect(url).await?;
    pg::check(&client, [&serving, &next, &old]).await?;
    // An earlier rebuild interrupted after its swap left the old generation.
    pg::empty(&client, &old).await?;
    println!("{name}: building the next generation in schema {}", next.as_str());
    let store = PostgresStore::connect(url, next.as_str(), name)?;
    let building =
        projection::build::<true, _>(&args.source, name, group("postgres", name, next.as_str()), store).await?;
    let (records, started) = (building.records, building.started);
    let mut building = Some(building);
    let topics = projector_topics(&args.source);
    let floors = floors(&args.source.brokers, &topics).await?;
    let swap =
        pg::Swap { serving: &serving, next: &next, old: &old, projection: name, topics: &topics, floors: &floors };
    let swapped = swap
        .run(&mut client, &watcher, async || match building.take() {
            Some(b) => b.stop().await,
            None => Ok(()),
        })
        .await;
    let swapped = match swapped {
        Ok(swapped) => swapped,
        Err(e) => {
            if let Some(b) = building.take() {
                b.stop().await?;
            }
            return Err(e);
        }
    };
    pg::empty(&watcher, &old).await?;
    println!(
        "{name} now served by its new generation in schema {}: {records} records built in {:.1} s; writers of the old generation \
         waited {:.0} ms for the swap; {} grants copied; the old generation dropped",
        serving.as_str(),
        started.elapsed().as_secs_f64(),
        swapped.locked_for.as_secs_f64() * 1000.0,
        swapped.grants
    );
    Ok(())
}
