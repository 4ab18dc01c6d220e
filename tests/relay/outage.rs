//! A broker that goes away, and start-up errors an operator must fix, told
//! apart from a standby.

use crate::harness::{DEADLINE, RelayStack, assert_last_record_is_newest};
use sluice_testkit::ServiceHandle;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_broker_outage_exits_and_loses_nothing() {
    let mut stack = RelayStack::start().await;
    let mut relay = stack.relay(&[("SLUICE_SHUTDOWN_DRAIN_MS", "2000".into())]).await;
    relay.wait_ready().await;
    let client = stack.client().await;
    let keys: Vec<String> = (0..10).map(|k| format!("o{k}")).collect();
    for key in &keys {
        RelayStack::write(&client, key, 1..=2).await;
    }
    stack.read_until(20, DEADLINE).await;

    stack.broker.stop();
    for key in &keys {
        RelayStack::write(&client, key, 3..=4).await;
    }
    // The relay notices: not ready, and an error in its log.
    sluice_testkit::wait_until("the relay to report the broker unreachable", DEADLINE, || {
        let relay = &relay;
        async move { (!relay.is_ready().await).then_some(()) }
    })
    .await;
    let log = relay.log_tail();
    assert!(log.contains("ERROR") && log.contains("Kafka broker unreachable"), "{log}");
    // SIGTERM: it exits by itself (terminate() would SIGKILL after 60 s).
    let status = relay.terminate();
    assert!(status.success(), "relay exited with {status}:\n{}", relay.log_tail());

    stack.broker.restart();
    let _next = stack.relay(&[]).await;
    stack.wait_outbox_count(0).await;
    // tansu compacts the state topic when it starts, so versions 1 and 2
    // may be gone (superseded); 3 and 4, sent during the outage, must be there.
    let seen = stack.read_to_end().await;
    for key in &keys {
        let mut versions: Vec<i64> = seen.iter().filter(|s| &s.key == key).map(|s| s.version).collect();
        versions.dedup();
        assert!(versions.ends_with(&[3, 4]), "{key}: {versions:?}");
    }
    assert_last_record_is_newest(&seen);
}

