//! The PostgreSQL store's side of the `ProjectionStore` contract, and its
//! tables, against a real PostgreSQL. The store always runs as the
//! least-privilege role of `deploy/sql/roles.sql`.

use serde_json::{Value, json};
use sluice_store::{ApplyOutcome, Batch, Change, ProjectionStore, testing};
use sluice_store_postgres::PostgresStore;
use sluice_testkit::{TestPostgres, random_name, wait_until};
use std::sync::Arc;
use std::time::Duration;

const TOPIC: &str = "t.article.state";
const AUTHORS: &str = "t.author.state";
const ROLE: &str = "sluice_projector_pg";

struct Db {
    pg: TestPostgres,
    name: String,
    /// An administrator's connection.
    admin: tokio_postgres::Client,
}

impl Db {
    /// A fresh database with the roles of `deploy/sql/roles.sql`.
    async fn start() -> Db {
        let pg = TestPostgres::start();
        let url = pg.create_database().await;
        let name = url.rsplit('/').next().expect("database name").to_string();
        let admin = pg.connect(&name).await;
        let roles = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/sql/roles.sql"))
            .expect("deploy/sql/roles.sql");
        admin.batch_execute(&roles).await.expect("roles.sql");
        Db { pg, name, admin }
    }

    fn role_url(&self) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}/{}", self.pg.port, self.name)
    }

    fn store_in(&self, schema: &str, projection: &str) -> PostgresStore {
        PostgresStore::connect(&self.role_url(), schema, projection).expect("store")
    }

    /// A store on `cms_read` for a new projection, with its session started.
    async fn store(&self) -> PostgresStore {
        let store = self.store_in("cms_read", &random_name("contract"));
        store.start_session(&[TOPIC.into(), AUTHORS.into()]).await.expect("session");
        store
    }

    async fn version(&self, table: &str, id: &str) -> Option<i64> {
        self.admin
            .query_opt(&format!("select version from cms_read.{table} where id = $1"), &[&id])
            .await
            .expect("version")
            .map(|r| r.get(0))
    }

    async fn article(&self, id: &str) -> Option<tokio_postgres::Row> {
        self.admin
            .query_opt(
                "select title, author_id, author_name, status, tags, published_at, version
                   from cms_read.articles where id = $1",
                &[&id],
            )
            .await
            .expect("article")
    }

    async fn author_name(&self, article: &str) -> Option<String> {
        self.article(article).await.expect("article row").get("author_name")
    }

    /// drafts, scheduled, published, archived
    async fn counts(&self, author: &str) -> [i32; 4] {
        let row = self
            .admin
            .query_one("select drafts, scheduled, published, archived from cms_read.authors where id = $1", &[&author])
            .await
            .expect("author row");
        [row.get(0), row.get(1), row.get(2), row.get(3)]
    }

    async fn erased_at(&self, aggregate_type: &str, id: &str) -> Option<i64> {
        self.admin
            .query_opt(
                "select version from cms_read.erased where aggregate_type = $1 and id = $2",
                &[&aggregate_type, &id],
            )
            .await
            .expect("erased")
            .map(|r| r.get(0))
    }
}

fn article(id: &str, version: i64, author: Option<&str>, status: &str) -> Change {
    let published_at = (status == "PUBLISHED").then_some(1_700_000_000_000_000_i64 + version);
    Change {
        aggregate_type: "article".into(),
        aggregate_id: id.into(),
        version,
        document: Some(json!({
            "id": id, "slug": format!("slug-{id}"), "title": format!("{id} v{version}"), "body": "body",
            "author_id": author, "status": status, "version": version, "created_at": 1_700_000_000_000_000_i64,
            "updated_at": 1_700_000_000_000_000_i64 + version, "published_at": published_at,
            "tags": ["rust", format!("v{version}")], "scheduled_at": null
        })),
    }
}

fn upsert(id: &str, version: i64) -> Change {
    article(id, version, None, "DRAFT")
}

fn author(id: &str, version: i64, name: &str) -> Change {
    Change {
        aggregate_type: "author".into(),
        aggregate_id: id.into(),
        version,
        document: Some(json!({"id": id, "name": name, "version": version, "created_at": 1, "updated_at": version,
                              "bio": null})),
    }
}

/// A batch on TOPIC's partitions 0 and 1: `expected` next offsets, changes,
/// and the new next offset of partition 0.
fn batch(expected: [Option<i64>; 2], changes: Vec<Change>, next: i64) -> Batch {
    testing::two_partition_batch(TOPIC, expected, changes, next, 1_700_000_000_000)
}

fn applied(n: usize) -> ApplyOutcome {
    testing::applied(TOPIC, n)
}

