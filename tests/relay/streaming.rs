//! Streaming: order under concurrent writers, idle WAL, several outbox
//! tables, an invalidated slot.

use crate::harness::{DEADLINE, RelayStack, assert_last_record_is_newest, assert_per_key_order, expected};
use std::collections::HashMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_rows_from_concurrent_writers_keep_per_aggregate_order() {
    let stack = RelayStack::start().await;
    let _relay = stack.relay(&[]).await;
    // 10 writers, each owning 20 aggregates of 50 versions: 10,000 rows.
    let mut writers = Vec::new();
    let mut keys = Vec::new();
    for w in 0..10 {
        let client = stack.client().await;
        let mine: Vec<String> = (0..20).map(|a| format!("w{w}-a{a}")).collect();
        keys.extend(mine.clone());
        writers.push(tokio::spawn(async move {
            for v in 1..=50 {
                for key in &mine {
                    RelayStack::write(&client, key, v..=v).await;
                }
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let seen = stack.read_until(10_000, DEADLINE).await;
    assert_per_key_order(&seen, &expected(&keys, 50));
    // Readers find a key's partition without the broker (the lag of one
    // entity): the relay's producer places every record where
    // sluice_core::partitioner says.
    let partitions = stack.broker_metadata(&stack.topic());
    let misplaced: Vec<&str> = seen
        .iter()
        .filter(|s| s.partition != sluice_core::partitioner::partition_of(s.key.as_bytes(), partitions))
        .map(|s| s.key.as_str())
        .collect();
    assert!(misplaced.is_empty(), "records not where the partitioner says: {misplaced:?}");
    stack.wait_outbox_count(0).await;
    assert_last_record_is_newest(&stack.read_to_end().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_outbox_does_not_make_the_slot_retain_wal() {
    let stack = RelayStack::start().await;
    let _relay = stack.relay(&[("SLUICE_HEARTBEAT_INTERVAL_MS", "300".into())]).await;
    let client = stack.client().await;
    RelayStack::write(&client, "only", 1..=1).await;
    stack.read_until(1, DEADLINE).await;
    // Plenty of writes to other tables, none to the outbox.
    client.batch_execute("create table busy (id bigserial primary key, filler text)").await.expect("table");
    for _ in 0..20 {
        client
            .batch_execute("insert into busy (filler) select repeat('x', 500) from generate_series(1, 2000)")
            .await
            .expect("insert");
    }
    let written: f64 =
        client.query_one("select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8", &[]).await.expect("lsn").get(0);
    assert!(written > 20e6, "the test wrote too little WAL ({written} bytes in all)");
    let retained = stack.wait_slot_caught_up("the slot to confirm past the busy writes").await;
    eprintln!("retained WAL after idle period: {retained} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_outbox_tables_in_any_schema_and_topics_with_their_cleanup_policy() {
    use sluice_kafka::rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use sluice_kafka::rdkafka::client::DefaultClientContext;

    let stack = RelayStack::start().await;
    let client = stack.client().await;
    let second = sluice_outbox::OutboxTable::parse("billing.events_out").expect("name");
    sluice_outbox::ensure_table(&client, &second).await.expect("second outbox");
    // What an administrator does for a new outbox: the relay may read it, it is published.
    client
        .batch_execute(&format!(
            "grant usage on schema billing to sluice_relay; alter publication {} add table billing.events_out",
            stack.publication
        ))
        .await
        .expect("grant and publish the second outbox");
    let _relay = stack
        .relay(&[
            ("SLUICE_OUTBOX_TABLES", "cms.outbox, billing.events_out".into()),
            ("SLUICE_EVENTS_TOPICS", "true".into()),
            ("SLUICE_PARTITIONS", "2".into()),
        ])
        .await;
    RelayStack::write(&client, "thing-1", 1..=2).await;
    client
        .execute(
            "insert into billing.events_out (id, aggregatetype, aggregateid, type, payload, aggregate_version)
             values (gen_random_uuid(), 'thing', 'invoice-1', 'ThingChanged', 'invoice-1:1'::bytea, 1)",
            &[],
        )
        .await
        .expect("second outbox insert");
    let seen = stack.read_until(3, DEADLINE).await;
    assert!(seen.iter().any(|s| s.key == "invoice-1"), "the second table was not relayed");

    let admin: AdminClient<DefaultClientContext> = sluice_kafka::rdkafka::ClientConfig::new()
        .set("bootstrap.servers", stack.broker.bootstrap())
        .create()
        .expect("admin");
    let state = stack.topic();
    let events = format!("{}.thing.events", stack.prefix);
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic(&state), ResourceSpecifier::Topic(&events)], &AdminOptions::new())
        .await
        .expect("describe configs");
    let config = |name: &str| -> Vec<Option<String>> {
        described.iter().map(|r| r.as_ref().ok().and_then(|c| c.get(name).and_then(|e| e.value.clone()))).collect()
    };
    assert_eq!(config("cleanup.policy"), [Some("compact".to_string()), Some("delete".to_string())]);
    // Erasures (tombstones) outlive a lagging projector or a restored read
    // model by 30 days, not Kafka's default of one.
    assert_eq!(config("delete.retention.ms")[0].as_deref(), Some(sluice_kafka::TOMBSTONE_RETENTION_MS));
    let metadata = stack.broker_metadata(&state);
    assert_eq!(metadata, 2, "partitions of {state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidated_slot_is_recreated_and_nothing_is_lost() {
    let stack = RelayStack::start().await;
    let client = stack.client().await;
    client.batch_execute("alter system set max_slot_wal_keep_size = '1MB'").await.expect("config");
    client.batch_execute("select pg_reload_conf()").await.expect("reload");
    let mut relay = stack.relay(&[]).await;
    RelayStack::write(&client, "before", 1..=2).await;
    stack.read_until(2, DEADLINE).await;
    relay.kill_hard();

    // While no relay runs: outbox rows, then far more WAL than the slot may keep.
    RelayStack::write(&client, "while-down", 1..=3).await;
    client.batch_execute("create table churn (filler text)").await.expect("table");
    for _ in 0..6 {
        client
            .batch_execute(
                "insert into churn select repeat('x', 1000) from generate_series(1, 20000); select pg_switch_wal()",
            )
            .await
            .expect("churn");
    }
    client.batch_execute("checkpoint").await.expect("checkpoint");
    let status: Option<String> = client
        .query_one("select wal_status from pg_replication_slots where slot_name = $1", &[&stack.slot])
        .await
        .expect("slot")
        .get(0);
    assert_eq!(status.as_deref(), Some("lost"), "the test did not manage to invalidate the slot");

    let _relay = stack.relay(&[]).await;
    let seen = stack.read_until(5, DEADLINE).await;
    stack.wait_outbox_count(0).await;
    assert_last_record_is_newest(&stack.read_to_end().await);
    let mut expected = HashMap::new();
    expected.insert("before".to_string(), 2);
    expected.insert("while-down".to_string(), 3);
    assert_per_key_order(&seen, &expected);
}

/// Operators choose the headers: `SLUICE_HEADERS` for every topic,
/// `SLUICE_TOPIC_HEADERS` per aggregate type; keys, payloads and order do not
/// change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_carry_the_headers_operators_chose() {
    use sluice_kafka::rdkafka::Message;
    use sluice_kafka::rdkafka::message::Headers;
    let stack = RelayStack::start().await;
    let client = stack.client().await;
    client
        .execute(
            "insert into cms.outbox (id, aggregatetype, aggregateid, type, payload, aggregate_version)
             values (gen_random_uuid(), 'bare', 'b1', 'BareChanged', 'b1:1', 1)",
            &[],
        )
        .await
        .expect("outbox insert");
    RelayStack::write(&client, "t1", 1..=2).await;
    let _relay = stack
        .relay(&[
            ("SLUICE_HEADERS", "sluice.aggregate_version+sluice.event_id".into()),
            ("SLUICE_TOPIC_HEADERS", "bare=none".into()),
        ])
        .await;
    stack.read_until(2, DEADLINE).await;
    stack.wait_outbox_count(0).await;
    let names = |m: &sluice_kafka::rdkafka::message::OwnedMessage| -> Vec<String> {
        m.headers().map(|h| h.iter().map(|x| x.key.to_string()).collect()).unwrap_or_default()
    };
    let things = stack.broker.read_to_end(&stack.topic()).await;
    assert_eq!(things.len(), 2);
    for m in &things {
        assert_eq!(names(m), ["sluice.event_id", "sluice.aggregate_version"]);
    }
    let bare = stack.broker.read_to_end(&format!("{}.bare.state", stack.prefix)).await;
    assert_eq!(bare.len(), 1);
    assert_eq!(names(&bare[0]), Vec::<String>::new(), "no header at all");
    assert_eq!(bare[0].payload(), Some(&b"b1:1"[..]));
}
