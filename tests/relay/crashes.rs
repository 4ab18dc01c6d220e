//! Crashes, shutdowns and several relays on one slot.

use crate::harness::{DEADLINE, RelayStack, assert_last_record_is_newest, assert_per_key_order, expected};
use std::time::Duration;

/// Kills land while the relay streams (it is ready and has published since
/// it started), at pseudo-random moments after that. The writer keeps writing
/// until the last kill, so that every relay has new rows to stream however
/// slow the machine is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_while_streaming_loses_nothing() {
    let stack = RelayStack::start().await;
    let keys: Vec<String> = (0..30).map(|a| format!("k{a}")).collect();
    let client = stack.client().await;
    let writer_keys = keys.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer_stop = stop.clone();
    let writer = tokio::spawn(async move {
        let mut last = 0;
        while last < 120 || !writer_stop.load(std::sync::atomic::Ordering::Relaxed) {
            last += 1;
            for key in &writer_keys {
                RelayStack::write(&client, key, last..=last).await;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        last
    });
    let mut rng_state: u64 = 0x9e37_79b9_7f4a_7c15;
    for kill in 0..6 {
        let mut relay = stack.relay(&[]).await;
        relay.wait_ready().await;
        let before = stack.topic_total();
        stack.wait_topic_beyond(before).await;
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        let pause = Duration::from_millis(rng_state % 300);
        tokio::time::sleep(pause).await;
        relay.kill_hard();
        eprintln!("kill -9 number {} while streaming, {pause:?} after its first new record", kill + 1);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let versions = writer.await.expect("writer");
    let _survivor = stack.relay(&[]).await;
    let seen = stack.read_until(keys.len() * versions as usize, DEADLINE).await;
    assert_per_key_order(&seen, &expected(&keys, versions));
    stack.wait_outbox_count(0).await;
    assert_last_record_is_newest(&stack.read_to_end().await);
}

/// The worst moment: the broker acknowledged the records, the relay has not
/// yet made that durable nor confirmed the LSN. Holding the relay's
/// `relayed_rows` table (retention mode records there before confirming)
/// keeps it exactly there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_between_broker_ack_and_confirm_loses_nothing() {
    let stack = RelayStack::start().await;
    // No heartbeats: their confirmation would move the LSN the test watches.
    let retain =
        [("SLUICE_OUTBOX_RETENTION_SECS", "3600".to_string()), ("SLUICE_HEARTBEAT_INTERVAL_MS", "3600000".to_string())];
    let mut relay = stack.relay(&retain).await;
    relay.wait_ready().await;
    let client = stack.client().await;
    RelayStack::write(&client, "a", 1..=2).await;
    stack.read_until(2, DEADLINE).await;
    // Whether the slot's confirmed position is past `lsn`.
    let (pg, slot) = (&client, &stack.slot);
    let confirmed_past = |lsn: String| async move {
        let past: bool = pg
            .query_one(
                "select confirmed_flush_lsn > $2::text::pg_lsn from pg_replication_slots where slot_name = $1",
                &[slot, &lsn],
            )
            .await
            .expect("slot")
            .get(0);
        past
    };
    let mut locker = stack.client().await;
    let hold = locker.transaction().await.expect("begin");
    hold.batch_execute("lock table sluice_relay.relayed_rows in exclusive mode").await.expect("lock relayed_rows");
    // (The confirmation of `a` may still reach PostgreSQL: it ends before this.)
    let before: String = client.query_one("select pg_current_wal_lsn()::text", &[]).await.expect("lsn").get(0);
    let keys: Vec<String> = (0..10).map(|k| format!("w{k}")).collect();
    for key in &keys {
        RelayStack::write(&client, key, 1..=3).await;
    }
    // On the topic, i.e. acknowledged by the broker...
    stack.read_until(2 + 30, DEADLINE).await;
    // ...and not confirmed: the relay waits to record them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!confirmed_past(before).await, "the LSN moved past rows that were not recorded");
    relay.kill_hard();
    hold.rollback().await.expect("release");
    let _next = stack.relay(&retain).await;
    // Everything is sent again and recorded; nothing is lost.
    let all = sluice_testkit::wait_until("the re-sent rows to be recorded", DEADLINE, || {
        let client = &client;
        async move {
            let n: i64 = client.query_one("select count(*) from sluice_relay.relayed_rows", &[]).await.ok()?.get(0);
            (n == 32).then_some(n)
        }
    })
    .await;
    assert_eq!(all, 32);
    let seen = stack.read_to_end().await;
    assert!(seen.len() > 32, "the unconfirmed rows were not sent again ({} records)", seen.len());
    let mut want = expected(&keys, 3);
    want.insert("a".into(), 2);
    assert_per_key_order(&seen, &want);
    assert_last_record_is_newest(&seen);
}

/// Two relays started at the same instant over a table with rows: exactly
/// one snapshots and streams, every row is published once, in version order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_started_together_publish_the_snapshot_once() {
    let mut stack = RelayStack::start().await;
    for round in 0..4 {
        if round > 0 {
            stack.next_database().await;
        }
        let client = stack.client().await;
        RelayStack::write_bulk(&client, 1_000, 10).await;
        let (first, second) = tokio::join!(stack.relay(&[]), stack.relay(&[]));
        stack.wait_outbox_count(0).await;
        let seen = stack.read_to_end().await;
        let keys: Vec<String> = (0..1_000).map(|k| format!("k{k}")).collect();
        assert_per_key_order(&seen, &expected(&keys, 10));
        assert_eq!(seen.len(), 10_000, "round {round}: rows were published more than once");
        assert_last_record_is_newest(&seen);
        let ready = [first.is_ready().await, second.is_ready().await];
        assert_eq!(ready.iter().filter(|r| **r).count(), 1, "round {round}: exactly one relay is active: {ready:?}");
    }
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
