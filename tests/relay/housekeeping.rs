//! Housekeeping: only rows the broker acknowledged are deleted, by id, and
//! the deletion survives shutdowns; the relay's role needs SELECT and DELETE
//! on the outbox and nothing more.

use crate::harness::{DEADLINE, RelayStack, assert_last_record_is_newest, assert_per_key_order, metric};
use std::collections::HashMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_rows_are_deleted_at_once_without_a_retention() {
    let stack = RelayStack::start().await;
    let client = stack.client().await;
    // Rows written before the relay's slot exists come through its snapshot.
    RelayStack::write(&client, "early", 1..=3).await;
    let _relay = stack.relay(&[]).await;
    RelayStack::write(&client, "late", 1..=3).await;
    stack.read_until(6, DEADLINE).await;
    stack.wait_outbox_count(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_rows_are_kept_for_the_retention_then_deleted() {
    let stack = RelayStack::start().await;
    let client = stack.client().await;
    let relay = stack.relay(&[("SLUICE_OUTBOX_RETENTION_SECS", "3600".into())]).await;
    RelayStack::write(&client, "kept", 1..=4).await;
    stack.read_until(4, DEADLINE).await;
    // The rows are recorded as relayed, and a sweep ran after that...
    sluice_testkit::wait_until("the relayed rows to be recorded", DEADLINE, || {
        let client = &client;
        async move {
            let n: i64 = client.query_one("select count(*) from sluice_relay.relayed_rows", &[]).await.ok()?.get(0);
            (n == 4).then_some(())
        }
    })
    .await;
    let sweeps = metric(&relay, "sluice_relay_outbox_sweeps_total").await;
    sluice_testkit::wait_until("a sweep after the rows were recorded", DEADLINE, || {
        let relay = &relay;
        async move { (metric(relay, "sluice_relay_outbox_sweeps_total").await > sweeps).then_some(()) }
    })
    .await;
    // ...and kept them, since they are younger than the retention.
    assert_eq!(stack.outbox_count().await, 4, "rows inside the retention were deleted");
    drop(relay);

    // A relay with a retention of one second deletes them (and their records).
    let _short = stack.relay(&[("SLUICE_OUTBOX_RETENTION_SECS", "1".into())]).await;
    stack.wait_outbox_count(0).await;
    let records: i64 =
        client.query_one("select count(*) from sluice_relay.relayed_rows", &[]).await.expect("count").get(0);
    assert_eq!(records, 0, "records of deleted rows stay behind");
}

/// Rows acknowledged during the drain of a SIGTERM are deleted before exit.
/// Rows kept for a retention that is then turned off are still deleted: a
/// later snapshot would otherwise publish them after newer versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_kept_for_a_retention_turned_off_since_are_deleted() {
    let stack = RelayStack::start().await;
    let client = stack.client().await;
    let mut relay = stack.relay(&[("SLUICE_OUTBOX_RETENTION_SECS", "3600".into())]).await;
    RelayStack::write(&client, "kept", 1..=2).await;
    stack.read_until(2, DEADLINE).await;
    stack.wait_slot_confirmed_now("the kept rows to be recorded").await;
    assert!(relay.terminate().success());
    assert_eq!(stack.outbox_count().await, 2);

    let mut relay = stack.relay(&[]).await;
    RelayStack::write(&client, "kept", 3..=3).await;
    stack.wait_outbox_count(0).await;

    // And a new snapshot (the slot was lost) ends the key with its newest.
    assert!(relay.terminate().success());
    stack.drop_slot().await;
    let _relay = stack.relay(&[]).await;
    RelayStack::write(&client, "other", 1..=1).await;
    stack.read_until(4, DEADLINE).await;
    stack.wait_outbox_count(0).await;
    assert_last_record_is_newest(&stack.read_to_end().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_acknowledged_while_shutting_down_are_deleted() {
    let stack = RelayStack::start().await;
    let mut relay = stack.relay(&[]).await;
    relay.wait_ready().await;
    let client = stack.client().await;
    RelayStack::write_bulk(&client, 100, 5).await;
    stack.read_until(500, DEADLINE).await;
    assert!(relay.terminate().success());
    assert_eq!(stack.outbox_count().await, 0, "acknowledged rows were left in the outbox after a graceful stop");
}

/// A row written in a subtransaction (a savepoint) is identified by its id,
/// not by the transaction that wrote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_written_in_subtransactions_are_deleted() {
    let stack = RelayStack::start().await;
    let _relay = stack.relay(&[]).await;
    let mut client = stack.client().await;
    let tx = client.transaction().await.expect("begin");
    tx.batch_execute("savepoint s1").await.expect("savepoint");
    RelayStack::write(&tx, "sub", 1..=2).await;
    tx.batch_execute("release savepoint s1; savepoint s2").await.expect("savepoint");
    RelayStack::write(&tx, "sub", 3..=3).await;
    tx.batch_execute("release savepoint s2").await.expect("release");
    tx.commit().await.expect("commit");
    stack.read_until(3, DEADLINE).await;
    stack.wait_outbox_count(0).await;
}

/// A table added to SLUICE_OUTBOX_TABLES later has its existing rows relayed
/// (the slot is snapshotted again), and none is deleted before that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_added_later_has_its_existing_rows_relayed() {
    let stack = RelayStack::start().await;
    let client = stack.client().await;
    let mut relay = stack.relay(&[("SLUICE_HEARTBEAT_INTERVAL_MS", "200".into())]).await;
    RelayStack::write(&client, "first", 1..=2).await;
    stack.read_until(2, DEADLINE).await;

    let second = sluice_outbox::OutboxTable::parse("billing.events_out").expect("name");
    sluice_outbox::ensure_table(&client, &second).await.expect("second outbox");
    client
        .batch_execute(&format!(
            "grant usage on schema billing to sluice_relay; alter publication {} add table billing.events_out;
             insert into billing.events_out (id, aggregatetype, aggregateid, type, payload, aggregate_version)
             select gen_random_uuid(), 'thing', 'invoice', 'ThingChanged', convert_to('invoice:' || v, 'UTF8'), v
             from generate_series(1, 3) v",
            stack.publication
        ))
        .await
        .expect("second outbox with rows");
    // The relay has confirmed past those rows (it does not relay that table
    // yet), so only a new snapshot can bring them.
    stack.wait_slot_confirmed_now("the slot to confirm past the second outbox's rows").await;
    assert!(relay.terminate().success());
    assert_eq!(
        client.query_one("select count(*) from billing.events_out", &[]).await.expect("count").get::<_, i64>(0),
        3,
        "rows of a table the relay does not relay yet were deleted"
    );

    let both = || [("SLUICE_OUTBOX_TABLES", "cms.outbox, billing.events_out".to_string())];
    let mut relay = stack.relay(&both()).await;
    RelayStack::write(&client, "first", 3..=3).await;
    let seen = stack.read_until(6, DEADLINE).await;
    let want: HashMap<String, i64> = [("first".to_string(), 3), ("invoice".to_string(), 3)].into();
    assert_per_key_order(&seen, &want);
    wait_outboxes_empty(&client).await;

    // Removed from the configuration, then added back: the rows written in
    // between were skipped by the stream, so the table needs a new snapshot.
    assert!(relay.terminate().success());
    let mut relay = stack.relay(&[("SLUICE_HEARTBEAT_INTERVAL_MS", "200".into())]).await;
    relay.wait_ready().await;
    client
        .batch_execute(
            "insert into billing.events_out (id, aggregatetype, aggregateid, type, payload, aggregate_version)
             select gen_random_uuid(), 'thing', 'invoice', 'ThingChanged', convert_to('invoice:' || v, 'UTF8'), v
             from generate_series(4, 5) v",
        )
        .await
        .expect("rows while the table is not relayed");
    stack.wait_slot_confirmed_now("the slot to confirm past them").await;
    assert!(relay.terminate().success());

    let _relay = stack.relay(&both()).await;
    let seen = stack.read_until(8, DEADLINE).await;
    let want: HashMap<String, i64> = [("first".to_string(), 3), ("invoice".to_string(), 5)].into();
    assert_per_key_order(&seen, &want);
    wait_outboxes_empty(&client).await;
}

async fn wait_outboxes_empty(client: &tokio_postgres::Client) {
    sluice_testkit::wait_until("both outboxes to be emptied", DEADLINE, || async move {
        let n: i64 = client
            .query_one("select (select count(*) from cms.outbox) + (select count(*) from billing.events_out)", &[])
            .await
            .ok()?
            .get(0);
        (n == 0).then_some(())
    })
    .await;
}