/// Applies `changes` as the next batch on TOPIC's partition 0, whose position
/// is `*next`: the way a projector moves through a topic.
async fn step(store: &PostgresStore, next: &mut i64, changes: Vec<Change>) -> ApplyOutcome {
    let expected = (*next > 0).then_some(*next);
    let outcome = store.apply(&batch([expected, None], changes, *next + 1)).await.expect("apply");
    *next += 1;
    outcome
}

/// The start-up race, step by step: a session read the stored positions,
/// the store was emptied, the marker was set again, then the first batch
/// comes with the positions read before.
#[tokio::test]
async fn a_store_emptied_between_reading_positions_and_setting_the_marker_refuses_the_next_batch() {
    let db = Db::start().await;
    let store = db.store_in("cms_read", "p");
    assert!(store.start_session(&[TOPIC.into()]).await.expect("session")[TOPIC].is_empty());
    assert_eq!(store.apply(&batch([None, None], vec![upsert("a", 1)], 1)).await.expect("apply"), applied(1));

    let stored = store.start_session(&[TOPIC.into()]).await.expect("session");
    assert_eq!(stored[TOPIC][&0].next_offset, 1);
    assert_eq!(stored[TOPIC][&0].applied_at_ms, 1_700_000_000_000);
    db.admin
        .batch_execute(
            "truncate cms_read.projections, cms_read.positions, cms_read.articles, cms_read.authors,
                      cms_read.documents, cms_read.erased;
             insert into cms_read.projections (projection) values ('p')",
        )
        .await
        .expect("empty the store and mark it again");

    let outcome = store.apply(&batch([Some(1), None], vec![upsert("b", 1)], 2)).await.expect("apply");
    assert_eq!(
        outcome,
        ApplyOutcome::PositionMismatch { topic: TOPIC.into(), partition: 0, expected: Some(1), stored: None },
        "a batch resuming from offset 1 must not be accepted by a store that lost offset 0's record"
    );
    assert_eq!(db.version("articles", "b").await, None, "a refused batch writes nothing");
}

#[tokio::test]
async fn a_batch_is_refused_unless_every_expected_position_is_the_stored_one() {
    let db = Db::start().await;
    let store = db.store().await;
    testing::check_positions_compare_and_set(&store, TOPIC, |v| upsert("a", v), || db.version("articles", "a")).await;
}

#[tokio::test]
async fn a_store_without_its_marker_refuses_every_batch_until_a_new_session() {
    let db = Db::start().await;
    let store = db.store_in("cms_read", "m");
    // No session yet: no tables, no marker.
    assert_eq!(
        store.apply(&batch([None, None], vec![upsert("a", 1)], 1)).await.expect("apply"),
        ApplyOutcome::StoreLost
    );
    // Another projection's session makes the tables, not this one's marker.
    db.store_in("cms_read", "other").start_session(&[TOPIC.into()]).await.expect("session");
    assert_eq!(
        store.apply(&batch([None, None], vec![upsert("a", 1)], 1)).await.expect("apply"),
        ApplyOutcome::StoreLost
    );
    store.start_session(&[TOPIC.into()]).await.expect("session");
    assert_eq!(store.apply(&batch([None, None], vec![upsert("a", 1)], 1)).await.expect("apply"), applied(1));

    // The data is lost (truncated).
    db.admin
        .batch_execute(
            "truncate cms_read.projections, cms_read.positions, cms_read.articles, cms_read.authors,
                      cms_read.documents, cms_read.erased",
        )
        .await
        .expect("truncate");
    assert_eq!(
        store.apply(&batch([Some(1), None], vec![upsert("b", 1)], 2)).await.expect("apply"),
        ApplyOutcome::StoreLost
    );
    assert_eq!(db.version("articles", "b").await, None);
    // The new session sees nothing stored: the projector starts from the beginning.
    assert!(store.start_session(&[TOPIC.into()]).await.expect("session")[TOPIC].is_empty());
    assert_eq!(store.apply(&batch([None, None], vec![upsert("a", 1)], 1)).await.expect("apply"), applied(1));

    // The tables are dropped: the store lost them, and the next session makes them again.
    db.admin
        .batch_execute("drop table cms_read.projections, cms_read.positions, cms_read.articles cascade")
        .await
        .expect("drop");
    assert_eq!(
        store.apply(&batch([Some(1), None], vec![upsert("b", 1)], 2)).await.expect("apply"),
        ApplyOutcome::StoreLost
    );
    assert!(store.start_session(&[TOPIC.into()]).await.expect("session")[TOPIC].is_empty());
    assert_eq!(store.apply(&batch([None, None], vec![upsert("b", 1)], 1)).await.expect("apply"), applied(1));
    assert_eq!(db.version("articles", "b").await, Some(1));

    // Only a data table is dropped, positions survive: they no longer say
    // what the store holds, so the projection rebuilds from the beginning.
    db.admin.batch_execute("drop table cms_read.articles").await.expect("drop");
    assert_eq!(
        store.apply(&batch([Some(1), None], vec![upsert("c", 1)], 2)).await.expect("apply"),
        ApplyOutcome::StoreLost
    );
    assert!(store.start_session(&[TOPIC.into()]).await.expect("session")[TOPIC].is_empty());
    // An index alone is made again, and nothing is lost.
    assert_eq!(store.apply(&batch([None, None], vec![upsert("b", 1)], 1)).await.expect("apply"), applied(1));
    db.admin.batch_execute("drop index cms_read.articles_by_tag").await.expect("drop index");
    assert_eq!(store.start_session(&[TOPIC.into()]).await.expect("session")[TOPIC][&0].next_offset, 1);
    let index: Option<String> =
        db.admin.query_one("select to_regclass('cms_read.articles_by_tag')::text", &[]).await.expect("index").get(0);
    assert_eq!(index.as_deref(), Some("cms_read.articles_by_tag"));
}

