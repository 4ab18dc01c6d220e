//! The CMS driven over HTTP, every process real (command-api, relay, tansu,
//! registry, projector-redis, query-api): create, edit, publish, tag, rename
//! the author, unpublish, erase; every Redis view follows. An erased article
//! is a tombstone in its topic: a projection bootstrapped afterwards (after
//! the broker restarted and compacted) never shows it.

mod common;

use common::TOKEN;
use serde_json::{Value, json};
use sluice_store_redis::keys::{self, views};
use sluice_testkit::{ServiceHandle, TestBroker, TestPostgres, TestRedis, random_name, wait_until};
use std::collections::BTreeMap;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);

struct Cms {
    http: reqwest::Client,
    command: ServiceHandle,
    redis: TestRedis,
}

impl Cms {
    /// Sends a command; returns the aggregate's id and version.
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (String, i64) {
        let mut request = self.http.request(method, format!("{}{path}", self.command.base_url())).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("command");
        assert_eq!(response.status(), 202, "{path}: {:?}", response.text().await);
        let body: Value = response.json().await.expect("json");
        (body["id"].as_str().expect("id").to_string(), body["version"].as_i64().expect("version"))
    }

    async fn post(&self, path: &str, body: Value) -> (String, i64) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn cmd<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> T {
        let mut conn = self.redis.connection().await;
        cmd.query_async(&mut conn).await.expect("redis")
    }

    /// Waits until `projection` holds `id` of `aggregate` at `version`.
    async fn wait_version(&self, projection: &str, aggregate: &str, id: &str, version: i64) {
        let key = keys::document(projection, aggregate, id);
        wait_until(&format!("{aggregate} {id} at version {version}"), DEADLINE, || async {
            let stored: Option<i64> = self.cmd(redis::cmd("HGET").arg(&key).arg("version")).await;
            (stored == Some(version)).then_some(())
        })
        .await;
    }

    async fn hash(&self, key: String) -> BTreeMap<String, String> {
        self.cmd(redis::cmd("HGETALL").arg(key)).await
    }

    async fn newest_first(&self, key: String) -> Vec<String> {
        self.cmd(redis::cmd("ZREVRANGE").arg(key).arg(0).arg(-1)).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redis_view_follows_the_cms_and_an_erased_article_never_comes_back() {
    let pg = TestPostgres::start();
    let redis = TestRedis::start();
    let mut broker = TestBroker::start();
    let db = pg.create_database().await;
    let prefix = random_name("cms");
    let registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
    let query =
        ServiceHandle::start("query-api", &[("SLUICE_REDIS_URL", redis.url()), ("SLUICE_PROJECTION", "cms".into())])
            .await;
    let command = common::command_api(&db, &registry.base_url(), &prefix, &query.base_url()).await;
    let _relay = common::relay(&db, &broker.bootstrap(), &prefix).await;
    let _projector = common::projector(&broker, &redis, &registry.base_url(), &prefix, "cms", "").await;
    let cms = Cms { http: reqwest::Client::new(), command, redis };
    let p = "cms";

    let (ada, _) = cms.post("/authors", json!({"name": "Ada"})).await;
    let (first, _) =
        cms.post("/articles", json!({"title": "First", "body": "b", "author_id": ada, "tags": ["rust"]})).await;
    let (second, _) = cms.post("/articles", json!({"title": "Second", "body": "b", "author_id": ada})).await;
    cms.post(&format!("/articles/{first}/publish"), json!({})).await;
    cms.post(&format!("/articles/{second}/edit"), json!({"tags": ["rust", "cqrs"]})).await;
    let (_, v) = cms.post(&format!("/articles/{second}/publish"), json!({})).await;
    cms.wait_version(p, "article", &second, v).await;
    cms.wait_version(p, "article", &first, 2).await;
    assert_eq!(cms.newest_first(views::published(p)).await, [second.clone(), first.clone()]);
    assert_eq!(cms.newest_first(views::published_by_tag(p, "rust")).await, [second.clone(), first.clone()]);
    assert_eq!(cms.newest_first(views::published_by_tag(p, "cqrs")).await, [second.as_str()]);
    assert_eq!(cms.newest_first(views::published_by_author(p, &ada)).await, [second.clone(), first.clone()]);
    assert_eq!(cms.hash(keys::document(p, "article", &first)).await["author_name"], "Ada");
    let slug: Vec<String> = cms.cmd(redis::cmd("SMEMBERS").arg(views::article_by_slug(p, "first"))).await;
    assert_eq!(slug, [first.as_str()]);

    // The author is renamed: every article shows the new name.
    let (_, v) = cms.post(&format!("/authors/{ada}/rename"), json!({"name": "Ada Lovelace"})).await;
    cms.wait_version(p, "author", &ada, v).await;
    for article in [&first, &second] {
        assert_eq!(cms.hash(keys::document(p, "article", article)).await["author_name"], "Ada Lovelace");
    }

    // Unpublished: out of the lists, counted as a draft.
    let (_, v) = cms.post(&format!("/articles/{first}/unpublish"), json!({})).await;
    cms.wait_version(p, "article", &first, v).await;
    assert_eq!(cms.newest_first(views::published(p)).await, [second.as_str()]);
    let counts = cms.hash(views::author_counts(p, &ada)).await;
    assert_eq!((counts["PUBLISHED"].as_str(), counts["DRAFT"].as_str()), ("1", "1"));

    // Erased: gone from every view, the query API answers 404.
    let (_, erased_at) = cms.send(reqwest::Method::DELETE, &format!("/articles/{second}"), None).await;
    cms.wait_version(p, "article", &second, erased_at).await;
    assert!(cms.newest_first(views::published(p)).await.is_empty());
    assert!(cms.newest_first(views::published_by_tag(p, "cqrs")).await.is_empty());
    assert_eq!(cms.hash(keys::document(p, "article", &second)).await.get("doc"), None);
    let status = cms.http.get(format!("{}/articles/{second}", query.base_url())).send().await.expect("GET").status();
    assert_eq!(status, 404);

    // The broker restarts (tansu compacts its topics then); a projection
    // bootstrapped now never shows the erased article.
    broker.stop();
    broker.restart();
    let _fresh = common::projector(&broker, &cms.redis, &registry.base_url(), &prefix, "fresh", "").await;
    cms.wait_version("fresh", "article", &first, 3).await;
    cms.wait_version("fresh", "author", &ada, 2).await;
    let hash = cms.hash(keys::document("fresh", "article", &second)).await;
    assert_eq!(hash.get("doc"), None, "the erased article came back: {hash:?}");
    assert!(cms.newest_first(views::published("fresh")).await.is_empty());
    assert_eq!(cms.hash(keys::document("fresh", "article", &first)).await["author_name"], "Ada Lovelace");
}
