//! The Redis store's side of the `ProjectionStore` contract, against a real
//! redis-server.

use serde_json::json;
use sluice_store::{ApplyOutcome, Batch, Change, ProjectionStore, testing};
use sluice_store_redis::RedisStore;
use sluice_testkit::{TestRedis, random_name};

const TOPIC: &str = "t.article.state";

fn upsert(id: &str, version: i64) -> Change {
    Change {
        aggregate_type: "article".into(),
        aggregate_id: id.into(),
        version,
        document: Some(json!({"id": id, "version": version})),
    }
}

/// A batch on TOPIC's partitions 0 and 1: `expected` next offsets, changes,
/// and the new next offset of partition 0.
fn batch(expected: [Option<i64>; 2], changes: Vec<Change>, next: i64) -> Batch {
    testing::two_partition_batch(TOPIC, expected, changes, next, 1)
}

fn applied(n: usize) -> ApplyOutcome {
    testing::applied(TOPIC, n)
}

async fn start(redis: &TestRedis) -> (RedisStore, String) {
    let projection = random_name("contract");
    (RedisStore::connect(&redis.url(), &projection).await.expect("connect"), projection)
}

async fn version(redis: &TestRedis, projection: &str, id: &str) -> Option<i64> {
    let mut conn = redis.connection().await;
    redis::cmd("HGET")
        .arg(format!("sluice:{{{projection}}}:article:{id}"))
        .arg("version")
        .query_async(&mut conn)
        .await
        .expect("HGET")
}

/// The start-up race, step by step: a session read the stored positions,
/// the store was emptied, the marker was set again (the old code set it after
/// reading), then the first batch comes with the positions read before.
#[tokio::test]
async fn a_store_emptied_between_reading_positions_and_setting_the_marker_refuses_the_next_batch() {
    let redis = TestRedis::start();
    let (store, projection) = start(&redis).await;
    assert!(store.start_session(&[TOPIC.into()]).await.expect("session")[TOPIC].is_empty());
    assert_eq!(store.apply(&batch([None, None], vec![upsert("a", 1)], 1)).await.expect("apply"), applied(1));

    let stored = store.start_session(&[TOPIC.into()]).await.expect("session");
    assert_eq!(stored[TOPIC][&0].next_offset, 1);
    let mut conn = redis.connection().await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.expect("flushall");
    let _: () = redis::cmd("SET")
        .arg(sluice_store_redis::keys::marker(&projection))
        .arg(sluice_store_redis::KEY_FORMAT)
        .query_async(&mut conn)
        .await
        .expect("mark");

    let outcome = store.apply(&batch([Some(1), None], vec![upsert("b", 1)], 2)).await.expect("apply");
    assert_eq!(
        outcome,
        ApplyOutcome::PositionMismatch { topic: TOPIC.into(), partition: 0, expected: Some(1), stored: None },
        "a batch resuming from offset 1 must not be accepted by a store that lost offset 0's record"
    );
    assert_eq!(version(&redis, &projection, "b").await, None, "a refused batch writes nothing");
}

#[tokio::test]
async fn a_batch_is_refused_unless_every_expected_position_is_the_stored_one() {
    let redis = TestRedis::start();
    let (store, projection) = start(&redis).await;
    store.start_session(&[TOPIC.into()]).await.expect("session");
    let version = || version(&redis, &projection, "a");
    testing::check_positions_compare_and_set(&store, TOPIC, |v| upsert("a", v), version).await;
}

#[tokio::test]
async fn a_store_without_its_marker_refuses_every_batch_until_a_new_session() {
    let redis = TestRedis::start();
    let (store, projection) = start(&redis).await;
    // No session yet: no marker.
    assert_eq!(
        store.apply(&batch([None, None], vec![upsert("a", 1)], 1)).await.expect("apply"),
        ApplyOutcome::StoreLost
    );
    store.start_session(&[TOPIC.into()]).await.expect("session");
    assert_eq!(store.apply(&batch([None, None], vec![upsert("a", 1)], 1)).await.expect("apply"), applied(1));

    let mut conn = redis.connection().await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.expect("flushall");
    assert_eq!(
        store.apply(&batch([Some(1), None], vec![upsert("b", 1)], 2)).await.expect("apply"),
        ApplyOutcome::StoreLost
    );
    assert_eq!(version(&redis, &projection, "b").await, None);
    // The new session sees nothing stored: the projector starts from the beginning.
    assert!(store.start_session(&[TOPIC.into()]).await.expect("session")[TOPIC].is_empty());
}