#[tokio::test]
async fn older_and_duplicate_versions_change_nothing_and_count_as_unchanged() {
    let db = Db::start().await;
    let store = db.store().await;
    let mut next = 0;
    assert_eq!(step(&store, &mut next, vec![upsert("a", 2), upsert("b", 1)]).await, applied(2));
    assert_eq!(step(&store, &mut next, vec![upsert("a", 1), upsert("a", 2), upsert("b", 1)]).await, applied(0));
    assert_eq!(db.article("a").await.expect("a").get::<_, String>("title"), "a v2");
    assert_eq!(step(&store, &mut next, vec![upsert("a", 1), upsert("b", 2)]).await, applied(1));
    assert_eq!((db.version("articles", "a").await, db.version("articles", "b").await), (Some(2), Some(2)));
}

#[tokio::test]
async fn several_versions_of_a_key_in_one_batch_keep_the_highest() {
    let db = Db::start().await;
    let store = db.store().await;
    let mut next = 0;
    // Each of v2, v3 and v5 was newer than what came before it; v1 and v4 were not.
    let changes = vec![upsert("a", 2), upsert("a", 1), upsert("a", 3), upsert("a", 5), upsert("a", 4)];
    assert_eq!(step(&store, &mut next, changes).await, applied(3));
    let a = db.article("a").await.expect("a");
    assert_eq!((a.get::<_, String>("title"), a.get::<_, i64>("version")), ("a v5".into(), 5));
    assert_eq!(a.get::<_, Vec<String>>("tags"), ["rust", "v5"]);

    // An erasure and a late snapshot of the same key in one batch, in either order.
    assert_eq!(step(&store, &mut next, vec![Change::erasure("article", "a", 6), upsert("a", 5)]).await, applied(1));
    assert_eq!(db.version("articles", "a").await, None);
    assert_eq!(step(&store, &mut next, vec![upsert("b", 1), Change::erasure("article", "b", 2)]).await, applied(2));
    assert_eq!((db.version("articles", "b").await, db.erased_at("article", "b").await), (None, Some(2)));
}

#[tokio::test]
async fn an_erased_aggregate_is_gone_everywhere_and_a_late_older_record_does_not_bring_it_back() {
    let db = Db::start().await;
    let store = db.store().await;
    let mut next = 0;
    let changes = vec![author("w", 1, "Wendy"), article("a", 3, Some("w"), "PUBLISHED"), upsert("x", 1)];
    assert_eq!(step(&store, &mut next, changes).await, applied(3));
    assert_eq!(db.counts("w").await, [0, 0, 1, 0]);

    // The article is erased: gone from its table and from its author's counts.
    assert_eq!(step(&store, &mut next, vec![Change::erasure("article", "a", 4)]).await, applied(1));
    assert_eq!(db.version("articles", "a").await, None);
    assert_eq!(db.erased_at("article", "a").await, Some(4));
    assert_eq!(db.counts("w").await, [0, 0, 0, 0]);
    // Late, older records (a replay, another partition's lag) change nothing.
    let late = vec![article("a", 3, Some("w"), "PUBLISHED"), article("a", 4, Some("w"), "DRAFT")];
    assert_eq!(step(&store, &mut next, late).await, applied(0));
    assert_eq!(step(&store, &mut next, vec![Change::erasure("article", "a", 4)]).await, applied(0));
    assert_eq!(db.version("articles", "a").await, None);
    assert_eq!(db.counts("w").await, [0, 0, 0, 0]);
    // A newer version (the id used again after the erasure) is a new article.
    assert_eq!(step(&store, &mut next, vec![article("a", 5, Some("w"), "DRAFT")]).await, applied(1));
    assert_eq!(db.counts("w").await, [1, 0, 0, 0]);

    // An erased author leaves no copy of its name on its articles.
    assert_eq!(db.author_name("a").await.as_deref(), Some("Wendy"));
    assert_eq!(
        step(&store, &mut next, vec![Change::erasure("author", "w", 2), author("w", 1, "Wendy")]).await,
        applied(1)
    );
    assert_eq!(db.version("authors", "w").await, None);
    assert_eq!(db.author_name("a").await, None);

    // An erasure without a version (no header) is final; one for a key never seen is remembered too.
    let changes =
        vec![Change::erasure("article", "x", i64::MAX), Change::erasure("article", "never", 3), upsert("never", 2)];
    assert_eq!(step(&store, &mut next, changes).await, applied(2));
    assert_eq!(step(&store, &mut next, vec![upsert("x", 1_000_000), upsert("never", 3)]).await, applied(0));
    assert_eq!((db.version("articles", "x").await, db.version("articles", "never").await), (None, None));
}

