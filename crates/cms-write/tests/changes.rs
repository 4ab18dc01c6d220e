//! GET /changes: catch-up that never skips a late commit and keeps each
//! aggregate's versions ascending.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use cms_domain::{ArticleCommand, EditArticle};
use cms_write::CommandContext;
use cms_write::service::IdempotencyKey;
use common::{Harness, READ};
use serde_json::{Value, json};

async fn page(h: &Harness, after: &str, limit: u32) -> Value {
    let r = h.send(Method::GET, &format!("/changes?after={after}&limit={limit}"), Some(READ), &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

fn titles(page: &Value) -> Vec<String> {
    page["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["snapshot"]["title"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn pages_follow_each_other_with_full_snapshots() {
    let h = Harness::start().await;
    for i in 0..5 {
        h.post("/articles", json!({"title": format!("A{i}")})).await;
    }
    let first = page(&h, "", 2).await;
    assert_eq!(titles(&first), ["A0", "A1"]);
    let c = &first["changes"][0];
    assert_eq!(
        (c["aggregate_type"].as_str(), c["version"].as_i64(), c["event_type"].as_str()),
        (Some("article"), Some(1), Some("ArticleDrafted"))
    );
    let second = page(&h, first["next_cursor"].as_str().expect("cursor"), 10).await;
    assert_eq!(titles(&second), ["A2", "A3", "A4"]);
    let empty = page(&h, second["next_cursor"].as_str().expect("cursor"), 10).await;
    assert_eq!(titles(&empty), Vec::<String>::new());
    assert_eq!(empty["next_cursor"], second["next_cursor"], "an empty page keeps the cursor");

    for bad in ["/changes?after=nonsense", "/changes?limit=0", "/changes?limit=5000", "/changes?colour=red"] {
        let r = h.send(Method::GET, bad, Some(READ), &[], Body::empty()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
    }
    let r = h.send(Method::GET, "/changes", None, &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_transaction_that_commits_late_is_not_skipped() {
    let h = Harness::start().await;
    h.post("/articles", json!({"title": "Before"})).await;
    let seen = page(&h, "", 100).await;
    assert_eq!(titles(&seen), ["Before"]);
    let cursor = seen["next_cursor"].as_str().expect("cursor").to_string();

    // A slow writer takes its transaction id first and commits last.
    let mut slow = h.client().await;
    let tx = slow.transaction().await.expect("begin");
    cms_write::store::changes::append(&tx, "article", "slow", 1, "ArticleDrafted", &json!({"title": "Slow"}))
        .await
        .expect("slow insert");
    // Meanwhile two commands commit.
    h.post("/articles", json!({"title": "Fast 1"})).await;
    h.post("/articles", json!({"title": "Fast 2"})).await;

    // A reader now must not move past the open transaction.
    let during = page(&h, &cursor, 100).await;
    assert_eq!(titles(&during), Vec::<String>::new(), "returned rows committed after an open transaction");
    assert_eq!(during["next_cursor"].as_str(), Some(cursor.as_str()));

    tx.commit().await.expect("commit the slow transaction");
    let after = page(&h, &cursor, 100).await;
    assert_eq!(titles(&after), ["Slow", "Fast 1", "Fast 2"]);
}

/// Every page from `after` to the end, `limit` rows at a time.
async fn read_to_end(h: &Harness, after: &str, limit: u32) -> Vec<Value> {
    let mut cursor = after.to_string();
    let mut all = Vec::new();
    loop {
        let p = page(h, &cursor, limit).await;
        let rows = p["changes"].as_array().expect("changes").clone();
        if rows.is_empty() {
            return all;
        }
        cursor = p["next_cursor"].as_str().expect("cursor").to_string();
        all.extend(rows);
    }
}

/// Transaction ids are handed out when a transaction first writes, not when
/// it commits. A command with an Idempotency-Key writes its key before it
/// locks the article, so it can hold a smaller id than the command that
/// wrote the article's previous version.
#[tokio::test]
async fn versions_of_one_aggregate_come_out_ascending_when_the_later_version_has_the_smaller_xid() {
    let h = Harness::start().await;
    let id = h.post("/articles", json!({"title": "Contended"})).await.id();
    let uuid: uuid::Uuid = id.parse().expect("uuid");

    // Someone holds the article.
    let mut holder = h.client().await;
    let hold = holder.transaction().await.expect("begin");
    hold.query_one("select 1 from articles where id = $1 for update", &[&uuid]).await.expect("lock the article");

    // A: a plain edit, queued first on the article's lock, without a transaction id yet.
    let edit = |title: &str, key: Option<&str>| {
        let service = h.service.clone();
        let ctx = CommandContext {
            idempotency: key.map(|k| IdempotencyKey { scope: "test".into(), key: k.into(), request_hash: vec![1] }),
            ..Default::default()
        };
        let command = ArticleCommand::Edit(EditArticle { title: Some(title.into()), ..Default::default() });
        tokio::spawn(async move { service.article_command(&ctx, uuid, command).await })
    };
    let a = edit("A", None);
    h.wait_blocked(1).await;
    // B: an edit with an Idempotency-Key: its claim takes a transaction id
    // now; then it queues behind A.
    let b = edit("B", Some("b"));
    h.wait_blocked(2).await;
    hold.rollback().await.expect("release the article");
    let a = a.await.expect("task a").expect("edit a");
    let b = b.await.expect("task b").expect("edit b");
    assert_eq!((a.body["version"].as_i64(), b.body["version"].as_i64()), (Some(2), Some(3)), "A locked first");
    let xids: Vec<i64> = h
        .client()
        .await
        .query("select txid::text::bigint from changes where aggregate_id = $1 order by version", &[&id])
        .await
        .expect("xids")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(xids[2] < xids[1], "the interleaving this test needs did not happen: xids {xids:?}");

    // A command sent after those answers comes after them, whatever aggregate it writes.
    let other = h.post("/articles", json!({"title": "Afterwards"})).await.id();

    for limit in [1, 2, 100] {
        let order: Vec<(String, i64)> = read_to_end(&h, "", limit)
            .await
            .iter()
            .map(|c| (c["aggregate_id"].as_str().expect("id").to_string(), c["version"].as_i64().expect("version")))
            .collect();
        let expected = [(id.clone(), 1), (id.clone(), 2), (id.clone(), 3), (other.clone(), 1)];
        assert_eq!(order, expected, "limit {limit}");
    }
}

/// Rows written before the order fix may already be reversed; the migration
/// that introduces the order puts them right.
#[tokio::test]
async fn the_migration_orders_rows_written_before_it() {
    let pg = sluice_testkit::TestPostgres::start();
    let url = pg.create_database().await;
    let db = url.rsplit('/').next().expect("database name").to_string();
    let mut client = pg.connect(&db).await;
    client.batch_execute("create schema cms; set search_path = cms").await.expect("schema");
    client.batch_execute(include_str!("../migrations/0001_articles.sql")).await.expect("migration 1");
    client.batch_execute(include_str!("../migrations/0002_cms_write_side.sql")).await.expect("migration 2");
    client
        .batch_execute(
            "create table sluice_migrations (version int primary key, name text not null,
                                             applied_at timestamptz not null default now());
             insert into sluice_migrations (version, name) values (1, 'articles'), (2, 'cms write side')",
        )
        .await
        .expect("record migrations 1 and 2");
    let insert = |v: i64| {
        format!(
            "insert into changes (aggregate_type, aggregate_id, version, event_type, snapshot)
             values ('article', 'a', {v}, 'ArticleEdited', '{{}}')"
        )
    };
    client.batch_execute(&insert(1)).await.expect("version 1");
    // Version 3 is written by a transaction that took its id before the one that wrote version 2.
    let mut early = pg.connect(&db).await;
    early.batch_execute("set search_path = cms").await.expect("search path");
    let early = early.transaction().await.expect("begin");
    early.query_one("select pg_current_xact_id()", &[]).await.expect("take an id");
    client.batch_execute(&insert(2)).await.expect("version 2");
    early.batch_execute(&insert(3)).await.expect("version 3");
    early.commit().await.expect("commit");

    let outbox = sluice_outbox::OutboxTable::parse("cms.outbox").expect("outbox name");
    assert_eq!(cms_write::migrations::migrate(&mut client, &outbox).await.expect("migrate"), [3]);
    let reader = cms_write::connect_pool(&url, 1).expect("pool").get().await.expect("connect");
    let page = cms_write::store::changes::page(&reader, Default::default(), 100).await.expect("page");
    let versions: Vec<i64> = page.iter().map(|c| c.version).collect();
    assert_eq!(versions, [1, 2, 3]);
}
