//! The PostgreSQL read model end to end, every process real: command-api →
//! PostgreSQL (cms) → outbox-relay → tansu → two projector-postgres replicas
//! → the read tables (cms_read), written as the projector's least-privilege
//! role. Commands go over HTTP; one replica is killed (-9) in the middle of
//! a load and the projector's connections are cut while it writes; at the
//! end the read tables equal the source of truth, row for row.

mod common;

use serde_json::{Value, json};
use sluice_store_postgres::SchemaName;
use sluice_testkit::{ServiceHandle, TestBroker, TestPostgres, random_name, wait_until};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

const DEADLINE: Duration = Duration::from_secs(180);
const SCHEMA: &str = "cms_read";
const ARTICLES: usize = 120;
const AUTHORS: usize = 6;

/// Articles of the read model that differ from `cms.articles` (missing,
/// extra, or any column different, the author's current name included).
const ARTICLE_DIFFERENCES: &str = "
    select coalesce(s.id::text, r.id) as id,
           case when s.id is null then 'extra' when r.id is null then 'missing' else 'different' end
      from cms.articles s
      full join cms_read.articles r on r.id = s.id::text
      left join cms.authors a on a.id = s.author_id
     where s.id is null or r.id is null
        or (s.slug, s.title, s.body, s.author_id::text, s.status, s.tags, s.created_at, s.updated_at,
            s.published_at, s.scheduled_at, s.version, a.name)
           is distinct from
           (r.slug, r.title, r.body, r.author_id, r.status, r.tags, r.created_at, r.updated_at,
            r.published_at, r.scheduled_at, r.version, r.author_name)
     order by 1 limit 10";

/// Authors of the read model that differ from `cms.authors`, counts by
/// status (computed from `cms.articles`) included.
const AUTHOR_DIFFERENCES: &str = "
    select coalesce(s.id::text, r.id) as id,
           case when s.id is null then 'extra' when r.id is null then 'missing' else 'different' end
      from cms.authors s
      full join cms_read.authors r on r.id = s.id::text
      left join lateral (
          select count(*) filter (where status = 'DRAFT')::integer as drafts,
                 count(*) filter (where status = 'SCHEDULED')::integer as scheduled,
                 count(*) filter (where status = 'PUBLISHED')::integer as published,
                 count(*) filter (where status = 'ARCHIVED')::integer as archived
            from cms.articles where author_id = s.id) c on true
     where s.id is null or r.id is null
        or (s.name, s.bio, s.version, s.created_at, s.updated_at, c.drafts, c.scheduled, c.published, c.archived)
           is distinct from
           (r.name, r.bio, r.version, r.created_at, r.updated_at, r.drafts, r.scheduled, r.published, r.archived)
     order by 1 limit 10";

struct Stack {
    pg: TestPostgres,
    broker: TestBroker,
    db_name: String,
    admin: tokio_postgres::Client,
    registry: ServiceHandle,
    command: ServiceHandle,
    _relay: ServiceHandle,
    prefix: String,
    http: reqwest::Client,
}

impl Stack {
    async fn start() -> Stack {
        let pg = TestPostgres::start();
        let broker = TestBroker::start();
        let db_name = common::database_with_roles(&pg).await;
        let db = pg.url(&db_name);
        let admin = pg.connect(&db_name).await;
        let prefix = random_name("pgread");
        let mut registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
        registry.wait_ready().await;
        let command = common::command_api(&db, &registry.base_url(), &prefix, "http://127.0.0.1:9").await;
        let relay = common::relay(&db, &broker.bootstrap(), &prefix).await;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("HTTP client");
        Stack { pg, broker, db_name, admin, registry, command, _relay: relay, prefix, http }
    }

    async fn projector(&self) -> ServiceHandle {
        let url = common::projector_pg_url(&self.pg, &self.db_name);
        common::projector_postgres(&self.broker, &url, &self.registry.base_url(), &self.prefix, "cms", SCHEMA).await
    }

    async fn send(&self, path: &str, body: Option<Value>) -> Value {
        common::command(&self.http, &self.command.base_url(), path, body).await
    }

    async fn create_author(&self, name: &str) -> String {
        let answer = self.send("/authors", Some(json!({"name": name, "bio": format!("About {name}")}))).await;
        answer["id"].as_str().expect("author id").to_string()
    }

    /// (ids, kind) of rows that differ from the source of truth.
    async fn differences(&self, query: &str) -> Vec<(String, String)> {
        let rows = self.admin.query(query, &[]).await.expect("compare with the source of truth");
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    }

