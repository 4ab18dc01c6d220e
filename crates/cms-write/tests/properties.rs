//! Random command sequences against a real PostgreSQL: the outbox holds
//! exactly one row per accepted event, versions grow by one, and a refused
//! command writes nothing.

mod common;

use cms_domain::{ArticleCommand, DraftArticle, EditArticle, ScheduleArticle};
use cms_write::{CommandContext, CommandError};
use common::Harness;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Op {
    Draft {
        valid: bool,
    },
    Edit {
        target: usize,
        valid: bool,
    },
    Schedule {
        target: usize,
        future: bool,
    },
    Publish(usize),
    Unpublish(usize),
    Archive(usize),
    Restore(usize),
    /// A command with a stale If-Match.
    Stale(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => any::<bool>().prop_map(|valid| Op::Draft { valid }),
        2 => (0..4usize, any::<bool>()).prop_map(|(target, valid)| Op::Edit { target, valid }),
        1 => (0..4usize, any::<bool>()).prop_map(|(target, future)| Op::Schedule { target, future }),
        2 => (0..4usize).prop_map(Op::Publish),
        1 => (0..4usize).prop_map(Op::Unpublish),
        1 => (0..4usize).prop_map(Op::Archive),
        1 => (0..4usize).prop_map(Op::Restore),
        1 => (0..4usize).prop_map(Op::Stale),
    ]
}

async fn counts(h: &Harness, id: &str) -> (i64, i64) {
    let client = h.client().await;
    let outbox: i64 = client.query_one("select count(*) from outbox", &[]).await.expect("count").get(0);
    let version: i64 = client
        .query_opt("select version from articles where id = $1::text::uuid", &[&id])
        .await
        .expect("version")
        .map_or(0, |r| r.get(0));
    (outbox, version)
}

impl Op {
    fn target(&self) -> usize {
        match self {
            Op::Edit { target, .. } | Op::Schedule { target, .. } => *target,
            Op::Publish(t) | Op::Unpublish(t) | Op::Archive(t) | Op::Restore(t) | Op::Stale(t) => *t,
            Op::Draft { .. } => 0,
        }
    }

    /// The command on an existing article, and its If-Match.
    fn command(&self, now: chrono::DateTime<chrono::Utc>) -> (ArticleCommand, Option<i64>) {
        match self {
            Op::Edit { valid, .. } => {
                let title = if *valid { "Edited".to_string() } else { " ".to_string() };
                (ArticleCommand::Edit(EditArticle { title: Some(title), ..Default::default() }), None)
            }
            Op::Schedule { future, .. } => {
                let offset = if *future { chrono::Duration::hours(1) } else { chrono::Duration::hours(-1) };
                (ArticleCommand::Schedule(ScheduleArticle { publish_at: now + offset }), None)
            }
            Op::Publish(_) | Op::Draft { .. } => (ArticleCommand::Publish, None),
            Op::Unpublish(_) => (ArticleCommand::Unpublish, None),
            Op::Archive(_) => (ArticleCommand::Archive, None),
            Op::Restore(_) => (ArticleCommand::Restore, None),
            Op::Stale(_) => (ArticleCommand::Publish, Some(1_000)),
        }
    }
}

async fn run_case(h: &Harness, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut ids: Vec<String> = Vec::new();
    let now = chrono::Utc::now();
    for op in ops {
        if let Op::Draft { valid } = op {
            let title = if valid { format!("T {}", Uuid::now_v7()) } else { String::new() };
            let cmd = DraftArticle { title, body: "b".into(), slug: None, author_id: None, tags: vec![] };
            let before = h.outbox_rows().await;
            let result = h.service.draft_article(&CommandContext::default(), cmd).await;
            let after = h.outbox_rows().await;
            match result {
                Ok(answer) => {
                    prop_assert_eq!(after, before + 1);
                    prop_assert_eq!(answer.body["version"].as_i64(), Some(1));
                    ids.push(answer.body["id"].as_str().unwrap_or_default().to_string());
                }
                Err(CommandError::Invalid(_)) => prop_assert_eq!(after, before, "refused draft wrote"),
                Err(e) => return Err(TestCaseError::fail(format!("unexpected error {e}"))),
            }
            continue;
        }
        let Some(id) = ids.get(op.target() % ids.len().max(1)).cloned() else { continue };
        let (command, expected_version) = op.command(now);
        let ctx = CommandContext { expected_version, ..Default::default() };
        let (before_outbox, before_version) = counts(h, &id).await;
        let result = h.service.article_command(&ctx, id.parse().expect("uuid"), command).await;
        let (after_outbox, after_version) = counts(h, &id).await;
        match result {
            Ok(answer) => {
                prop_assert_eq!(after_outbox, before_outbox + 1, "one outbox row per accepted event");
                prop_assert_eq!(after_version, before_version + 1, "version grows by one");
                prop_assert_eq!(answer.body["version"].as_i64(), Some(after_version));
            }
            Err(CommandError::Invalid(_) | CommandError::Conflict { .. }) => {
                prop_assert_eq!((after_outbox, after_version), (before_outbox, before_version), "refused but wrote");
            }
            Err(e) => return Err(TestCaseError::fail(format!("unexpected error {e}"))),
        }
    }
    Ok(())
}

#[test]
fn random_command_sequences_keep_outbox_and_versions_exact() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let h = rt.block_on(Harness::start());
    let mut runner = TestRunner::new(Config { cases: 24, failure_persistence: None, ..Config::default() });
    runner.run(&proptest::collection::vec(op(), 1..25), |ops| rt.block_on(run_case(&h, ops))).expect("property holds");
    // Globally: every aggregate's outbox versions are exactly 1..=n.
    rt.block_on(async {
        let client = h.client().await;
        let gaps: i64 = client
            .query_one(
                "select count(*) from (
                    select aggregateid, count(*) as n, max(aggregate_version) as top, count(distinct aggregate_version) as d
                    from outbox group by aggregateid) s
                 where n <> top or d <> n",
                &[],
            )
            .await
            .expect("gaps")
            .get(0);
        assert_eq!(gaps, 0, "some aggregate's outbox versions are not 1..=n");
    });
}