/// A snapshot stalled on a broker that went away: losing the connection that
/// holds the relay lock ends the session (another relay may take over, so
/// nothing queued may still be sent), and SIGTERM is obeyed; after the broker
/// is back, nothing is lost and every key ends with its newest version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lock_or_sigterm_ends_a_snapshot_stalled_on_the_broker() {
    let mut stack = RelayStack::start().await;
    let client = stack.client().await;
    RelayStack::write_bulk(&client, 100, 1_000).await;
    let mut relay = stack.relay(&[("SLUICE_SHUTDOWN_DRAIN_MS", "2000".into())]).await;
    stack.wait_topic_beyond(1_000).await;
    stack.broker.stop();
    let completed: Option<chrono::DateTime<chrono::Utc>> = client
        .query_one(
            &format!("select max(snapshot_completed_at) from sluice_relay.slots where slot = '{}'", stack.slot),
            &[],
        )
        .await
        .expect("slot state")
        .get(0);
    assert!(completed.is_none(), "the snapshot finished before the broker went away: the test proves nothing");

    // The connection holding the lock dies (a DBA's pg_terminate_backend).
    let killed: i64 = client
        .query_one("select count(pg_terminate_backend(pid)) from pg_locks where locktype = 'advisory' and granted", &[])
        .await
        .expect("terminate the lock holder")
        .get(0);
    assert_eq!(killed, 1);
    wait_for_log(&relay, "lost the session connection that holds the relay lock").await;

    // SIGTERM while the next session snapshots against the absent broker.
    let status = relay.terminate();
    assert!(status.success(), "relay exited with {status}:\n{}", relay.log_tail());

    stack.broker.restart();
    let _next = stack.relay(&[]).await;
    stack.wait_outbox_count(0).await;
    let seen = stack.read_to_end().await;
    let mut newest: std::collections::HashMap<&str, i64> = Default::default();
    for s in &seen {
        let v = newest.entry(s.key.as_str()).or_default();
        *v = (*v).max(s.version);
    }
    assert_eq!(newest.len(), 100);
    assert!(newest.values().all(|v| *v == 1_000), "{newest:?}");
    assert_last_record_is_newest(&seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_errors_say_what_to_fix() {
    let mut stack = RelayStack::start().await;
    let client = stack.client().await;

    // A role without REPLICATION.
    client.batch_execute("create role weak login").await.expect("role");
    let weak_url = format!("postgres://weak@127.0.0.1:{}/{}", stack.pg.port, stack.db_name);
    let weak = stack.relay(&[("SLUICE_DATABASE_URL", weak_url)]).await;
    wait_for_log(&weak, "lacks the REPLICATION attribute").await;
    assert!(weak.log_tail().contains("ALTER ROLE weak REPLICATION"), "{}", weak.log_tail());
    assert!(!weak.is_ready().await);
    assert_eq!(readyz_standby_ok(&weak).await, 503, "a failing relay passed for a standby");

    // A publication the relay's role may not create.
    let unpublished = stack.relay(&[("SLUICE_PUBLICATION", "nobody_made_this".into())]).await;
    wait_for_log(&unpublished, "create publication nobody_made_this for table cms.outbox").await;
    assert!(!unpublished.is_ready().await);

    // Missing DELETE on the outbox.
    client.batch_execute("revoke delete on cms.outbox from sluice_relay").await.expect("revoke");
    let no_delete = stack.relay(&[]).await;
    wait_for_log(&no_delete, "GRANT SELECT, DELETE ON cms.outbox TO sluice_relay").await;
    assert!(!no_delete.is_ready().await);
    client.batch_execute("grant delete on cms.outbox to sluice_relay").await.expect("grant");
    drop((weak, unpublished, no_delete));

    // A standby is not an error.
    let active = stack.relay(&[]).await;
    sluice_testkit::wait_until("the relay to be ready", DEADLINE, || {
        let active = &active;
        async move { active.is_ready().await.then_some(()) }
    })
    .await;
    let standby = stack.relay(&[]).await;
    wait_for_log(&standby, "standby").await;
    let log = standby.log_tail();
    assert!(!log.contains("ERROR"), "a standby logged an error:\n{log}");
    // Not ready (it does not stream), but healthy in its role: what the Helm
    // chart's readiness probe asks, so that standbys do not stall a rollout.
    assert!(!standby.is_ready().await);
    assert_eq!(readyz_standby_ok(&standby).await, 200);
    assert_eq!(readyz_standby_ok(&active).await, 200);
    assert_eq!(crate::harness::metric(&active, "sluice_relay_streaming").await, 1.0);
    assert_eq!(crate::harness::metric(&standby, "sluice_relay_streaming").await, 0.0);
    // A relay that could not take over is no standby, even while another
    // holds the lock (it would pass a rollout, then stream nothing).
    let broken = stack.relay(&[("SLUICE_PUBLICATION", "nobody_made_this".into())]).await;
    wait_for_log(&broken, "create publication nobody_made_this for table cms.outbox").await;
    assert_eq!(readyz_standby_ok(&broken).await, 503);
    drop(broken);

    // Slot names are global to the server: a relay of another database
    // given the same slot name refuses it rather than judging or dropping it.
    drop(standby);
    drop(active);
    let (slot, first_db) = (stack.slot.clone(), stack.db_name.clone());
    stack.next_database().await;
    stack.slot = slot;
    let other = stack.relay(&[]).await;
    wait_for_log(&other, "belongs to database").await;
    assert!(!other.is_ready().await);
    let admin = stack.pg.connect("postgres").await;
    let owner: String = admin
        .query_one("select database::text from pg_replication_slots where slot_name = $1", &[&stack.slot])
        .await
        .expect("the first database's slot is still there")
        .get(0);
    assert_eq!(owner, first_db, "the other database's slot was dropped and made again");
}

/// Waits until an ERROR-level line of the relay's log contains `text`.
async fn wait_for_log(relay: &sluice_testkit::ServiceHandle, text: &str) {
    sluice_testkit::wait_until(&format!("the log to say `{text}`"), DEADLINE, || {
        let log = relay.log_tail();
        let found = log.lines().any(|l| l.contains(text) && (l.contains("ERROR") || text == "standby"));
        async move { found.then_some(()) }
    })
    .await;
}

/// The status of `/readyz?standby=ok`.
async fn readyz_standby_ok(relay: &ServiceHandle) -> u16 {
    let url = format!("{}/readyz?standby=ok", relay.base_url());
    reqwest::get(url).await.expect("GET /readyz?standby=ok").status().as_u16()
}