    /// Whether the stored positions reach the end of every partition of both topics.
    async fn caught_up(&self) -> bool {
        let schema = SchemaName::parse(SCHEMA).expect("schema");
        let metadata = Arc::new(sluice_kafka::metadata_client(&self.broker.bootstrap()).expect("metadata client"));
        for aggregate in ["article", "author"] {
            let topic = format!("{}.{aggregate}.state", self.prefix);
            let Ok(positions) = sluice_store_postgres::stored_positions(&self.admin, &schema, "cms", &topic).await
            else {
                return false;
            };
            let lag = sluice_projection::lag::projection_lag(metadata.clone(), &positions, &topic).await;
            if !lag.is_ok_and(|partitions| !partitions.is_empty() && partitions.iter().all(|p| p.messages == 0)) {
                return false;
            }
        }
        true
    }

    /// Waits until the read tables equal the source of truth with every
    /// record applied, then checks once more.
    async fn wait_for_the_truth(&self) {
        wait_until("the read tables to equal the source of truth", DEADLINE, || async {
            let equal = self.differences(ARTICLE_DIFFERENCES).await.is_empty()
                && self.differences(AUTHOR_DIFFERENCES).await.is_empty();
            (equal && self.caught_up().await).then_some(())
        })
        .await;
        assert_eq!(self.differences(ARTICLE_DIFFERENCES).await, [], "articles");
        assert_eq!(self.differences(AUTHOR_DIFFERENCES).await, [], "authors");
    }

    async fn read_article(&self, id: &str) -> Option<tokio_postgres::Row> {
        self.admin
            .query_opt("select status, author_name, tags, version from cms_read.articles where id = $1", &[&id])
            .await
            .expect("read article")
    }

    /// drafts, scheduled, published, archived
    async fn counts(&self, author: &str) -> Option<[i32; 4]> {
        let row = self
            .admin
            .query_opt("select drafts, scheduled, published, archived from cms_read.authors where id = $1", &[&author])
            .await
            .expect("read author")?;
        Some([row.get(0), row.get(1), row.get(2), row.get(3)])
    }

    /// Cuts the projector role's connections (what a failover or a DBA's
    /// pg_terminate_backend does), whatever they are doing.
    async fn cut_projector_connections(&self) -> i64 {
        let row = self
            .admin
            .query_one(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity where usename = 'sluice_projector_pg'",
                &[],
            )
            .await
            .expect("terminate");
        row.get(0)
    }
}