#[tokio::test]
async fn an_author_arriving_after_its_articles_fills_in_their_author_name_and_counts() {
    let db = Db::start().await;
    let store = db.store().await;
    let mut next = 0;
    let changes = vec![article("a", 1, Some("w"), "DRAFT"), article("b", 2, Some("w"), "PUBLISHED"), upsert("c", 1)];
    assert_eq!(step(&store, &mut next, changes).await, applied(3));
    assert_eq!(db.author_name("a").await, None, "the author has not arrived yet");
    assert_eq!(step(&store, &mut next, vec![author("w", 1, "Wendy")]).await, applied(1));
    assert_eq!(db.author_name("a").await.as_deref(), Some("Wendy"));
    assert_eq!(db.author_name("b").await.as_deref(), Some("Wendy"));
    assert_eq!(db.author_name("c").await, None);
    assert_eq!(db.counts("w").await, [1, 0, 1, 0]);
    // An article written after its author gets the name at once.
    assert_eq!(step(&store, &mut next, vec![article("d", 1, Some("w"), "DRAFT")]).await, applied(1));
    assert_eq!(db.author_name("d").await.as_deref(), Some("Wendy"));
    assert_eq!(db.counts("w").await, [2, 0, 1, 0]);
}

#[tokio::test]
async fn a_rename_reaches_every_article_of_the_author_and_no_other() {
    let db = Db::start().await;
    let store = db.store().await;
    let mut next = 0;
    let mut changes = vec![author("w", 1, "Wendy"), author("z", 1, "Zoe")];
    changes.extend((0..50).map(|i| article(&format!("w{i}"), 1, Some("w"), "PUBLISHED")));
    changes.push(article("z0", 1, Some("z"), "PUBLISHED"));
    assert_eq!(step(&store, &mut next, changes).await, applied(53));
    // The rename comes with an older, duplicated record of the author.
    assert_eq!(
        step(&store, &mut next, vec![author("w", 2, "Wendy Renamed"), author("w", 1, "Wendy")]).await,
        applied(1)
    );
    let names: Vec<(Option<String>, i64)> = db
        .admin
        .query("select author_name, count(*) from cms_read.articles group by 1 order by 1", &[])
        .await
        .expect("names")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(names, [(Some("Wendy Renamed".to_string()), 50), (Some("Zoe".to_string()), 1)]);
    assert_eq!(db.counts("w").await, [0, 0, 50, 0], "a rename keeps the counts");
}

#[tokio::test]
async fn counts_by_status_move_with_status_and_author_changes() {
    let db = Db::start().await;
    let store = db.store().await;
    let mut next = 0;
    let changes = vec![
        author("w", 1, "Wendy"),
        author("z", 1, "Zoe"),
        article("a", 1, Some("w"), "DRAFT"),
        article("b", 1, Some("w"), "DRAFT"),
        article("c", 1, Some("w"), "SCHEDULED"),
    ];
    step(&store, &mut next, changes).await;
    assert_eq!(db.counts("w").await, [2, 1, 0, 0]);
    step(&store, &mut next, vec![article("a", 2, Some("w"), "PUBLISHED"), article("c", 2, Some("w"), "PUBLISHED")])
        .await;
    assert_eq!(db.counts("w").await, [1, 0, 2, 0]);
    // Unpublished, archived, and an older record that must not count.
    step(&store, &mut next, vec![article("a", 3, Some("w"), "DRAFT"), article("b", 2, Some("w"), "ARCHIVED")]).await;
    step(&store, &mut next, vec![article("b", 1, Some("w"), "DRAFT")]).await;
    assert_eq!(db.counts("w").await, [1, 0, 1, 1]);
    // An article that changes author moves from one author's counts to the other's.
    step(&store, &mut next, vec![article("c", 3, Some("z"), "PUBLISHED")]).await;
    assert_eq!((db.counts("w").await, db.counts("z").await), ([1, 0, 0, 1], [0, 0, 1, 0]));
    assert_eq!(db.author_name("c").await.as_deref(), Some("Zoe"));
    // And an article that loses its author leaves the counts.
    step(&store, &mut next, vec![article("c", 4, None, "PUBLISHED")]).await;
    assert_eq!((db.counts("z").await, db.author_name("c").await), ([0, 0, 0, 0], None));
}

