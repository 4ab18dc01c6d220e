//! `sluice dlq list`: what a dead-letter topic holds and why (the relay's
//! `<prefix>.relay.dlq` or a projection's `<topic>.dlq`): topic, partition,
//! offset, reason and age of each dead letter, and where it came from.

use anyhow::Context;
use sluice_kafka::rdkafka::consumer::Consumer;
use sluice_kafka::rdkafka::message::{Headers, Message};
use sluice_kafka::rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::Duration;

#[derive(clap::Subcommand)]
pub enum Action {
    /// List the dead letters of a topic: where, why, how old.
    List(DlqArgs),
    /// Re-drive a projection's dead letters once their cause is fixed: each
    /// goes to `<topic>.retry`, which the projectors read through the same
    /// version guard (an old record never rolls anything back, and the
    /// compacted topic is left alone).
    Replay(ReplayArgs),
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// The projection's dead-letter topic, `<topic>.dlq`.
    #[arg(long)]
    pub topic: String,
    #[arg(long, env = "SLUICE_BROKERS", default_value = crate::dev::DEFAULT_BROKERS)]
    pub brokers: String,
    /// Only these dead letters (offsets in the dead-letter topic, comma-separated); default all.
    #[arg(long, value_delimiter = ',')]
    pub offsets: Vec<i64>,
}

