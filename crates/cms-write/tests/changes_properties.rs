//! GET /changes under concurrent writers: random interleavings of commands
//! (some holding a transaction id before they lock their aggregate), slow
//! transactions that keep locks or ids open, and a reader paging with small
//! limits all along. Every (aggregate, version) comes out exactly once,
//! ascending per aggregate, and a cursor taken while transactions were open
//! never skips what they commit later.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use cms_domain::{ArticleCommand, AuthorCommand, EditArticle, UpdateAuthorBio};
use cms_write::service::IdempotencyKey;
use cms_write::{CommandContext, CommandError};
use common::{Harness, READ};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::BTreeMap;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Two articles and one author per case.
const AGGREGATES: usize = 3;
/// Commands in flight at once; the harness pool has 8 connections and the reader needs one.
const MAX_RUNNING: usize = 6;

#[derive(Debug, Clone)]
enum Step {
    /// The test locks an aggregate's row and keeps the lock (a slow writer).
    Hold(usize),
    /// The test takes a transaction id and keeps its transaction open.
    HoldXid,
    /// One of the held transactions commits.
    Release(usize),
    /// A command on an aggregate; with an Idempotency-Key its transaction
    /// takes an id (the key's row) before it locks the aggregate.
    Command { aggregate: usize, keyed: bool },
    /// The reader reads one page.
    Read(u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0..AGGREGATES).prop_map(Step::Hold),
        1 => Just(Step::HoldXid),
        2 => (0..8usize).prop_map(Step::Release),
        5 => (0..AGGREGATES, any::<bool>()).prop_map(|(aggregate, keyed)| Step::Command { aggregate, keyed }),
        2 => (1..4u32).prop_map(Step::Read),
    ]
}

/// A test transaction left open.
struct Held {
    client: deadpool_postgres::Object,
    aggregate: Option<usize>,
}

/// A catch-up reader: its cursor and everything it was given, in order.
struct Reader {
    cursor: String,
    seen: Vec<Value>,
}

impl Reader {
    /// Reads one page; false when it was empty.
    async fn read(&mut self, h: &Harness, limit: u32) -> bool {
        let uri = format!("/changes?after={}&limit={limit}", self.cursor);
        let r = h.send(Method::GET, &uri, Some(READ), &[], Body::empty()).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let rows = r.body["changes"].as_array().expect("changes").clone();
        assert!(rows.len() <= limit as usize);
        self.cursor = r.body["next_cursor"].as_str().expect("next_cursor").to_string();
        let more = !rows.is_empty();
        self.seen.extend(rows);
        more
    }

    async fn read_to_end(&mut self, h: &Harness, limit: u32) {
        while self.read(h, limit).await {}
    }
}

fn key(c: &Value) -> (String, i64) {
    (c["aggregate_id"].as_str().expect("aggregate_id").to_string(), c["version"].as_i64().expect("version"))
}

type Task = JoinHandle<Result<cms_write::service::Answer, CommandError>>;

fn spawn_command(h: &Harness, ids: &[Uuid], aggregate: usize, keyed: bool, n: usize) -> Task {
    let service = h.service.clone();
    let id = ids[aggregate];
    let ctx = CommandContext {
        idempotency: keyed.then(|| IdempotencyKey {
            scope: "changes-property".into(),
            key: Uuid::now_v7().to_string(),
            request_hash: vec![0],
        }),
        ..Default::default()
    };
    tokio::spawn(async move {
        if aggregate == AGGREGATES - 1 {
            let bio = UpdateAuthorBio { bio: Some(format!("bio {n}")) };
            service.author_command(&ctx, id, AuthorCommand::UpdateBio(bio)).await
        } else {
            let edit = EditArticle { body: Some(format!("body {n}")), ..Default::default() };
            service.article_command(&ctx, id, ArticleCommand::Edit(edit)).await
        }
    })
}

fn running(tasks: &[Task]) -> i64 {
    tasks.iter().filter(|t| !t.is_finished()).count() as i64
}

