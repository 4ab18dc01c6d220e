//! The test kit itself: real processes that answer, and that are gone after drop.

use sluice_testkit::{TestBroker, TestPostgres, TestRedis};

fn alive(pid: u32) -> bool {
    sluice_stack::pid_alive(pid)
}

#[tokio::test]
async fn postgres_runs_with_logical_wal_and_stops_on_drop() {
    let pg = TestPostgres::start();
    let url = pg.create_database().await;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    let level: String = client.query_one("show wal_level", &[]).await.expect("show").get(0);
    assert_eq!(level, "logical");
    let pid = pg.pid();
    drop(client);
    drop(pg);
    assert!(!alive(pid), "postgres {pid} still running after drop");
}

#[tokio::test]
async fn redis_answers_and_stops_on_drop() {
    let redis = TestRedis::start();
    let mut conn = redis.connection().await;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.expect("ping");
    assert_eq!(pong, "PONG");
    let pid = redis.pid();
    drop(redis);
    assert!(!alive(pid), "redis-server {pid} still running after drop");
}

#[tokio::test]
async fn broker_has_the_header_index_and_stops_on_drop() {
    let broker = TestBroker::start();
    broker.create_topic("kit_check", 1, sluice_kafka::CleanupPolicy::Compact).await;
    let conn = rusqlite::Connection::open(broker.db_path()).expect("open tansu db");
    let indexes: i64 = conn
        .query_row(
            "select count(*) from sqlite_master where type = 'index' and name = 'header_topition_offset'",
            [],
            |r| r.get(0),
        )
        .expect("query");
    assert_eq!(indexes, 1);
    let pid = broker.pid();
    drop(broker);
    assert!(!alive(pid), "tansu {pid} still running after drop");
}
