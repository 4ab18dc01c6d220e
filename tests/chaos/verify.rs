//! The checks at the end, with everything back: the source of truth against
//! the topics and both read models.

use sluice_core::headers;
use sluice_kafka::rdkafka::Message;
use sluice_kafka::rdkafka::message::Headers;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use crate::load::Ledger;
use crate::stack::{DEADLINE, READ_SCHEMA, Stack, connect};

/// (aggregate type, id).
type Aggregate = (String, String);

const AGGREGATES: [&str; 2] = ["article", "author"];

/// What the source of truth holds.
pub struct Source {
    /// Current version of every aggregate.
    pub versions: BTreeMap<Aggregate, i64>,
    /// Every version each aggregate ever had (the catch-up log).
    pub history: BTreeSet<(Aggregate, i64)>,
    /// Article title or author name, per aggregate.
    pub text: BTreeMap<Aggregate, String>,
    /// Articles per (author, status).
    pub counts: BTreeMap<(String, String), i64>,
}

/// What one read model holds.
#[derive(Default)]
pub struct Model {
    pub versions: BTreeMap<Aggregate, i64>,
    pub text: BTreeMap<Aggregate, String>,
    pub counts: BTreeMap<(String, String), i64>,
}

#[derive(Debug, Default)]
pub struct Findings {
    /// Accepted (202) versions the source does not hold.
    pub accepted_lost: Vec<String>,
    /// Versions of the source missing from the `.events` topics.
    pub not_on_topic: Vec<String>,
    /// Records on the `.events` topics that were sent more than once.
    pub redelivered: usize,
    /// Per read model: aggregates behind the source or missing.
    pub behind: BTreeMap<&'static str, Vec<String>>,
    /// Per read model: versions or contents the source never had.
    pub foreign: BTreeMap<&'static str, Vec<String>>,
    /// Per read model: author counts that differ from the source's.
    pub miscounted: BTreeMap<&'static str, Vec<String>>,
    /// Aggregates with more versions in the source than commands accepted
    /// on them: a command (retried with its Idempotency-Key) ran twice.
    pub applied_twice: Vec<String>,
    /// Records in any dead-letter topic.
    pub dead_letters: i64,
}

impl Findings {
    pub fn lost(&self) -> usize {
        self.accepted_lost.len() + self.not_on_topic.len() + self.behind.values().map(Vec::len).sum::<usize>()
    }

    pub fn duplicate_effects(&self) -> usize {
        self.applied_twice.len() + self.miscounted.values().map(Vec::len).sum::<usize>()
    }

    pub fn foreign_versions(&self) -> usize {
        self.foreign.values().map(Vec::len).sum()
    }
}