async fn run_case(h: &Harness, start: &RefCell<String>, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let start_cursor = start.borrow().clone();
    let mut ids = Vec::new();
    for title in ["First", "Second"] {
        let r = h.post("/articles", json!({"title": format!("{title} {}", Uuid::now_v7())})).await;
        ids.push(r.id().parse::<Uuid>().expect("uuid"));
    }
    ids.push(h.post("/authors", json!({"name": "Author"})).await.id().parse().expect("uuid"));

    let mut reader = Reader { cursor: start_cursor.clone(), seen: Vec::new() };
    let mut held: Vec<Held> = Vec::new();
    let mut tasks: Vec<Task> = Vec::new();
    let mut commands = [0usize; AGGREGATES];
    for step in steps {
        match step {
            Step::Hold(aggregate) => {
                if held.iter().any(|x| x.aggregate == Some(aggregate)) {
                    continue;
                }
                let client = h.client().await;
                client.batch_execute("begin").await.expect("begin");
                let table = if aggregate == AGGREGATES - 1 { "authors" } else { "articles" };
                let sql = format!("select 1 from {table} where id = $1 for update");
                client.query_one(&sql, &[&ids[aggregate]]).await.expect("lock");
                held.push(Held { client, aggregate: Some(aggregate) });
            }
            Step::HoldXid => {
                let client = h.client().await;
                client.batch_execute("begin").await.expect("begin");
                client.query_one("select pg_current_xact_id()", &[]).await.expect("take an id");
                held.push(Held { client, aggregate: None });
            }
            Step::Release(i) => {
                if held.is_empty() {
                    continue;
                }
                let x = held.remove(i % held.len());
                x.client.batch_execute("commit").await.expect("commit");
                h.wait_quiet(|| running(&tasks)).await;
            }
            Step::Command { aggregate, keyed } => {
                if running(&tasks) >= MAX_RUNNING as i64 {
                    continue;
                }
                commands[aggregate] += 1;
                tasks.push(spawn_command(h, &ids, aggregate, keyed, tasks.len()));
                // Let it run until it is done or waits on a lock: the steps
                // decide the interleaving, not the scheduler.
                h.wait_quiet(|| running(&tasks)).await;
            }
            Step::Read(limit) => {
                reader.read(h, limit).await;
            }
        }
    }
    for x in held.drain(..) {
        x.client.batch_execute("commit").await.expect("commit");
    }
    for t in tasks {
        let answer = t.await.expect("command task");
        prop_assert!(answer.is_ok(), "command refused: {:?}", answer.err());
    }
    reader.read_to_end(h, 3).await;

    // What the database holds, and what the reader must have seen.
    let client = h.client().await;
    let mut expected: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let id = id.to_string();
        let versions: Vec<i64> = client
            .query("select version from changes where aggregate_id = $1 order by version", &[&id])
            .await
            .expect("versions")
            .iter()
            .map(|r| r.get(0))
            .collect();
        prop_assert_eq!(&versions, &(1..=1 + commands[i] as i64).collect::<Vec<_>>(), "rows of {}", id);
        expected.insert(id, versions);
    }
    let mut delivered: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (id, version) in reader.seen.iter().map(key).filter(|(id, _)| expected.contains_key(id)) {
        delivered.entry(id).or_default().push(version);
    }
    prop_assert_eq!(
        &delivered,
        &expected,
        "per aggregate, the reader must see every version once, ascending (it read along, with transactions open)"
    );

    // Reading again from the same start with other limits gives the same sequence.
    for limit in [1, 2, 1000] {
        let mut again = Reader { cursor: start_cursor.clone(), seen: Vec::new() };
        again.read_to_end(h, limit).await;
        let cursors = |r: &Reader| r.seen.iter().map(|c| c["cursor"].clone()).collect::<Vec<_>>();
        prop_assert_eq!(cursors(&again), cursors(&reader), "limit {}", limit);
    }
    *start.borrow_mut() = reader.cursor;
    Ok(())
}

#[test]
fn concurrent_writers_and_a_paging_reader_see_every_version_once_in_order() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let h = rt.block_on(Harness::start());
    let start = RefCell::new(String::new());
    let mut runner = TestRunner::new(Config { cases: 16, failure_persistence: None, ..Config::default() });
    runner
        .run(&proptest::collection::vec(step(), 1..40), |steps| rt.block_on(run_case(&h, &start, steps)))
        .expect("property holds");
}