/// Blue/green, step by step: a sealed generation refuses batches but is
/// still read; a session waits on it until the pointer moves, then starts
/// on the successor; a reader never reads a dropped generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_generation_refuses_batches_and_sessions_and_readers_follow_the_pointer() {
    use sluice_store_redis::generation::{self, Read};
    let redis = TestRedis::start();
    let (store, alias) = start(&redis).await;
    let mut conn = redis.connection().await;
    store.start_session(&[TOPIC.into()]).await.expect("session");
    assert_eq!(store.apply(&batch([None, None], vec![upsert("a", 1)], 1)).await.expect("apply"), applied(1));
    let read = async |conn: &mut redis::aio::MultiplexedConnection| {
        generation::read_document(conn, &alias, "article", "a", None).await.expect("read").read
    };
    assert!(matches!(read(&mut conn).await, Read::Found { version: 1, .. }));

    // The successor holds a newer version (built by a rebuild).
    let next = generation::successor(&alias, &alias);
    let builder = RedisStore::connect(&redis.url(), &next).await.expect("connect");
    builder.start_session(&[TOPIC.into()]).await.expect("session");
    assert_eq!(builder.apply(&batch([None, None], vec![upsert("a", 2)], 2)).await.expect("apply"), applied(1));

    generation::seal(&mut conn, &alias).await.expect("seal");
    assert_eq!(
        store.apply(&batch([Some(1), None], vec![upsert("a", 3)], 2)).await.expect("apply"),
        ApplyOutcome::Retired
    );
    assert_eq!(version(&redis, &alias, "a").await, Some(1), "a refused batch writes nothing");
    assert!(matches!(read(&mut conn).await, Read::Found { version: 1, .. }), "a sealed generation is read");

    // A new session waits while the pointer still names the sealed generation...
    let session = tokio::spawn(async move {
        let positions = store.start_session(&[TOPIC.into()]).await.expect("session");
        (store, positions)
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!session.is_finished(), "no session on a sealed generation");
    // ...and starts on the successor once it serves.
    generation::swap(&mut conn, &alias, &next).await.expect("swap");
    let (store, positions) = session.await.expect("session task");
    assert_eq!(store.generation(), next);
    assert_eq!(positions[TOPIC][&0].next_offset, 2, "the successor's positions");
    assert!(matches!(read(&mut conn).await, Read::Found { version: 2, .. }));

    let deleted = generation::drop_generation(&mut conn, &alias).await.expect("drop");
    assert!(deleted >= 3, "document, ids and positions of the old generation: {deleted}");
    assert_eq!(version(&redis, &alias, "a").await, None);
    assert_eq!(generation::marker(&mut conn, &alias).await.expect("marker").as_deref(), Some(generation::DROPPED));
    // A session can never make a dropped generation again: it follows the pointer.
    let stale = RedisStore::connect(&redis.url(), &alias).await.expect("connect");
    stale.start_session(&[TOPIC.into()]).await.expect("session");
    assert_eq!(stale.generation(), next);
    assert_eq!(generation::marker(&mut conn, &alias).await.expect("marker").as_deref(), Some(generation::DROPPED));
    assert_eq!(
        read(&mut conn).await,
        Read::Found { doc: json!({"id": "a", "version": 2}).to_string(), version: 2, author_name: None }
    );
    assert_eq!(
        generation::read_document(&mut conn, "nothing", "article", "a", None).await.expect("read").read,
        Read::NotBuilt
    );
}