#[tokio::test]
async fn other_aggregate_types_are_kept_as_documents_with_the_same_guard() {
    let db = Db::start().await;
    let store = db.store().await;
    let mut next = 0;
    let tag = |version: i64| Change {
        aggregate_type: "tag".into(),
        aggregate_id: "rust".into(),
        version,
        document: Some(json!({"label": format!("Rust v{version}")})),
    };
    assert_eq!(step(&store, &mut next, vec![tag(2), tag(1)]).await, applied(1));
    assert_eq!(step(&store, &mut next, vec![tag(1)]).await, applied(0));
    let doc: Value = db
        .admin
        .query_one("select doc from cms_read.documents where aggregate_type = 'tag' and id = 'rust'", &[])
        .await
        .expect("document")
        .get(0);
    assert_eq!(doc["label"], "Rust v2");
    assert_eq!(step(&store, &mut next, vec![Change::erasure("tag", "rust", 3), tag(2)]).await, applied(1));
    let left: i64 = db.admin.query_one("select count(*) from cms_read.documents", &[]).await.expect("count").get(0);
    assert_eq!((left, db.erased_at("tag", "rust").await), (0, Some(3)));
}

#[tokio::test]
async fn the_tables_answer_the_read_side_queries() {
    let db = Db::start().await;
    let store = db.store().await;
    let mut next = 0;
    let mut rust = article("r", 1, Some("w"), "PUBLISHED");
    rust.document.as_mut().expect("doc")["title"] = json!("Fearless concurrency");
    rust.document.as_mut().expect("doc")["body"] = json!("Ownership and borrowing");
    let mut other = article("o", 1, Some("w"), "PUBLISHED");
    other.document.as_mut().expect("doc")["body"] = json!("Notes about concurrency");
    step(&store, &mut next, vec![rust, other, article("d", 1, Some("w"), "DRAFT")]).await;
    let ids = |rows: Vec<tokio_postgres::Row>| rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>();
    // Full text: a title match ranks above a body match.
    let found = db
        .admin
        .query(
            "select id from cms_read.articles, websearch_to_tsquery('english', 'concurrent') q
              where search @@ q order by ts_rank(search, q) desc",
            &[],
        )
        .await
        .expect("search");
    assert_eq!(ids(found), ["r", "o"]);
    let published = db
        .admin
        .query(
            "select id from cms_read.articles where status = 'PUBLISHED' and tags @> array['rust']
              order by published_at desc, id",
            &[],
        )
        .await
        .expect("by tag");
    assert_eq!(ids(published), ["o", "r"]);
    let by_slug = db.admin.query("select id from cms_read.articles where slug = 'slug-d'", &[]).await.expect("by slug");
    assert_eq!(ids(by_slug), ["d"]);
}

