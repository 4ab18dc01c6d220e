//! The kit's side of the `ProjectionStore` contract against a real
//! PostgreSQL: a user's apply runs in the batch's transaction, after the
//! marker and the positions' compare-and-set, before the positions.

use sluice_store::{ApplyOutcome, Batch, Change, Position, ProjectionStore};
use sluice_store_postgres::kit::{KitStore, PgProjection, Transaction};
use sluice_testkit::TestPostgres;
use std::collections::BTreeMap;

const TOPIC: &str = "t.article.state";

/// Keeps each id it is given; an id `fail` fails the batch after writing.
struct Ids;

impl PgProjection for Ids {
    fn tables(&self) -> &str {
        "create table if not exists ids (id text primary key)"
    }

    async fn apply(&self, tx: &Transaction<'_>, changes: &[Change]) -> anyhow::Result<usize> {
        for change in changes {
            tx.execute("insert into ids values ($1) on conflict do nothing", &[&change.aggregate_id]).await?;
            anyhow::ensure!(change.aggregate_id != "fail", "the user's apply failed");
        }
        Ok(changes.len())
    }
}

fn batch(expected: Option<i64>, id: &str, next: i64) -> Batch {
    let change = Change { aggregate_type: "article".into(), aggregate_id: id.into(), version: 1, document: None };
    Batch {
        expected: BTreeMap::from([(TOPIC.to_string(), BTreeMap::from([(0, expected)]))]),
        changes: BTreeMap::from([(TOPIC.to_string(), vec![change])]),
        positions: BTreeMap::from([(
            TOPIC.to_string(),
            vec![Position { partition: 0, next_offset: next, applied_at_ms: 0 }],
        )]),
    }
}

#[tokio::test]
async fn the_users_apply_is_written_with_the_positions_or_not_at_all() {
    let pg = TestPostgres::start();
    let url = pg.create_database().await;
    let admin = pg.connect(url.rsplit('/').next().expect("database name")).await;
    let store = KitStore::connect(&url, "mine", "ids", Ids).expect("store");
    let ids = async || -> Vec<String> {
        let rows = admin.query("select id from mine.ids order by id", &[]).await.expect("ids");
        rows.iter().map(|r| r.get(0)).collect()
    };
    let next =
        async || store.start_session(&[TOPIC.into()]).await.expect("session")[TOPIC].get(&0).map(|p| p.next_offset);

    // The session made the schema, the ledger and the user's table (unqualified: in the store's schema).
    assert_eq!(next().await, None);
    let applied = ApplyOutcome::Applied { changed: BTreeMap::from([(TOPIC.to_string(), 1)]) };
    assert_eq!(store.apply(&batch(None, "a", 1)).await.expect("apply"), applied);
    assert_eq!((ids().await, next().await), (vec!["a".to_string()], Some(1)));

    // A batch built on another position writes nothing, the user's rows included.
    let refused = store.apply(&batch(Some(5), "b", 6)).await.expect("apply");
    assert!(matches!(refused, ApplyOutcome::PositionMismatch { stored: Some(1), .. }), "{refused:?}");
    // A failing apply rolls back its own writes and the positions.
    assert!(store.apply(&batch(Some(1), "fail", 2)).await.is_err());
    assert_eq!((ids().await, next().await), (vec!["a".to_string()], Some(1)));

    // Without its marker the store refuses every batch until a new session.
    admin.batch_execute("delete from mine.projections").await.expect("delete the marker");
    assert_eq!(store.apply(&batch(Some(1), "c", 2)).await.expect("apply"), ApplyOutcome::StoreLost);
    assert_eq!(ids().await, ["a"]);
}

/// A user's table dropped while the positions survive: what the positions
/// say was applied is gone, so the next session starts from the beginning
/// instead of resuming past it.
#[tokio::test]
async fn a_users_table_gone_while_the_positions_survive_is_rebuilt_from_the_beginning() {
    let pg = TestPostgres::start();
    let url = pg.create_database().await;
    let admin = pg.connect(url.rsplit('/').next().expect("database name")).await;
    let store = KitStore::connect(&url, "mine", "ids", Ids).expect("store");
    store.start_session(&[TOPIC.into()]).await.expect("session");
    let applied = ApplyOutcome::Applied { changed: BTreeMap::from([(TOPIC.to_string(), 1)]) };
    assert_eq!(store.apply(&batch(None, "a", 1)).await.expect("apply"), applied);

    admin.batch_execute("drop table mine.ids").await.expect("drop the user's table");
    assert_eq!(store.apply(&batch(Some(1), "b", 2)).await.expect("apply"), ApplyOutcome::StoreLost);
    let next = store.start_session(&[TOPIC.into()]).await.expect("session")[TOPIC].get(&0).map(|p| p.next_offset);
    assert_eq!(next, None, "positions outlived the table holding offset 0's record");
}