/// The hand-over waits, with the serving generation sealed, until the
/// successor reached its positions (so no reader goes back in time); if the
/// successor's writer stops first, nothing is swapped and the seal is
/// lifted; a rebuild interrupted after its swap is finished by the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_waits_for_the_successor_to_reach_the_sealed_generation() {
    use sluice_store_redis::{generation, rebuild};
    use std::collections::HashMap;
    let redis = TestRedis::start();
    let (store, alias) = start(&redis).await;
    store.start_session(&[TOPIC.into()]).await.expect("session");
    // Partition 1 is at 3 in the serving generation; its records are gone
    // from the log since (floor 3), so the successor never stores a position.
    let mut first = batch([None, None], vec![upsert("a", 1)], 5);
    first.positions.get_mut(TOPIC).expect("topic").push(sluice_store::Position {
        partition: 1,
        next_offset: 3,
        applied_at_ms: 1,
    });
    assert_eq!(store.apply(&first).await.expect("apply"), applied(1));
    let next = generation::successor(&alias, &alias);
    let builder = RedisStore::connect(&redis.url(), &next).await.expect("connect");
    builder.start_session(&[TOPIC.into()]).await.expect("session");
    assert_eq!(builder.apply(&batch([None, None], vec![upsert("a", 2)], 2)).await.expect("apply"), applied(1));
    let mut conn = redis.connection().await;
    let lease = rebuild::Lease::acquire(&conn, &alias).await.expect("lease");
    assert!(rebuild::Lease::acquire(&conn, &alias).await.is_err(), "one rebuild at a time");

    let (topics, floors) = ([TOPIC.to_string()], HashMap::from([((TOPIC.to_string(), 1), 3)]));
    let other = rebuild::hand_over(&mut conn, &alias, &alias, &next, &["other".into()], &floors, || true).await;
    assert!(other.is_err(), "a successor built from other topics is not swapped in");
    let refused = rebuild::hand_over(&mut conn, &alias, &alias, &next, &topics, &floors, || false).await;
    assert!(refused.is_err(), "a successor whose writer stopped is not swapped in");
    assert_eq!(generation::marker(&mut conn, &alias).await.expect("marker").as_deref(), Some("2"), "unsealed");
    assert_eq!(generation::serving(&mut conn, &alias).await.expect("serving"), alias);

    let hand_over = {
        let (mut conn, alias, next, floors) = (conn.clone(), alias.clone(), next.clone(), floors.clone());
        tokio::spawn(async move {
            rebuild::hand_over(&mut conn, &alias, &alias, &next, &[TOPIC.to_string()], &floors, || true).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!hand_over.is_finished(), "no swap while the successor is behind");
    assert_eq!(generation::serving(&mut conn, &alias).await.expect("serving"), alias);
    assert_eq!(generation::marker(&mut conn, &alias).await.expect("marker").as_deref(), Some(generation::SEALED));
    assert_eq!(builder.apply(&batch([Some(2), None], vec![upsert("b", 1)], 5)).await.expect("apply"), applied(1));
    hand_over.await.expect("task").expect("hand over");
    assert_eq!(generation::serving(&mut conn, &alias).await.expect("serving"), next);

    // Interrupted here: the next rebuild drops what this one swapped out.
    lease.release().await.expect("release");
    let lease = rebuild::Lease::acquire(&conn, &alias).await.expect("lease after release");
    let (dropped, deleted) = rebuild::finish_interrupted(&mut conn, &alias).await.expect("finish").expect("one left");
    assert_eq!(dropped, alias);
    assert!(deleted >= 3, "document, ids and positions of the old generation: {deleted}");
    assert_eq!(generation::marker(&mut conn, &alias).await.expect("marker").as_deref(), Some(generation::DROPPED));
    assert_eq!(rebuild::finish_interrupted(&mut conn, &alias).await.expect("finish"), None);
    lease.release().await.expect("release");
}

/// A rebuild that gives up leaves the serving generation's marker as it was,
/// also when that is an older key format the projectors refuse.
#[tokio::test]
async fn giving_up_restores_the_marker_the_generation_had() {
    use sluice_store_redis::{generation, keys};
    let redis = TestRedis::start();
    let mut conn = redis.connection().await;
    for before in [Some("1"), None] {
        let generation = random_name("old");
        if let Some(before) = before {
            let _: () =
                redis::cmd("SET").arg(keys::marker(&generation)).arg(before).query_async(&mut conn).await.expect("SET");
        }
        generation::seal(&mut conn, &generation).await.expect("seal");
        generation::unseal(&mut conn, &generation).await.expect("unseal");
        assert_eq!(generation::marker(&mut conn, &generation).await.expect("marker").as_deref(), before);
    }
}