/// Waits until both read models hold the source's versions (or the
/// deadline passes), then compares everything.
pub async fn check(stack: &Stack, ledger: &Ledger) -> Findings {
    let source = source(stack).await;
    let start = tokio::time::Instant::now();
    loop {
        let (redis, pg) = (redis_model(stack).await, pg_model(stack).await);
        let caught_up = redis.versions == source.versions && pg.versions == source.versions;
        if caught_up || start.elapsed() > DEADLINE {
            return compare(stack, ledger, &source, [("redis", redis), ("postgres", pg)]).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn compare(stack: &Stack, ledger: &Ledger, source: &Source, models: [(&'static str, Model); 2]) -> Findings {
    let mut found = Findings::default();
    for ((kind, id), version) in &ledger.versions {
        if source.versions.get(&(kind.clone(), id.clone())).is_none_or(|held| held < version) {
            found.accepted_lost.push(format!("{kind} {id} v{version}"));
        }
    }
    // Each accepted command adds exactly one version (every command of the
    // load changes something). Only exact when every command was answered
    // in the end: one left without an answer may have run.
    if ledger.unanswered == 0 {
        for (aggregate, accepted) in &ledger.commands {
            match source.versions.get(aggregate) {
                Some(held) if held > accepted => {
                    found.applied_twice.push(format!("{aggregate:?}: v{held} after {accepted} accepted commands"))
                }
                Some(held) if held < accepted => {
                    found.accepted_lost.push(format!("{aggregate:?}: v{held} after {accepted} accepted commands"))
                }
                _ => {}
            }
        }
        // A create that ran twice leaves an aggregate no answer named.
        let probes = |text: Option<&String>| text.is_some_and(|t| t.starts_with("Probe ") || t == "First author");
        for aggregate in source.versions.keys() {
            if !ledger.commands.contains_key(aggregate) && !probes(source.text.get(aggregate)) {
                found.applied_twice.push(format!("{aggregate:?} was created, but no accepted command created it"));
            }
        }
    }
    let mut delivered = BTreeSet::new();
    let mut records = 0;
    for aggregate in AGGREGATES {
        let topic = sluice_core::topics::events_topic(&stack.prefix, aggregate);
        for m in stack.broker.read_to_end(&topic).await {
            records += 1;
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            delivered.insert(((aggregate.to_string(), key), version_header(&m)));
        }
    }
    found.redelivered = records - delivered.len();
    found.not_on_topic =
        source.history.difference(&delivered).map(|((kind, id), v)| format!("{kind} {id} v{v}")).collect();
    for (name, model) in models {
        let behind = found.behind.entry(name).or_default();
        let foreign = found.foreign.entry(name).or_default();
        for (aggregate, version) in &source.versions {
            match model.versions.get(aggregate) {
                Some(held) if held > version => foreign.push(format!("{aggregate:?} at v{held}, source v{version}")),
                Some(held) if held == version => {
                    if model.text.get(aggregate) != source.text.get(aggregate) {
                        foreign.push(format!("{aggregate:?} v{held} says {:?}", model.text.get(aggregate)));
                    }
                }
                held => behind.push(format!("{aggregate:?} at {held:?}, source v{version}")),
            }
        }
        for aggregate in model.versions.keys().filter(|a| !source.versions.contains_key(*a)) {
            foreign.push(format!("{aggregate:?} is not in the source"));
        }
        let miscounted = found.miscounted.entry(name).or_default();
        let keys: BTreeSet<_> = source.counts.keys().chain(model.counts.keys()).collect();
        for key in keys {
            let (want, have) =
                (source.counts.get(key).copied().unwrap_or(0), model.counts.get(key).copied().unwrap_or(0));
            if want != have {
                miscounted.push(format!("author {} {}: {have} articles, source {want}", key.0, key.1));
            }
        }
    }
    found.dead_letters = dead_letters(stack);
    found
}

fn version_header<M: Message>(m: &M) -> i64 {
    m.headers()
        .and_then(|h| h.iter().find(|x| x.key == headers::AGGREGATE_VERSION).and_then(|x| x.value))
        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
        .expect("every record carries its version header")
}

/// Records in the relay's and the projectors' dead-letter topics (a topic
/// nothing was dead-lettered to may not exist).
fn dead_letters(stack: &Stack) -> i64 {
    use sluice_kafka::rdkafka::consumer::Consumer;
    let consumer = sluice_kafka::metadata_client(&stack.broker.bootstrap()).expect("client");
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(30)).expect("the broker's metadata");
    let existing: BTreeSet<&str> = metadata.topics().iter().map(|t| t.name()).collect();
    let mut topics = vec![format!("{}.relay.dlq", stack.prefix)];
    topics.extend(AGGREGATES.map(|a| format!("{}.dlq", sluice_core::topics::state_topic(&stack.prefix, a))));
    topics
        .iter()
        .filter(|t| existing.contains(t.as_str()))
        .flat_map(|t| sluice_kafka::watermarks(&consumer, t).unwrap_or_else(|e| panic!("watermarks of {t}: {e}")))
        .map(|w| w.high - w.low)
        .sum()
}

async fn source(stack: &Stack) -> Source {
    let db = connect(&stack.pg.url(&stack.source_db)).await.expect("the source database is up");
    let mut s =
        Source { versions: BTreeMap::new(), history: BTreeSet::new(), text: BTreeMap::new(), counts: BTreeMap::new() };
    let rows = db
        .query(
            "select 'article', id::text, version, title from cms.articles
             union all select 'author', id::text, version, name from cms.authors",
            &[],
        )
        .await
        .expect("source aggregates");
    for r in rows {
        let aggregate = (r.get::<_, String>(0), r.get::<_, String>(1));
        s.versions.insert(aggregate.clone(), r.get(2));
        s.text.insert(aggregate, r.get(3));
    }
    for r in db.query("select aggregate_type, aggregate_id, version from cms.changes", &[]).await.expect("history") {
        s.history.insert(((r.get(0), r.get(1)), r.get(2)));
    }
    let counts = "select author_id::text, status, count(*) from cms.articles where author_id is not null group by 1, 2";
    for r in db.query(counts, &[]).await.expect("counts") {
        s.counts.insert((r.get(0), r.get(1)), r.get(2));
    }
    s
}

/// The Redis projection: every document's version and title or name, and
/// each author's article counts by status (a view kept by the projector).
async fn redis_model(stack: &Stack) -> Model {
    let mut model = Model::default();
    let Ok(client) = redis::Client::open(stack.redis.url()) else { return model };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else { return model };
    let prefix = format!("sluice:{{{}}}:", stack.projection);
    for kind in AGGREGATES {
        let ids: Vec<String> =
            redis::cmd("SMEMBERS").arg(format!("{prefix}{kind}:ids")).query_async(&mut conn).await.unwrap_or_default();
        for id in ids {
            let key = format!("{prefix}{kind}:{id}");
            let (version, doc): (Option<i64>, Option<String>) = redis::cmd("HMGET")
                .arg(&key)
                .arg("version")
                .arg("doc")
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            let doc: serde_json::Value = doc.and_then(|d| serde_json::from_str(&d).ok()).unwrap_or_default();
            let text = doc[if kind == "article" { "title" } else { "name" }].as_str().unwrap_or_default().to_string();
            let aggregate = (kind.to_string(), id.clone());
            if let Some(v) = version {
                model.versions.insert(aggregate.clone(), v);
            }
            model.text.insert(aggregate, text);
            if kind == "author" {
                let counts: HashMap<String, i64> = redis::cmd("HGETALL")
                    .arg(format!("{prefix}view:author:{id}:counts"))
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                for (status, n) in counts.into_iter().filter(|(_, n)| *n != 0) {
                    model.counts.insert((id.clone(), status), n);
                }
            }
        }
    }
    model
}

/// The PostgreSQL read model: the same, from its tables.
async fn pg_model(stack: &Stack) -> Model {
    let mut model = Model::default();
    let Some(db) = connect(&stack.pg.url(&stack.read_db)).await else { return model };
    let query = format!(
        "select 'article', id, version, title from {READ_SCHEMA}.articles
         union all select 'author', id, version, name from {READ_SCHEMA}.authors"
    );
    for r in db.query(&query, &[]).await.unwrap_or_default() {
        let aggregate = (r.get::<_, String>(0), r.get::<_, String>(1));
        model.versions.insert(aggregate.clone(), r.get(2));
        model.text.insert(aggregate, r.get(3));
    }
    let query = format!(
        "select id, s.status, s.n::bigint from {READ_SCHEMA}.authors,
           lateral (values ('DRAFT', drafts), ('SCHEDULED', scheduled), ('PUBLISHED', published), ('ARCHIVED', archived)) s(status, n)
          where s.n <> 0"
    );
    for r in db.query(&query, &[]).await.unwrap_or_default() {
        model.counts.insert((r.get(0), r.get(1)), r.get(2));
    }
    model
}