#[derive(clap::Args)]
pub struct DlqArgs {
    /// The dead-letter topic; default the relay's, `<prefix>.relay.dlq`.
    #[arg(long)]
    pub topic: Option<String>,
    #[arg(long, env = "SLUICE_TOPIC_PREFIX", default_value = "sluice")]
    pub topic_prefix: String,
    #[arg(long, env = "SLUICE_BROKERS", default_value = crate::dev::DEFAULT_BROKERS)]
    pub brokers: String,
    /// Show at most this many (the newest).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

/// One dead letter as shown.
struct Letter {
    partition: i32,
    offset: i64,
    /// When the dead letter was written (ms since the epoch), if known.
    timestamp_ms: Option<i64>,
    headers: HashMap<String, String>,
    key: String,
    /// The record as it is, for a replay.
    raw: Raw,
}

struct Raw {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

pub async fn run(action: Action) -> anyhow::Result<()> {
    let args = match action {
        Action::List(args) => args,
        Action::Replay(args) => return replay(args).await,
    };
    let topic = args.topic.clone().unwrap_or_else(|| sluice_relay::relay_dlq_topic(&args.topic_prefix));
    let letters = read_all(&args.brokers, &topic).await?;
    println!("{} dead letters in {topic}", letters.len());
    let now_ms = chrono::Utc::now().timestamp_millis();
    for l in letters.iter().rev().take(args.limit).rev() {
        let h = |name: &str| l.headers.get(name).map_or("-", String::as_str);
        let source = match l.headers.get(sluice_relay::relay_headers::SOURCE_TABLE) {
            Some(table) if !table.is_empty() => format!("table {table} at {}", h(sluice_core::headers::SOURCE_LSN)),
            _ => format!(
                "{} partition {} offset {}",
                h(sluice_core::headers::dlq::SOURCE_TOPIC),
                h(sluice_core::headers::dlq::SOURCE_PARTITION),
                h(sluice_core::headers::dlq::SOURCE_OFFSET)
            ),
        };
        let age = l.timestamp_ms.map_or_else(|| "-".to_string(), |at| format_age(now_ms - at));
        println!(
            "{topic} [{}:{}] age {age} key={} event={} version={} from {source}\n    reason: {}",
            l.partition,
            l.offset,
            l.key,
            h(sluice_core::headers::EVENT_ID),
            h(sluice_core::headers::AGGREGATE_VERSION),
            h(sluice_core::headers::dlq::REASON)
        );
    }
    Ok(())
}

/// Sends the chosen dead letters of a projection's dead-letter topic, with
/// their original key, value and headers, to their topic's retry topic.
async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    use sluice_core::headers::dlq;
    let letters = read_all(&args.brokers, &args.topic).await?;
    let producer = sluice_kafka::producer(&args.brokers, "sluice-dlq-replay")?;
    let mut sent = 0;
    for l in letters.iter().filter(|l| args.offsets.is_empty() || args.offsets.contains(&l.offset)) {
        anyhow::ensure!(
            !l.headers.contains_key(sluice_relay::relay_headers::SOURCE_TABLE),
            "{} holds the relay's dead letters: those are outbox rows; fix the row, delete it from the relay's \
             dead_rows table and use `sluice relay replay`",
            args.topic
        );
        let source = l.headers.get(dlq::SOURCE_TOPIC).with_context(|| {
            format!("dead letter {}:{} has no {} header: not a projection's", l.partition, l.offset, dlq::SOURCE_TOPIC)
        })?;
        let base = sluice_core::topics::retried_topic(source).unwrap_or(source);
        let target = sluice_core::topics::retry_topic(base);
        let mut headers = sluice_kafka::rdkafka::message::OwnedHeaders::new();
        for (name, value) in l.raw.headers.iter().filter(|(name, _)| !name.starts_with("sluice.dlq.")) {
            headers = headers.insert(sluice_kafka::rdkafka::message::Header { key: name, value: value.as_deref() });
        }
        let mut record = sluice_kafka::rdkafka::producer::FutureRecord::<[u8], [u8]>::to(&target).headers(headers);
        if let Some(k) = &l.raw.key {
            record = record.key(k);
        }
        if let Some(v) = &l.raw.value {
            record = record.payload(v);
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| anyhow::anyhow!("send to {target}: {e}"))?;
        println!("re-drove {}:{} (key={}) to {target}", l.partition, l.offset, l.key);
        sent += 1;
    }
    println!("{sent} dead letters re-driven");
    Ok(())
}

/// `42s`, `7m12s`, `3h05m`, `2d04h`.
fn format_age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// Every record of `topic` up to its end when called.
async fn read_all(brokers: &str, topic: &str) -> anyhow::Result<Vec<Letter>> {
    let consumer = sluice_kafka::consumer(brokers, "sluice-dlq-reader")?;
    let marks = sluice_kafka::watermarks(&consumer, topic).with_context(|| format!("read {topic}"))?;
    let mut assignment = TopicPartitionList::new();
    for w in &marks {
        assignment.add_partition_offset(topic, w.partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    // Partitions not read to their end yet (offsets may have gaps: compaction).
    let mut unread: HashMap<i32, i64> =
        marks.iter().filter(|w| w.high > w.low).map(|w| (w.partition, w.high)).collect();
    let mut letters = Vec::new();
    while !unread.is_empty() {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .with_context(|| format!("{topic} stopped answering before its end"))??;
        let Some(&end) = unread.get(&m.partition()) else { continue };
        if m.offset() + 1 >= end {
            unread.remove(&m.partition());
        }
        if m.offset() >= end {
            continue;
        }
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|x| {
                        (
                            x.key.to_string(),
                            x.value.map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let key = m.key().map_or("-".to_string(), |k| String::from_utf8_lossy(k).into_owned());
        let raw = Raw {
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers: m
                .headers()
                .map(|h| h.iter().map(|x| (x.key.to_string(), x.value.map(<[u8]>::to_vec))).collect())
                .unwrap_or_default(),
        };
        let timestamp_ms = m.timestamp().to_millis();
        letters.push(Letter { partition: m.partition(), offset: m.offset(), timestamp_ms, headers, key, raw });
    }
    letters.sort_by_key(|l| (l.partition, l.offset));
    Ok(letters)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(super::format_age(42_000), "42s");
        assert_eq!(super::format_age(432_000), "7m12s");
        assert_eq!(super::format_age(3 * 3_600_000 + 5 * 60_000), "3h05m");
        assert_eq!(super::format_age(2 * 86_400_000 + 4 * 3_600_000), "2d04h");
    }
}
