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

    let registry = ServiceHandle::start("schema-registry", &[("SLUICE_BROKERS", broker.bootstrap())]).await;
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