/// The commands of article `i`: drafted (by one of `authors`, or none),
/// then published, retagged, unpublished, archived or erased by turns.
async fn article_history(stack: Arc<Stack>, i: usize, authors: Arc<Vec<String>>) {
    let author = authors.get(i % (AUTHORS + 1)).cloned();
    let draft = json!({"title": format!("Article {i} about concurrency"), "body": format!("Body {i}"),
                       "author_id": author, "tags": [format!("t{}", i % 5)]});
    let id = stack.send("/articles", Some(draft)).await["id"].as_str().expect("article id").to_string();
    let on = |what: &str| format!("/articles/{id}/{what}");
    if i.is_multiple_of(2) {
        stack.send(&on("publish"), Some(json!({}))).await;
    }
    if i.is_multiple_of(3) {
        stack.send(&on("edit"), Some(json!({"tags": ["rust", format!("t{}", i % 5)]}))).await;
    }
    if i.is_multiple_of(4) {
        stack.send(&on("unpublish"), Some(json!({}))).await;
    }
    if i.is_multiple_of(5) {
        stack.send(&on("archive"), Some(json!({}))).await;
    }
    if i.is_multiple_of(11) {
        stack.send(&format!("/articles/{id}"), None).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_tables_follow_the_commands_through_crashes_and_equal_the_source_of_truth() {
    let stack = Arc::new(Stack::start().await);
    let mut replica = stack.projector().await;
    let _other_replica = stack.projector().await;

    // A first history, followed step by step.
    let wendy = stack.create_author("Wendy").await;
    let draft = json!({"title": "Hello", "body": "World", "author_id": wendy, "tags": ["rust"]});
    let hello = stack.send("/articles", Some(draft)).await["id"].as_str().expect("id").to_string();
    stack.send(&format!("/articles/{hello}/publish"), Some(json!({}))).await;
    wait_until("the published article with its author's name", DEADLINE, || async {
        let row = stack.read_article(&hello).await?;
        let named = row.get::<_, Option<String>>("author_name").as_deref() == Some("Wendy");
        (named && row.get::<_, String>("status") == "PUBLISHED").then_some(())
    })
    .await;
    assert_eq!(stack.counts(&wendy).await, Some([0, 0, 1, 0]));
    stack.send(&format!("/authors/{wendy}/rename"), Some(json!({"name": "Wendy Renamed"}))).await;
    stack.send(&format!("/articles/{hello}/unpublish"), Some(json!({}))).await;
    wait_until("the rename and the unpublication", DEADLINE, || async {
        let row = stack.read_article(&hello).await?;
        let renamed = row.get::<_, Option<String>>("author_name").as_deref() == Some("Wendy Renamed");
        (renamed && stack.counts(&wendy).await == Some([1, 0, 0, 0])).then_some(())
    })
    .await;
    stack.send(&format!("/articles/{hello}"), None).await;
    wait_until("the erased article to leave the read model", DEADLINE, || async {
        stack.read_article(&hello).await.is_none().then_some(())
    })
    .await;
    assert_eq!(stack.counts(&wendy).await, Some([0, 0, 0, 0]));
    stack.wait_for_the_truth().await;

    // A load: one replica is killed in the middle of it, and the projector's
    // connections are cut while it writes.
    let mut authors = Vec::new();
    for i in 0..AUTHORS {
        authors.push(stack.create_author(&format!("Author {i}")).await);
    }
    let authors = Arc::new(authors);
    let mut load = JoinSet::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // The second half of the load waits until the replica is killed, so the
    // kill always lands while the load is still being sent.
    let (open, gate) = tokio::sync::watch::channel(false);
    for _ in 0..8 {
        let (stack, authors, next, mut gate) = (stack.clone(), authors.clone(), next.clone(), gate.clone());
        load.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= ARTICLES {
                    break;
                }
                if i >= ARTICLES / 2 {
                    let _ = gate.wait_for(|open| *open).await;
                }
                article_history(stack.clone(), i, authors.clone()).await;
            }
        });
    }
    let applied = |n: i64| {
        let stack = stack.clone();
        async move {
            let row = stack.admin.query_one("select count(*) from cms_read.articles", &[]).await.ok()?;
            (row.get::<_, i64>(0) >= n).then_some(())
        }
    };
    wait_until("a third of the load in the read model", DEADLINE, || applied(ARTICLES as i64 / 3)).await;
    replica.kill_hard();
    let sent = next.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent < ARTICLES, "the replica was killed during the load ({sent} of {ARTICLES} articles begun)");
    open.send_replace(true);
    stack.send(&format!("/authors/{}/rename", authors[0]), Some(json!({"name": "Author 0, renamed"}))).await;
    replica.restart().await;
    wait_until("half of the load in the read model", DEADLINE, || applied(ARTICLES as i64 / 2)).await;
    let cut = stack.cut_projector_connections().await;
    assert!(cut > 0, "the projectors hold connections");
    stack.send(&format!("/authors/{}/rename", authors[1]), Some(json!({"name": "Author 1, renamed"}))).await;
    while let Some(done) = load.join_next().await {
        done.expect("load task");
    }
    stack.cut_projector_connections().await;
    stack.send(&format!("/authors/{}/rename", authors[0]), Some(json!({"name": "Author 0, renamed twice"}))).await;
    stack.wait_for_the_truth().await;

    // What the load did is there: renames fanned out, erasures kept.
    let renamed: i64 = stack
        .admin
        .query_one("select count(*) from cms_read.articles where author_name = 'Author 0, renamed twice'", &[])
        .await
        .expect("renamed")
        .get(0);
    assert!(renamed > 5, "the last rename reached the author's articles ({renamed})");
    let erased: i64 = stack
        .admin
        .query_one("select count(*) from cms_read.erased where aggregate_type = 'article'", &[])
        .await
        .expect("erased")
        .get(0);
    let erasures = (0..ARTICLES).filter(|i| i.is_multiple_of(11)).count() as i64 + 1;
    assert_eq!(erased, erasures, "every erased article keeps its marker");
    let found: i64 = stack
        .admin
        .query_one(
            "select count(*) from cms_read.articles where search @@ websearch_to_tsquery('english', 'concurrency')",
            &[],
        )
        .await
        .expect("search")
        .get(0);
    let live: i64 = stack.admin.query_one("select count(*) from cms.articles", &[]).await.expect("count").get(0);
    assert_eq!(found, live, "every article's title mentions concurrency");
    assert!(live > 0);

    // `sluice lag` reads the PostgreSQL read model's positions: all applied.
    let out = std::process::Command::new(sluice_testkit::service_binary("sluice"))
        .args(["lag", "--store", "postgres", "--database-url", &stack.pg.url(&stack.db_name)])
        .args(["--pg-schema", SCHEMA, "--projection", "cms", "--topic-prefix", &stack.prefix])
        .args(["--brokers", &stack.broker.bootstrap()])
        .output()
        .expect("run sluice lag");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains(&format!("{}.article.state", stack.prefix)) && stdout.contains("total lag: 0 messages"),
        "{stdout}"
    );
}