/// Two replicas of a projector (or one whose answer was lost, retrying)
/// apply batches from the same positions at the same time: exactly one of
/// them may win, also while nothing is stored yet (no row to lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_racing_from_the_same_positions_are_applied_once() {
    let db = Db::start().await;
    let projection = random_name("race");
    let replicas: Vec<Arc<PostgresStore>> = (0..8).map(|_| Arc::new(db.store_in("cms_read", &projection))).collect();
    replicas[0].start_session(&[TOPIC.into()]).await.expect("session");
    for (round, expected) in [(0, None), (1, Some(1))] {
        let racers: Vec<_> = replicas
            .iter()
            .enumerate()
            .map(|(i, store)| {
                let store = store.clone();
                tokio::spawn(async move {
                    let changes = vec![upsert(&format!("r{round}-{i}"), 1)];
                    store.apply(&batch([expected, None], changes, round + 1)).await.expect("apply")
                })
            })
            .collect();
        let mut winners = 0;
        for racer in racers {
            match racer.await.expect("task") {
                ApplyOutcome::Applied { .. } => winners += 1,
                ApplyOutcome::PositionMismatch { partition: 0, stored: Some(_), .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(winners, 1, "round {round}: exactly one of the racing batches is applied");
        let rows: i64 = db
            .admin
            .query_one("select count(*) from cms_read.articles where id like $1", &[&format!("r{round}-%")])
            .await
            .expect("count")
            .get(0);
        assert_eq!(rows, 1, "round {round}: only the winner's change is stored");
    }
}

/// The database fails in the middle of a batch (its connection is cut while
/// a statement runs): nothing of the batch is stored, positions included,
/// and the same batch applies once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_cut_off_midway_writes_nothing_and_applies_when_sent_again() {
    let db = Db::start().await;
    let store = Arc::new(db.store().await);
    let mut next = 0;
    assert_eq!(step(&store, &mut next, vec![upsert("a", 1)]).await, applied(1));
    // Articles titled "slow" stall the batch that writes them, after its authors are written.
    db.admin
        .batch_execute(
            "create function cms_read.stall() returns trigger language plpgsql as $$
             begin if new.title = 'slow v2' then perform pg_sleep(60); end if; return new; end $$;
             create trigger stall before insert or update on cms_read.articles
                for each row execute function cms_read.stall()",
        )
        .await
        .expect("trigger");
    let changes = vec![author("w", 1, "Wendy"), upsert("a", 2), upsert("slow", 2)];
    let running = {
        let (store, changes) = (store.clone(), changes.clone());
        tokio::spawn(async move { store.apply(&batch([Some(1), None], changes, 2)).await })
    };
    let pid: i32 = wait_until("the batch to stall", Duration::from_secs(30), || async {
        let row = db
            .admin
            .query_opt(
                "select pid from pg_stat_activity where usename = 'sluice_projector_pg' and wait_event = 'PgSleep'",
                &[],
            )
            .await
            .expect("activity")?;
        Some(row.get(0))
    })
    .await;
    db.admin.execute("select pg_terminate_backend($1)", &[&pid]).await.expect("terminate");
    let failed = running.await.expect("task");
    assert!(failed.is_err(), "a batch whose connection was cut reports an error: {failed:?}");
    assert_eq!(db.version("authors", "w").await, None, "the statements before the cut are rolled back");
    assert_eq!(db.version("articles", "a").await, Some(1));
    let stored = store.start_session(&[TOPIC.into()]).await.expect("session");
    assert_eq!(stored[TOPIC][&0].next_offset, 1, "the position did not move");

    db.admin.batch_execute("drop trigger stall on cms_read.articles").await.expect("drop trigger");
    assert_eq!(store.apply(&batch([Some(1), None], changes, 2)).await.expect("apply"), applied(3));
    assert_eq!(db.author_name("slow").await, None);
    assert_eq!(db.version("articles", "a").await, Some(2));
}

#[tokio::test]
async fn positions_are_per_projection_and_generations_in_other_schemas_are_apart() {
    let db = Db::start().await;
    let blue = db.store().await;
    db.admin.batch_execute(&format!("create schema cms_read_2 authorization {ROLE}")).await.expect("green schema");
    let green = db.store_in("cms_read_2", "green");
    green.start_session(&[TOPIC.into()]).await.expect("green session");
    assert_eq!(blue.apply(&batch([None, None], vec![upsert("a", 1)], 7)).await.expect("apply"), applied(1));
    assert_eq!(green.apply(&batch([None, None], vec![upsert("a", 2)], 3)).await.expect("apply"), applied(1));
    assert_eq!(db.version("articles", "a").await, Some(1));
    let green_version: i64 = db
        .admin
        .query_one("select version from cms_read_2.articles where id = 'a'", &[])
        .await
        .expect("green row")
        .get(0);
    assert_eq!(green_version, 2);

    // A second projection in the same schema has positions of its own.
    let other = db.store_in("cms_read", "other");
    assert!(other.start_session(&[TOPIC.into()]).await.expect("session")[TOPIC].is_empty());
    assert_eq!(other.apply(&batch([None, None], vec![upsert("a", 1)], 2)).await.expect("apply"), applied(0));
    assert_eq!(blue.start_session(&[TOPIC.into()]).await.expect("session")[TOPIC][&0].next_offset, 7);
}

#[tokio::test]
async fn the_store_runs_as_a_role_that_owns_its_read_schema_and_nothing_else() {
    let db = Db::start().await;
    let roles =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/sql/roles.sql")).expect("roles.sql");
    db.admin.batch_execute(&roles).await.expect("roles.sql is idempotent");
    let store = db.store().await;
    step(&store, &mut 0, vec![upsert("a", 1)]).await;

    let owned: Vec<(String, String)> = db
        .admin
        .query(
            "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where pg_get_userbyid(c.relowner) = $1 and c.relkind = 'r' order by 1, 2",
            &[&ROLE],
        )
        .await
        .expect("ownership")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(owned.iter().all(|(schema, _)| schema == "cms_read"), "owns tables outside cms_read: {owned:?}");
    assert_eq!(owned.len(), 6, "{owned:?}");

    let (client, connection) = tokio_postgres::connect(&db.role_url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let denied = tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE;
    for statement in ["create table public.intruder (x int)", "create schema other", "select * from cms.articles"] {
        let refused = client.batch_execute(statement).await.expect_err(statement);
        assert_eq!(refused.code(), Some(&denied), "{statement}: {refused}");
    }
    // Without the schema (not created by an administrator) the store says what to do.
    let missing = db.store_in("cms_read_missing", "p");
    let error = format!("{:#}", missing.start_session(&[TOPIC.into()]).await.expect_err("no schema"));
    assert!(error.contains("create schema cms_read_missing authorization"), "{error}");
}

/// A small deterministic generator (no dependency needed for a shuffle).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// A CMS history: authors renamed and erased, articles moved between
/// authors, through every status, erased. Per key in version order.
fn history(rng: &mut Lcg) -> Vec<Change> {
    let mut records = Vec::new();
    for a in 0..4 {
        let versions = 1 + rng.below(4) as i64;
        for v in 1..=versions {
            records.push(author(&format!("w{a}"), v, &format!("Author {a} v{v}")));
        }
        if rng.below(4) == 0 {
            records.push(Change::erasure("author", &format!("w{a}"), versions + 1));
        }
    }
    let statuses = ["DRAFT", "SCHEDULED", "PUBLISHED", "ARCHIVED"];
    for x in 0..12 {
        let versions = 1 + rng.below(5) as i64;
        for v in 1..=versions {
            let writer = (rng.below(5) < 4).then(|| format!("w{}", rng.below(5)));
            records.push(article(&format!("x{x}"), v, writer.as_deref(), statuses[rng.below(4)]));
        }
        if rng.below(5) == 0 {
            records.push(Change::erasure("article", &format!("x{x}"), versions + 1));
        }
    }
    records
}

/// Every table of `schema` as text, sorted.
async fn dump(db: &Db, schema: &str) -> Vec<String> {
    let queries = [
        "select id, version, title, author_id, author_name, status, tags::text, published_at::text from {s}.articles",
        "select id, version, name, drafts, scheduled, published, archived from {s}.authors",
        "select aggregate_type, id, version from {s}.erased",
        "select aggregate_type, id, version, doc::text from {s}.documents",
    ];
    let mut rows = Vec::new();
    for query in queries {
        let query = format!("select row_to_json(t)::text from ({}) t", query.replace("{s}", schema));
        for row in db.admin.query(&query, &[]).await.expect("dump") {
            rows.push(row.get::<_, String>(0));
        }
    }
    rows.sort();
    rows
}

/// Duplicates, replays and any order across keys and within a key, in any
/// batch sizes, end in the same tables as the history applied once in
/// order: the version guard, the erasure markers and the derived columns
/// (author names, counts) depend on what is stored, never on arrival order.
#[tokio::test]
async fn any_order_of_a_history_with_duplicates_ends_in_the_same_tables() {
    let db = Db::start().await;
    for seed in 1..=4_u64 {
        let mut rng = Lcg(seed);
        let records = history(&mut rng);
        let schemas = [format!("in_order_{seed}"), format!("shuffled_{seed}")];
        for schema in &schemas {
            db.admin.batch_execute(&format!("create schema {schema} authorization {ROLE}")).await.expect("schema");
        }
        let clean = db.store_in(&schemas[0], "p");
        clean.start_session(&[TOPIC.into()]).await.expect("session");
        let mut next = 0;
        for record in &records {
            step(&clean, &mut next, vec![record.clone()]).await;
        }

        // Every record twice, shuffled, in batches of 1 to 20.
        let mut rough: Vec<Change> = records.iter().chain(&records).cloned().collect();
        for i in (1..rough.len()).rev() {
            rough.swap(i, rng.below(i + 1));
        }
        let store = db.store_in(&schemas[1], "p");
        store.start_session(&[TOPIC.into()]).await.expect("session");
        let mut next = 0;
        while !rough.is_empty() {
            let take = (1 + rng.below(20)).min(rough.len());
            let outcome = step(&store, &mut next, rough.drain(..take).collect()).await;
            assert!(matches!(outcome, ApplyOutcome::Applied { .. }), "{outcome:?}");
        }
        let expected = dump(&db, &schemas[0]).await;
        assert!(expected.len() > 10, "seed {seed}: a history worth comparing");
        assert_eq!(dump(&db, &schemas[1]).await, expected, "seed {seed}");
    }
}

/// A snapshot the tables cannot hold (here: an article without a slug) is
/// refused with where it came from; nothing of its batch is written, so the
/// projector retries it rather than skipping it silently.
#[tokio::test]
async fn a_snapshot_that_does_not_fit_its_table_fails_the_batch_and_writes_nothing() {
    let db = Db::start().await;
    let store = db.store().await;
    let mut broken = upsert("bad", 3);
    broken.document.as_mut().expect("doc").as_object_mut().expect("object").remove("slug");
    let error = store.apply(&batch([None, None], vec![upsert("a", 1), broken], 2)).await.expect_err("refused");
    assert!(format!("{error:#}").contains("article snapshot bad at version 3"), "{error:#}");
    assert_eq!(db.version("articles", "a").await, None);
    assert!(store.start_session(&[TOPIC.into()]).await.expect("session")[TOPIC].is_empty());
}

/// The blue/green swap, step by step: it waits, holding the serving
/// generation's write lock, until the next generation reached the serving
/// one's positions (so no reader goes back in time); the serving writer
/// blocked meanwhile goes on in the new generation once it is swapped in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_waits_for_the_next_generation_then_the_blocked_writer_goes_on_in_it() {
    use sluice_store_postgres::{SchemaName, generation};
    let db = Db::start().await;
    let serving = Arc::new(db.store_in("cms_read", "cms"));
    serving.start_session(&[TOPIC.into()]).await.expect("session");
    assert_eq!(serving.apply(&batch([None, None], vec![upsert("a", 1)], 5)).await.expect("apply"), applied(1));
    let next = db.store_in("cms_read_next", "cms");
    next.start_session(&[TOPIC.into()]).await.expect("session");
    assert_eq!(next.apply(&batch([None, None], vec![upsert("a", 2)], 2)).await.expect("apply"), applied(1));

    let names = ["cms_read", "cms_read_next", "cms_read_old"].map(|n| SchemaName::parse(n).expect("name"));
    let [s, n, o] = names.clone();
    let mut client = generation::connect(&db.role_url()).await.expect("connect");
    let watcher = generation::connect(&db.role_url()).await.expect("connect");
    generation::check(&client, [&s, &n, &o]).await.expect("check");
    let second = generation::connect(&db.role_url()).await.expect("connect");
    let refused = generation::check(&second, [&s, &n, &o]).await.expect_err("one rebuild at a time");
    assert!(refused.to_string().contains("another rebuild"), "{refused}");
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swap = {
        let stopped = stopped.clone();
        tokio::spawn(async move {
            let (topics, floors) = ([TOPIC.to_string()], std::collections::HashMap::new());
            let swap = generation::Swap {
                serving: &s,
                next: &n,
                old: &o,
                projection: "cms",
                topics: &topics,
                floors: &floors,
            };
            let swapped = swap
                .run(&mut client, &watcher, async || {
                    stopped.store(true, std::sync::atomic::Ordering::SeqCst);
                    Ok(())
                })
                .await;
            (swapped, client, watcher)
        })
    };
    wait_until("the swap holds the serving generation's write lock", Duration::from_secs(30), || async {
        let held: bool = db
            .admin
            .query_one(
                "select exists (select 1 from pg_locks where granted and mode = 'ShareRowExclusiveLock'
                                  and relation = 'cms_read.projections'::regclass)",
                &[],
            )
            .await
            .expect("locks")
            .get(0);
        held.then_some(())
    })
    .await;
    // The serving generation's writer waits on the swap's lock.
    let blocked = {
        let serving = serving.clone();
        tokio::spawn(async move { serving.apply(&batch([Some(5), None], vec![upsert("b", 1)], 6)).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!swap.is_finished(), "no swap while the next generation is behind");
    assert!(!blocked.is_finished(), "the serving generation takes no batch meanwhile");
    assert!(!stopped.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(db.version("articles", "a").await, Some(1), "readers read the serving generation");

    assert_eq!(next.apply(&batch([Some(2), None], vec![upsert("c", 1)], 5)).await.expect("apply"), applied(1));
    let (swapped, client, _watcher) = swap.await.expect("swap task");
    swapped.expect("swap");
    assert!(stopped.load(std::sync::atomic::Ordering::SeqCst), "the next generation's writer was stopped first");
    assert_eq!(db.version("articles", "a").await, Some(2), "readers read the new generation");
    assert_eq!(db.version("articles", "c").await, Some(1));
    // Its expected position (5) is the new generation's: it is written there.
    assert_eq!(blocked.await.expect("task").expect("apply"), applied(1));
    assert_eq!(db.version("articles", "b").await, Some(1));
    let old_b: Option<i64> = db
        .admin
        .query_opt("select version from cms_read_old.articles where id = 'b'", &[])
        .await
        .expect("old")
        .map(|r| r.get(0));
    assert_eq!(old_b, None, "nothing written to the retired generation");
    generation::empty(&client, &names[2]).await.expect("empty");
    let left: i64 = db
        .admin
        .query_one("select count(*) from pg_tables where schemaname = 'cms_read_old'", &[])
        .await
        .expect("n")
        .get(0);
    assert_eq!(left, 0);
    assert_eq!(serving.start_session(&[TOPIC.into()]).await.expect("session")[TOPIC][&0].next_offset, 6);
}
