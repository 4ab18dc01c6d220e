//! The CMS views the Redis store keeps in the same atomic step as the
//! documents, against a real redis-server: applied through the store's own
//! `apply`, as the projector does.

use serde_json::{Value, json};
use sluice_store::{ApplyOutcome, Batch, Change, ProjectionStore};
use sluice_store_redis::RedisStore;
use sluice_store_redis::keys::{self, views};
use sluice_testkit::{TestRedis, random_name};
use std::collections::BTreeMap;

const ARTICLES: &str = "t.article.state";
const AUTHORS: &str = "t.author.state";

struct Views {
    redis: TestRedis,
    store: RedisStore,
    projection: String,
}

fn article(id: &str, version: i64, slug: &str, status: &str, author: Option<&str>, tags: &[&str], at: i64) -> Change {
    let published_at = if status == "PUBLISHED" { json!(at) } else { Value::Null };
    Change {
        aggregate_type: "article".into(),
        aggregate_id: id.into(),
        version,
        document: Some(json!({"id": id, "slug": slug, "title": "T", "body": "B", "author_id": author,
            "status": status, "version": version, "created_at": 1, "updated_at": at,
            "published_at": published_at, "tags": tags, "scheduled_at": null})),
    }
}

fn author(id: &str, version: i64, name: &str) -> Change {
    Change {
        aggregate_type: "author".into(),
        aggregate_id: id.into(),
        version,
        document: Some(
            json!({"id": id, "name": name, "version": version, "created_at": 1, "updated_at": 1, "bio": null}),
        ),
    }
}

impl Views {
    async fn start() -> Views {
        let redis = TestRedis::start();
        let projection = random_name("views");
        let store = RedisStore::connect(&redis.url(), &projection).await.expect("connect");
        store.start_session(&[ARTICLES.into(), AUTHORS.into()]).await.expect("session");
        Views { redis, store, projection }
    }

    /// Applies changes (positions are not what this test is about: none).
    async fn apply(&self, changes: Vec<Change>) {
        let mut by_topic: BTreeMap<String, Vec<Change>> = BTreeMap::new();
        for c in changes {
            let topic = if c.aggregate_type == "article" { ARTICLES } else { AUTHORS };
            by_topic.entry(topic.into()).or_default().push(c);
        }
        let batch = Batch { changes: by_topic, ..Batch::default() };
        let outcome = self.store.apply(&batch).await.expect("apply");
        assert!(matches!(outcome, ApplyOutcome::Applied { .. }), "{outcome:?}");
    }

    async fn cmd<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> T {
        let mut conn = self.redis.connection().await;
        cmd.query_async(&mut conn).await.expect("redis")
    }

    async fn author_name(&self, article: &str) -> Option<String> {
        self.cmd(redis::cmd("HGET").arg(keys::document(&self.projection, "article", article)).arg("author_name")).await
    }

    async fn newest_first(&self, key: String) -> Vec<String> {
        self.cmd(redis::cmd("ZREVRANGE").arg(key).arg(0).arg(-1)).await
    }

    async fn counts(&self, author: &str) -> BTreeMap<String, i64> {
        let all: BTreeMap<String, i64> =
            self.cmd(redis::cmd("HGETALL").arg(views::author_counts(&self.projection, author))).await;
        all.into_iter().filter(|(_, n)| *n != 0).collect()
    }

    async fn by_slug(&self, slug: &str) -> Vec<String> {
        self.cmd(redis::cmd("SMEMBERS").arg(views::article_by_slug(&self.projection, slug))).await
    }
}

#[tokio::test]
async fn an_author_arriving_after_its_articles_and_renamed_later_shows_everywhere() {
    let v = Views::start().await;
    let p = &v.projection;
    // Articles first: their author is not known yet.
    v.apply(vec![
        article("a1", 1, "one", "PUBLISHED", Some("ada"), &["rust"], 100),
        article("a2", 1, "two", "DRAFT", Some("ada"), &[], 0),
    ])
    .await;
    assert_eq!(v.author_name("a1").await, None);
    v.apply(vec![author("ada", 1, "Ada")]).await;
    assert_eq!((v.author_name("a1").await, v.author_name("a2").await), (Some("Ada".into()), Some("Ada".into())));
    // A rename reaches every article of the author in the same step.
    v.apply(vec![author("ada", 2, "Ada Lovelace")]).await;
    assert_eq!(v.author_name("a2").await.as_deref(), Some("Ada Lovelace"));
    // An article arriving after the author gets the name at once; a late,
    // older author record changes nothing.
    v.apply(vec![article("a3", 1, "three", "DRAFT", Some("ada"), &[], 0), author("ada", 1, "Ada")]).await;
    assert_eq!(v.author_name("a3").await.as_deref(), Some("Ada Lovelace"));
    assert_eq!(v.author_name("a1").await.as_deref(), Some("Ada Lovelace"));
    assert_eq!(v.counts("ada").await, BTreeMap::from([("DRAFT".into(), 2), ("PUBLISHED".into(), 1)]));
    assert_eq!(v.newest_first(views::published_by_author(p, "ada")).await, ["a1"]);
}

