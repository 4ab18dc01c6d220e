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
