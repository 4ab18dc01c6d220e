//! lag-exporter and `sluice lag --groups` against a real broker: every group
//! the broker lists, its committed and end offsets, lag in messages and
//! seconds, and the status moving from STOP (nothing moves) to STALL (records
//! arrive, the group does not commit) to OK (it caught up).

mod common;

use sluice_kafka::rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use sluice_kafka::rdkafka::producer::FutureRecord;
use sluice_kafka::rdkafka::{ClientConfig, TopicPartitionList};
use sluice_kafka::{CleanupPolicy, partition_count};
use sluice_testkit::{ServiceHandle, TestBroker, random_name, service_binary, wait_until};
use std::collections::BTreeMap;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);

/// Every sample of `name` for `group`: partition -> value.
async fn series(exporter: &ServiceHandle, name: &str, group: &str) -> BTreeMap<String, f64> {
    let body =
        reqwest::get(format!("{}/metrics", exporter.base_url())).await.expect("metrics").text().await.expect("text");
    let group_label = format!("group=\"{group}\"");
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&group_label))
        .filter_map(|l| {
            let partition = l.split("partition=\"").nth(1)?.split('"').next()?.to_string();
            Some((partition, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

/// The status the exporter gives `group` now.
async fn status(exporter: &ServiceHandle, group: &str) -> Option<String> {
    let body = reqwest::get(format!("{}/metrics", exporter.base_url())).await.ok()?.text().await.ok()?;
    body.lines()
        .filter(|l| l.starts_with("sluice_consumer_group_status{") && l.contains(&format!("group=\"{group}\"")))
        .find(|l| l.ends_with(" 1"))
        .and_then(|l| Some(l.split("status=\"").nth(1)?.split('"').next()?.to_string()))
}

async fn produce(broker: &TestBroker, topic: &str, n: usize) {
    let producer = sluice_kafka::producer(&broker.bootstrap(), "lag-test").expect("producer");
    for i in 0..n {
        let key = format!("k{i}");
        producer
            .send(FutureRecord::to(topic).key(&key).payload("v"), Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
    }
}

fn commit(broker: &TestBroker, group: &str, topic: &str, offsets: &[i64]) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for (partition, offset) in offsets.iter().enumerate() {
        tpl.add_partition_offset(topic, partition as i32, sluice_kafka::rdkafka::Offset::Offset(*offset)).expect("tpl");
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
}

fn ends(broker: &TestBroker, topic: &str) -> Vec<i64> {
    let client = sluice_kafka::metadata_client(&broker.bootstrap()).expect("client");
    assert_eq!(partition_count(&client, topic).expect("partitions"), 3);
    sluice_kafka::watermarks(&client, topic).expect("watermarks").iter().map(|w| w.high).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_group_its_lag_and_its_status_as_records_arrive_and_it_catches_up() {
    let broker = TestBroker::start();
    let topic = random_name("lagged");
    let group = random_name("group");
    broker.create_topic(&topic, 3, CleanupPolicy::Delete).await;
    produce(&broker, &topic, 60).await;
    let end = ends(&broker, &topic);
    commit(&broker, &group, &topic, &[1, 2, 3]);

    let exporter = ServiceHandle::start(
        "lag-exporter",
        &[("SLUICE_BROKERS", broker.bootstrap()), ("SLUICE_INTERVAL_MS", "200".into()), ("SLUICE_WINDOW", "3".into())],
    )
    .await;
    // Listed by the broker (nobody named it), with its lag per partition.
    let lag = wait_until("the group's lag exported", DEADLINE, || async {
        let lag = series(&exporter, "sluice_consumer_group_lag_messages", &group).await;
        (lag.len() == 3).then_some(lag)
    })
    .await;
    let want: BTreeMap<String, f64> = (0..3).map(|p| (p.to_string(), (end[p] - [1, 2, 3][p]) as f64)).collect();
    assert_eq!(lag, want);
    let committed = series(&exporter, "sluice_consumer_group_committed_offset", &group).await;
    assert_eq!(committed.values().copied().collect::<Vec<_>>(), [1.0, 2.0, 3.0]);
    let seconds = series(&exporter, "sluice_consumer_group_lag_seconds", &group).await;
    assert_eq!(seconds.len(), 3, "{seconds:?}");

    // Neither the group nor the topic moves: stopped.
    wait_until("STOP", DEADLINE, || async {
        (status(&exporter, &group).await.as_deref() == Some("STOP")).then_some(())
    })
    .await;
    // The ends stay where they are for a while (the history sees them there
    // for ten scans), then the group catches up: OK.
    let scans = common::metric(&exporter, "sluice_consumer_group_scans_total").await;
    wait_until("ten more scans", DEADLINE, || async {
        (common::metric(&exporter, "sluice_consumer_group_scans_total").await >= scans + 10.0).then_some(())
    })
    .await;
    commit(&broker, &group, &topic, &ends(&broker, &topic));
    let caught_up_at = std::time::Instant::now();
    wait_until("OK after catching up", DEADLINE, || async {
        (status(&exporter, &group).await.as_deref() == Some("OK")).then_some(())
    })
    .await;
    // Records arrive, the group does not commit: stalled.
    let more = tokio::spawn({
        let (bootstrap, topic) = (broker.bootstrap(), topic.clone());
        async move {
            let producer = sluice_kafka::producer(&bootstrap, "lag-test-more").expect("producer");
            for i in 0..400 {
                let key = format!("m{i}");
                let record = FutureRecord::to(&topic).key(&key).payload("v");
                let _ = producer.send(record, Duration::from_secs(30)).await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    wait_until("STALL", DEADLINE, || async {
        (status(&exporter, &group).await.as_deref() == Some("STALL")).then_some(())
    })
    .await;
    // The time lag of the records that arrived after the catch-up: above
    // zero, and younger than the catch-up itself (a history that dated them
    // from when the end was first seen there would make them older).
    let lag = series(&exporter, "sluice_consumer_group_lag_messages", &group).await;
    let seconds = series(&exporter, "sluice_consumer_group_lag_seconds", &group).await;
    let bound = caught_up_at.elapsed().as_secs_f64() + 1.0;
    for (partition, messages) in &lag {
        let age = seconds.get(partition).copied();
        if *messages > 0.0 {
            assert!(age.is_some_and(|a| a > 0.0 && a <= bound), "partition {partition}: {age:?} s, bound {bound}");
        }
    }
    more.await.expect("producer task");
    // It catches up: OK, lag 0.
    commit(&broker, &group, &topic, &ends(&broker, &topic));
    wait_until("OK with no lag", DEADLINE, || async {
        let lag = series(&exporter, "sluice_consumer_group_lag_messages", &group).await;
        let ok = status(&exporter, &group).await.as_deref() == Some("OK");
        (ok && lag.values().all(|l| *l == 0.0)).then_some(())
    })
    .await;

    // The CLI prints the same table.
    let out = std::process::Command::new(service_binary("sluice"))
        .args(["lag", "--groups", "--brokers", &broker.bootstrap()])
        .output()
        .expect("sluice lag --groups");
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with(&group)).collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(rows.iter().all(|r| r.contains(&topic) && r.split_whitespace().nth(5) == Some("0")), "{out}");
}
