//! Rows that can never be published go to the relay's dead-letter topic;
//! the slot moves on and the rows stay in the outbox for repair.

use crate::harness::{DEADLINE, RelayStack, assert_per_key_order, metric};
use sluice_kafka::rdkafka::Message;
use sluice_kafka::rdkafka::consumer::Consumer;
use sluice_kafka::rdkafka::message::Headers;
use std::collections::HashMap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_rows_are_dead_lettered_and_the_slot_moves_on() {
    let stack = RelayStack::start().await;
    let client = stack.client().await;
    // A user's own outbox without NOT NULL constraints, so a row can lack its key.
    client
        .batch_execute(&format!(
            "create schema loose; grant usage on schema loose to sluice_relay;
             create table loose.outbox (id uuid primary key, aggregatetype text, aggregateid text, type text,
                 payload bytea, aggregate_version bigint, created_at timestamptz not null default now(),
                 headers jsonb not null default '{{}}');
             grant select, delete on loose.outbox to sluice_relay;
             alter publication {} add table loose.outbox",
            stack.publication
        ))
        .await
        .expect("loose outbox");
    let bad_type = |version: i64| {
        format!(
            "insert into cms.outbox (id, aggregatetype, aggregateid, type, payload, aggregate_version)
             values (gen_random_uuid(), 'no such/topic', 'x', 'ThingChanged', 'x'::bytea, {version})"
        )
    };
    // Already there when the slot is made: the snapshot meets it.
    client.batch_execute(&bad_type(1)).await.expect("bad aggregate type");
    RelayStack::write(&client, "good", 1..=1).await;
    let relay = stack
        .relay(&[
            ("SLUICE_OUTBOX_TABLES", "cms.outbox, loose.outbox".into()),
            ("SLUICE_HEARTBEAT_INTERVAL_MS", "200".into()),
        ])
        .await;
    stack.read_until(1, DEADLINE).await;
    // While streaming: a bad aggregate type, a record larger than the client
    // sends (message.max.bytes, 1 MB), a row without its key column.
    client.batch_execute(&bad_type(2)).await.expect("bad aggregate type");
    client
        .execute(
            "insert into cms.outbox (id, aggregatetype, aggregateid, type, payload, aggregate_version)
             values (gen_random_uuid(), 'thing', 'huge', 'ThingChanged', $1, 1)",
            &[&vec![7u8; 1_500_000]],
        )
        .await
        .expect("huge row");
    client
        .batch_execute(
            "insert into loose.outbox (id, aggregatetype, aggregateid, type, payload, aggregate_version)
             values (gen_random_uuid(), 'thing', null, 'ThingChanged', 'y'::bytea, 1)",
        )
        .await
        .expect("keyless row");
    RelayStack::write(&client, "good", 2..=3).await;

    let seen = stack.read_until(3, DEADLINE).await;
    assert_per_key_order(&seen, &HashMap::from([("good".to_string(), 3)]));
    let letters = read_dead_letters(&stack, 4).await;
    let reasons: Vec<&str> = letters.iter().map(|(reason, _)| reason.as_str()).collect();
    assert_eq!(reasons.iter().filter(|r| r.contains("no valid topic name")).count(), 2, "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("refuses the record") || r.contains("refused")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("undecodable") && r.contains("aggregateid")), "{reasons:?}");
    assert!(letters.iter().all(|(_, table)| table == "cms.outbox" || table == "loose.outbox"), "{letters:?}");
    assert_eq!(metric(&relay, "sluice_relay_dead_letters_total").await, 4.0);

    // The slot moved past them: good rows were deleted, the dead ones kept.
    sluice_testkit::wait_until("the good rows to be deleted", DEADLINE, || {
        let client = &client;
        async move {
            let n: i64 = client
                .query_one("select (select count(*) from cms.outbox) + (select count(*) from loose.outbox)", &[])
                .await
                .ok()?
                .get(0);
            (n == 4).then_some(())
        }
    })
    .await;
    stack.wait_slot_caught_up("the slot to confirm past the poison rows").await;
    assert!(!relay.log_tail().contains("relay stopped"), "the relay restarted:\n{}", relay.log_tail());

    // `sluice dlq` shows them.
    let out = std::process::Command::new(sluice_testkit::service_binary("sluice"))
        .args(["dlq", "list", "--topic", &sluice_relay_dlq(&stack), "--brokers", &stack.broker.bootstrap()])
        .output()
        .expect("run sluice dlq");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("4 dead letters"), "{stdout}");
    assert!(stdout.lines().filter(|l| l.contains(" age ") && l.contains(".relay.dlq [")).count() == 4, "{stdout}");
    assert!(stdout.contains("no valid topic name") && stdout.contains("loose.outbox"), "{stdout}");

    // The dead rows are recorded as such: a new snapshot (here: the slot was
    // lost) skips them instead of publishing them again, possibly behind
    // newer versions of their keys.
    let mut relay = relay;
    assert!(relay.terminate().success());
    let dead: i64 = client.query_one("select count(*) from sluice_relay.dead_rows", &[]).await.expect("dead").get(0);
    assert_eq!(dead, 4);
    stack.drop_slot().await;
    let relay = stack.relay(&[("SLUICE_OUTBOX_TABLES", "cms.outbox, loose.outbox".into())]).await;
    sluice_testkit::wait_until("the new snapshot to be relayed", DEADLINE, || {
        let relay = &relay;
        async move { relay.is_ready().await.then_some(()) }
    })
    .await;
    assert_eq!(metric(&relay, "sluice_relay_dead_letters_total").await, 0.0, "{}", relay.log_tail());
}

fn sluice_relay_dlq(stack: &RelayStack) -> String {
    format!("{}.relay.dlq", stack.prefix)
}

/// (reason, source table) of the first `n` dead letters.
async fn read_dead_letters(stack: &RelayStack, n: usize) -> Vec<(String, String)> {
    let consumer =
        sluice_kafka::consumer(&stack.broker.bootstrap(), &sluice_testkit::random_name("dlq")).expect("consumer");
    let topic = sluice_relay_dlq(stack);
    sluice_testkit::wait_until("the dead-letter topic", DEADLINE, || {
        let ok = sluice_kafka::partition_count(&consumer, &topic).is_ok_and(|n| n > 0);
        async move { ok.then_some(()) }
    })
    .await;
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut letters = Vec::new();
    let start = tokio::time::Instant::now();
    while letters.len() < n {
        assert!(start.elapsed() < DEADLINE, "only {} of {n} dead letters: {letters:?}", letters.len());
        let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await else { continue };
        let header = |name: &str| {
            m.headers()
                .and_then(|h| h.iter().find(|x| x.key == name).and_then(|x| x.value))
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        letters.push((header("sluice.dlq.reason"), header("sluice.dlq.source_table")));
    }
    letters
}
