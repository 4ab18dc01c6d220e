//! The thin slice, every process real: command-api writes an article and its
//! outbox row → outbox-relay reads it through logical replication → tansu →
//! projector-redis → query-api answers with it.

use serde_json::{Value, json};
use sluice_testkit::{ServiceHandle, TestBroker, TestPostgres, TestRedis, random_name, wait_until};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);

mod common;

use common::TOKEN;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_article_posted_to_the_command_api_is_served_by_the_query_api() {
    let pg = TestPostgres::start();
    let redis = TestRedis::start();
    let broker = TestBroker::start();
    let db = pg.create_database().await;
    let prefix = random_name("e2e");
    let projection = random_name("proj");

    let registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
    let query = ServiceHandle::start(
        "query-api",
        &[("SLUICE_REDIS_URL", redis.url()), ("SLUICE_PROJECTION", projection.clone())],
    )
    .await;
    let command = common::command_api(&db, &registry.base_url(), &prefix, &query.base_url()).await;
    let _relay = common::relay(&db, &broker.bootstrap(), &prefix).await;
    let _projector = common::projector(&broker, &redis, &registry.base_url(), &prefix, &projection, "").await;

    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/articles", command.base_url()))
        .bearer_auth(TOKEN)
        .json(&json!({"title": "Hello, Sluice", "body": "First post."}))
        .send()
        .await
        .expect("POST /articles");
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
    let location = response.headers()["location"].to_str().expect("location").to_string();
    let accepted: Value = response.json().await.expect("json body");
    let id = accepted["id"].as_str().expect("id").to_string();
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["version"], 1);
    assert!(accepted["consistency_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(location, format!("{}/articles/{id}", query.base_url()));

    let article: Value = wait_until("the article in the query API", DEADLINE, || {
        let req = http.get(&location).send();
        async move {
            let r = req.await.ok()?;
            if r.status() != 200 {
                return None;
            }
            assert_eq!(r.headers()["sluice-version"], "1");
            assert_eq!(r.headers()["sluice-freshness"], "projected");
            r.json().await.ok()
        }
    })
    .await;
    assert_eq!(article["id"], id.as_str());
    assert_eq!(article["title"], "Hello, Sluice");
    assert_eq!(article["slug"], "hello-sluice");
    assert_eq!(article["status"], "DRAFT");
    assert_eq!(article["version"], 1);

    // The rejected command is answered 422 and reaches nobody.
    let rejected = http
        .post(format!("{}/articles", command.base_url()))
        .bearer_auth(TOKEN)
        .json(&json!({"title": ""}))
        .send()
        .await
        .expect("POST /articles");
    assert_eq!(rejected.status(), 422);
    let body: Value = rejected.json().await.expect("json");
    assert_eq!(body["reasons"][0]["field"], "title");

    // The projection stored its position next to its data.
    let mut conn = redis.connection().await;
    let ids: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("sluice:{{{projection}}}:article:ids"))
        .query_async(&mut conn)
        .await
        .expect("SMEMBERS");
    assert_eq!(ids, vec![id]);
    let positions: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("sluice:{{{projection}}}:positions:{prefix}.article.state"))
        .query_async(&mut conn)
        .await
        .expect("HGETALL");
    assert!(!positions.is_empty(), "no positions stored");
}

/// Headers are an optimisation: with a relay that sends none, both read
/// models still hold every aggregate at its version (read from the snapshot),
/// the author's name fans out, and an erasure (a tombstone: no snapshot, so
/// its version header is always sent) is held at its own version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_models_are_right_without_any_header() {
    let mut ws = common::WriteSide::start("bare").await;
    ws.relay.terminate();
    ws.relay =
        common::relay_with(&ws.db, &ws.broker.bootstrap(), &ws.prefix, &[("SLUICE_HEADERS", "none".into())]).await;
    let author = ws.send("/authors", Some(json!({"name": "Ada"}))).await["id"].as_str().expect("id").to_string();
    let id = ws.create_article(json!({"title": "First", "author_id": author})).await;
    ws.send(&format!("/articles/{id}/edit"), Some(json!({"title": "Second"}))).await;
    ws.send(&format!("/articles/{id}/publish"), Some(json!({}))).await;
    ws.send(&format!("/authors/{author}/rename"), Some(json!({"name": "Ada L."}))).await;
    let gone = ws.create_article(json!({"title": "Gone"})).await;
    ws.send(&format!("/articles/{gone}"), None).await;
    let _redis = ws.projector().await;
    let (_pg, url, _) = ws.projector_postgres().await;

    let doc = wait_until("the article at version 3 in Redis", DEADLINE, || async {
        common::try_doc(&ws.redis, &ws.projection, &id).await.filter(|d| d["version"] == 3)
    })
    .await;
    assert_eq!((doc["title"].as_str(), doc["status"].as_str()), (Some("Second"), Some("PUBLISHED")));
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("read model");
    tokio::spawn(connection);
    let row = wait_until("the article and its author's name in PostgreSQL", DEADLINE, || async {
        let row = db
            .query_opt("select version, title, author_name from cms_read.articles where id = $1", &[&id])
            .await
            .ok()??;
        let (version, title, name): (i64, String, Option<String>) = (row.get(0), row.get(1), row.get(2));
        (version == 3 && name.as_deref() == Some("Ada L.")).then_some(title)
    })
    .await;
    assert_eq!(row, "Second");
    let erased = wait_until("the erasure in PostgreSQL", DEADLINE, || async {
        let row = db.query_opt("select version from cms_read.erased where id = $1", &[&gone]).await.ok()??;
        Some(row.get::<_, i64>(0))
    })
    .await;
    assert_eq!(erased, 2, "erased at its own version, not at the end of time");
    let key = format!("sluice:{{{}}}:article:{gone}", ws.projection);
    let held = wait_until("the erasure in Redis", DEADLINE, || async {
        let mut conn = ws.redis.connection().await;
        let erased: Option<String> = redis::cmd("HGET").arg(&key).arg("erased").query_async(&mut conn).await.ok()?;
        erased?;
        redis::cmd("HGET").arg(&key).arg("version").query_async::<Option<i64>>(&mut conn).await.ok()?
    })
    .await;
    assert_eq!(held, 2, "erased at its own version, not at the end of time");
}