#[tokio::test]
async fn published_lists_follow_status_tags_and_time() {
    let v = Views::start().await;
    let p = &v.projection;
    v.apply(vec![
        article("old", 1, "old", "PUBLISHED", None, &["rust", "cqrs"], 1_764_000_000_000_001),
        article("new", 1, "new", "PUBLISHED", Some("bo"), &["rust"], 1_764_000_000_000_002),
        article("draft", 1, "draft", "DRAFT", None, &["rust"], 0),
    ])
    .await;
    assert_eq!(v.newest_first(views::published(p)).await, ["new", "old"], "newest first, to the microsecond");
    assert_eq!(v.newest_first(views::published_by_tag(p, "rust")).await, ["new", "old"]);
    assert_eq!(v.newest_first(views::published_by_tag(p, "cqrs")).await, ["old"]);

    // Tags change, one is unpublished, one archived: they leave the lists.
    v.apply(vec![
        article("old", 2, "old", "PUBLISHED", None, &["cqrs"], 1_764_000_000_000_001),
        article("new", 2, "new", "DRAFT", Some("bo"), &["rust"], 0),
        article("draft", 2, "draft", "PUBLISHED", None, &["rust"], 1_764_000_000_000_003),
        article("draft", 3, "draft", "ARCHIVED", None, &["rust"], 0),
    ])
    .await;
    assert_eq!(v.newest_first(views::published(p)).await, ["old"]);
    assert!(v.newest_first(views::published_by_tag(p, "rust")).await.is_empty());
    assert!(v.newest_first(views::published_by_author(p, "bo")).await.is_empty());
    assert_eq!(v.counts("bo").await, BTreeMap::from([("DRAFT".into(), 1)]));
    // Duplicates and older versions change nothing.
    v.apply(vec![article("new", 1, "new", "PUBLISHED", Some("bo"), &["rust"], 5)]).await;
    assert!(v.newest_first(views::published(p)).await == ["old"]);
}

#[tokio::test]
async fn slugs_move_with_their_articles() {
    let v = Views::start().await;
    v.apply(vec![article("a", 1, "hello", "DRAFT", None, &[], 0)]).await;
    assert_eq!(v.by_slug("hello").await, ["a"]);
    // `a` renames its slug and `b` takes the old one; either order of
    // arrival ends with each slug naming its current article.
    v.apply(vec![article("b", 1, "hello", "DRAFT", None, &[], 0), article("a", 2, "bye", "DRAFT", None, &[], 0)]).await;
    assert_eq!((v.by_slug("hello").await, v.by_slug("bye").await), (vec!["b".to_string()], vec!["a".to_string()]));
}

#[tokio::test]
async fn an_erased_article_leaves_every_view_and_never_comes_back() {
    let v = Views::start().await;
    let p = &v.projection;
    v.apply(vec![author("ada", 1, "Ada"), article("a", 1, "gone", "PUBLISHED", Some("ada"), &["rust"], 10)]).await;
    v.apply(vec![article("a", 2, "gone", "PUBLISHED", Some("ada"), &["rust"], 10), Change::erasure("article", "a", 3)])
        .await;
    let key = keys::document(p, "article", "a");
    let hash: BTreeMap<String, String> = v.cmd(redis::cmd("HGETALL").arg(&key)).await;
    assert_eq!(hash, BTreeMap::from([("erased".into(), "1".into()), ("version".into(), "3".into())]));
    assert!(v.newest_first(views::published(p)).await.is_empty());
    assert!(v.newest_first(views::published_by_tag(p, "rust")).await.is_empty());
    assert!(v.newest_first(views::published_by_author(p, "ada")).await.is_empty());
    assert!(v.by_slug("gone").await.is_empty());
    assert!(v.counts("ada").await.is_empty());
    let ids: Vec<String> = v.cmd(redis::cmd("SMEMBERS").arg(keys::ids(p, "article"))).await;
    assert!(ids.is_empty());
    // A late, older record does not bring it back.
    v.apply(vec![article("a", 2, "gone", "PUBLISHED", Some("ada"), &["rust"], 10)]).await;
    let doc: Option<String> = v.cmd(redis::cmd("HGET").arg(&key).arg("doc")).await;
    assert_eq!(doc, None);
    assert!(v.newest_first(views::published(p)).await.is_empty());
}

/// Fields of unexpected types (possible for topics read without a reader
/// schema) are skipped, never an error half-way through the script: Redis
/// does not roll back a script's earlier writes.
#[tokio::test]
async fn odd_fields_are_skipped_and_never_leave_views_half_written() {
    let v = Views::start().await;
    let p = &v.projection;
    v.apply(vec![article("a", 1, "a", "DRAFT", Some("au"), &[], 0)]).await;
    let mut odd = article("a", 2, "a", "PUBLISHED", Some("au"), &[], 7);
    if let Some(doc) = odd.document.as_mut() {
        doc["tags"] = json!([{"x": 1}, "ok", 3]);
        doc["slug"] = json!(5);
    }
    v.apply(vec![odd]).await;
    assert_eq!(v.counts("au").await, BTreeMap::from([("PUBLISHED".into(), 1)]));
    assert_eq!(v.newest_first(views::published_by_author(p, "au")).await, ["a"]);
    assert_eq!(v.newest_first(views::published_by_tag(p, "ok")).await, ["a"]);
    assert!(v.by_slug("a").await.is_empty(), "the old slug was released");
}

/// A projection built before the views (marker format 1) has documents that
/// were never indexed: it is refused rather than updated into wrong views.
#[tokio::test]
async fn a_projection_built_without_the_views_is_refused_with_what_to_do() {
    let redis = TestRedis::start();
    let projection = random_name("old");
    let mut conn = redis.connection().await;
    let _: () = redis::cmd("SET").arg(keys::marker(&projection)).arg("1").query_async(&mut conn).await.expect("SET");
    let store = RedisStore::connect(&redis.url(), &projection).await.expect("connect");
    let refused = store.start_session(&[ARTICLES.into()]).await.expect_err("an old projection is refused");
    assert!(format!("{refused:#}").contains("bootstrap it again under a new name"), "{refused:#}");
}
