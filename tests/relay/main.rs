//! The outbox relay against real PostgreSQL and tansu: order, crashes, idle
//! WAL, high availability, graceful shutdown and housekeeping.

mod harness;

use harness::{RelayStack, assert_per_key_order};
use std::collections::HashMap;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(240);

fn expected(keys: &[String], versions: i64) -> HashMap<String, i64> {
    keys.iter().map(|k| (k.clone(), versions)).collect()
}

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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_during_load_loses_nothing() {
    let stack = RelayStack::start().await;
    let keys: Vec<String> = (0..30).map(|a| format!("k{a}")).collect();
    let client = stack.client().await;
    let writer_keys = keys.clone();
    let writer = tokio::spawn(async move {
        for v in 1..=80 {
            for key in &writer_keys {
                RelayStack::write(&client, key, v..=v).await;
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    });
    let mut rng_state: u64 = 0x9e37_79b9_7f4a_7c15;
    for kill in 0..6 {
        let mut relay = stack.relay(&[]).await;
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        let pause = Duration::from_millis(150 + rng_state % 700);
        tokio::time::sleep(pause).await;
        relay.kill_hard();
        eprintln!("kill -9 number {} after {pause:?}", kill + 1);
    }
    writer.await.expect("writer");
    let _survivor = stack.relay(&[]).await;
    let seen = stack.read_until(30 * 80, DEADLINE).await;
    assert_per_key_order(&seen, &expected(&keys, 80));
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
    let slot = stack.slot.clone();
    let retained = sluice_testkit::wait_until("the slot to confirm past the busy writes", DEADLINE, || {
        let (client, slot) = (&client, &slot);
        async move {
            let r: f64 = client
                .query_one(
                    "select pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8 from pg_replication_slots where slot_name = $1",
                    &[slot],
                )
                .await
                .ok()?
                .get(0);
            (r < 1e6).then_some(r)
        }
    })
    .await;
    eprintln!("retained WAL after idle period: {retained} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_relay_takes_over_when_the_active_one_dies() {
    let stack = RelayStack::start().await;
    let first = stack.relay(&[]).await;
    let second = stack.relay(&[]).await;
    let mut relays = [first, second];
    // Exactly one becomes active (ready); the other waits on the slot.
    let active = sluice_testkit::wait_until("one relay to be active", DEADLINE, || {
        let relays = &relays;
        async move {
            let ready = [relays[0].is_ready().await, relays[1].is_ready().await];
            match ready {
                [true, false] => Some(0),
                [false, true] => Some(1),
                [true, true] => panic!("both relays are active on one slot"),
                _ => None,
            }
        }
    })
    .await;
    let client = stack.client().await;
    let keys: Vec<String> = (0..10).map(|k| format!("ha{k}")).collect();
    for key in &keys {
        RelayStack::write(&client, key, 1..=5).await;
    }
    stack.read_until(50, DEADLINE).await;
    relays[active].kill_hard();
    let standby = 1 - active;
    sluice_testkit::wait_until("the standby to take over", DEADLINE, || {
        let relays = &relays;
        async move { relays[standby].is_ready().await.then_some(()) }
    })
    .await;
    for key in &keys {
        RelayStack::write(&client, key, 6..=10).await;
    }
    let seen = stack.read_until(100, DEADLINE).await;
    assert_per_key_order(&seen, &expected(&keys, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_confirms_what_was_acknowledged_and_exits_zero() {
    let stack = RelayStack::start().await;
    let mut relay = stack.relay(&[]).await;
    let client = stack.client().await;
    let keys: Vec<String> = (0..20).map(|k| format!("t{k}")).collect();
    for key in &keys {
        RelayStack::write(&client, key, 1..=10).await;
    }
    stack.read_until(200, DEADLINE).await;
    let status = relay.terminate();
    assert!(status.success(), "relay exited with {status}");
    // Everything was confirmed: a new relay re-sends nothing.
    let _next = stack.relay(&[]).await;
    for key in &keys {
        RelayStack::write(&client, key, 11..=11).await;
    }
    let seen = stack.read_until(220, DEADLINE).await;
    assert_eq!(seen.len(), 220, "records were sent twice after a graceful shutdown");
    assert_per_key_order(&seen, &expected(&keys, 11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_rows_are_deleted_or_kept_for_the_retention() {
    let stack = RelayStack::start().await;
    let client = stack.client().await;
    // Rows written before the relay's slot exists come through its snapshot.
    RelayStack::write(&client, "early", 1..=3).await;
    let mut relay = stack.relay(&[]).await;
    RelayStack::write(&client, "late", 1..=3).await;
    stack.read_until(6, DEADLINE).await;
    sluice_testkit::wait_until("relayed rows to be deleted", DEADLINE, || {
        let client = &client;
        async move {
            let n: i64 = client.query_one("select count(*) from cms.outbox", &[]).await.ok()?.get(0);
            (n == 0).then_some(())
        }
    })
    .await;
    assert!(relay.terminate().success());

    // With a retention, relayed rows stay.
    let _kept = stack.relay(&[("SLUICE_OUTBOX_RETENTION_SECS", "3600".into())]).await;
    RelayStack::write(&client, "kept", 1..=4).await;
    stack.read_until(10, DEADLINE).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n: i64 = client.query_one("select count(*) from cms.outbox", &[]).await.expect("count").get(0);
    assert_eq!(n, 4, "rows inside the retention were deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_republishes_a_time_range_of_the_retained_outbox() {
    let stack = RelayStack::start().await;
    let _relay = stack.relay(&[("SLUICE_OUTBOX_RETENTION_SECS", "3600".into())]).await;
    let client = stack.client().await;
    RelayStack::write(&client, "old", 1..=3).await;
    let since: chrono::DateTime<chrono::Utc> = client.query_one("select now()", &[]).await.expect("now").get(0);
    RelayStack::write(&client, "new", 1..=4).await;
    stack.read_until(7, DEADLINE).await;

    let out = std::process::Command::new(sluice_testkit::service_binary("sluice"))
        .args(["relay", "replay", "--since", &since.to_rfc3339()])
        .args(["--database-url", &stack.db, "--brokers", &stack.broker.bootstrap(), "--topic-prefix", &stack.prefix])
        .output()
        .expect("run sluice relay replay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("re-published 4 outbox rows"), "{stdout}");
    // The topic now holds the 7 records and the 4 re-published ones, in order per key.
    let consumer_view = stack.read_all(11, DEADLINE).await;
    let new_versions: Vec<i64> = consumer_view.iter().filter(|s| s.key == "new").map(|s| s.version).collect();
    assert_eq!(new_versions, [1, 2, 3, 4, 1, 2, 3, 4]);
    assert_eq!(consumer_view.iter().filter(|s| s.key == "old").count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_outbox_tables_in_any_schema_and_topics_with_their_cleanup_policy() {
    use sluice_kafka::rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use sluice_kafka::rdkafka::client::DefaultClientContext;

    let stack = RelayStack::start().await;
    let client = stack.client().await;
    let second = sluice_outbox::OutboxTable::parse("billing.events_out").expect("name");
    sluice_outbox::ensure_table(&client, &second).await.expect("second outbox");
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
    let policies: Vec<Option<String>> = described
        .into_iter()
        .map(|r| r.ok().and_then(|c| c.get("cleanup.policy").and_then(|e| e.value.clone())))
        .collect();
    assert_eq!(policies, [Some("compact".to_string()), Some("delete".to_string())]);
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
    let mut expected = HashMap::new();
    expected.insert("before".to_string(), 2);
    expected.insert("while-down".to_string(), 3);
    assert_per_key_order(&seen, &expected);
}
