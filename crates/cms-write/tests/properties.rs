//! Random command sequences over HTTP against a real PostgreSQL, checked
//! step by step against a model of the article life cycle written here (it
//! does not call cms-domain): the model says whether each command is accepted
//! (and the version and status it leads to) or refused (with which HTTP status
//! and which field), and the service must agree. Accepted commands write
//! exactly one outbox row; refused ones write nothing.

mod common;

use axum::http::StatusCode;
use common::{Harness, Reply};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;
use std::collections::HashSet;
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Op {
    /// A new article whose title is one of three per case (so slugs collide).
    Draft {
        title: usize,
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
    /// Publish with an If-Match that is the current version or not.
    IfMatch {
        target: usize,
        current: bool,
    },
    /// Publish an article that does not exist.
    Missing,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, prop::bool::weighted(0.8)).prop_map(|(title, valid)| Op::Draft { title, valid }),
        2 => (0..4usize, prop::bool::weighted(0.7)).prop_map(|(target, valid)| Op::Edit { target, valid }),
        2 => (0..4usize, prop::bool::weighted(0.7)).prop_map(|(target, future)| Op::Schedule { target, future }),
        2 => (0..4usize).prop_map(Op::Publish),
        2 => (0..4usize).prop_map(Op::Unpublish),
        2 => (0..4usize).prop_map(Op::Archive),
        2 => (0..4usize).prop_map(Op::Restore),
        2 => (0..4usize, any::<bool>()).prop_map(|(target, current)| Op::IfMatch { target, current }),
        1 => Just(Op::Missing),
    ]
}

/// The life cycle as the product describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Draft,
    Scheduled,
    Published,
    Archived,
}

impl State {
    fn stored(self) -> &'static str {
        match self {
            State::Draft => "DRAFT",
            State::Scheduled => "SCHEDULED",
            State::Published => "PUBLISHED",
            State::Archived => "ARCHIVED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Accepted {
        version: i64,
        state: State,
    },
    /// The HTTP status, and for 422 the field named first.
    Refused {
        status: u16,
        field: Option<&'static str>,
    },
}

fn refused(status: u16, field: Option<&'static str>) -> Outcome {
    Outcome::Refused { status, field }
}

#[derive(Debug, Clone)]
struct ModelArticle {
    id: String,
    state: State,
    version: i64,
}

struct Model {
    articles: Vec<ModelArticle>,
    slugs: HashSet<String>,
}

impl Model {
    /// What a command on an existing article leads to. Status rules come
    /// before field rules; the version check before both.
    fn on_article(a: &ModelArticle, op: &Op) -> Outcome {
        use State::*;
        let next = |state| Outcome::Accepted { version: a.version + 1, state };
        let status = || refused(422, Some("status"));
        match *op {
            Op::Edit { valid, .. } => match (a.state, valid) {
                (Archived, _) => status(),
                (_, false) => refused(422, Some("title")),
                (s, true) => next(s),
            },
            Op::Schedule { future, .. } => match (a.state, future) {
                (Published | Archived, _) => status(),
                (_, false) => refused(422, Some("publish_at")),
                (_, true) => next(Scheduled),
            },
            Op::Publish(_) | Op::IfMatch { current: true, .. } => match a.state {
                Published | Archived => status(),
                Draft | Scheduled => next(Published),
            },
            Op::IfMatch { current: false, .. } => refused(409, None),
            Op::Unpublish(_) => match a.state {
                Published | Scheduled => next(Draft),
                Draft | Archived => status(),
            },
            Op::Archive(_) => match a.state {
                Archived => status(),
                _ => next(Archived),
            },
            Op::Restore(_) => match a.state {
                Archived => next(Draft),
                _ => status(),
            },
            Op::Draft { .. } | Op::Missing => unreachable!("not a command on an existing article"),
        }
    }
}

fn target(op: &Op) -> usize {
    match op {
        Op::Edit { target, .. } | Op::Schedule { target, .. } | Op::IfMatch { target, .. } => *target,
        Op::Publish(t) | Op::Unpublish(t) | Op::Archive(t) | Op::Restore(t) => *t,
        Op::Draft { .. } | Op::Missing => 0,
    }
}

/// The HTTP request for a command on an existing article.
async fn send(h: &Harness, a: &ModelArticle, op: &Op, now: chrono::DateTime<chrono::Utc>) -> Reply {
    let id = &a.id;
    match op {
        Op::Edit { valid, .. } => {
            let title = if *valid { "Edited" } else { "  " };
            h.post(&format!("/articles/{id}/edit"), json!({"title": title})).await
        }
        Op::Schedule { future, .. } => {
            // An hour either way of the test's start: no race with the clock.
            let offset = if *future { chrono::Duration::hours(1) } else { chrono::Duration::hours(-1) };
            h.post(&format!("/articles/{id}/schedule"), json!({"publish_at": (now + offset).to_rfc3339()})).await
        }
        Op::Publish(_) => h.post(&format!("/articles/{id}/publish"), json!({})).await,
        Op::Unpublish(_) => h.post(&format!("/articles/{id}/unpublish"), json!({})).await,
        Op::Archive(_) => h.post(&format!("/articles/{id}/archive"), json!({})).await,
        Op::Restore(_) => h.post(&format!("/articles/{id}/restore"), json!({})).await,
        Op::IfMatch { current, .. } => {
            let version = if *current { a.version } else { a.version + 1 };
            let version = version.to_string();
            h.post_with(&format!("/articles/{id}/publish"), json!({}), &[("if-match", version.as_str())]).await
        }
        Op::Draft { .. } | Op::Missing => unreachable!("not a command on an existing article"),
    }
}

/// What a client sees: the HTTP status, the version (202) and the field
/// named first (422).
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    version: Option<i64>,
    field: Option<String>,
}

impl Outcome {
    fn seen(&self) -> Seen {
        match self {
            Outcome::Accepted { version, .. } => Seen { status: 202, version: Some(*version), field: None },
            Outcome::Refused { status, field } => {
                Seen { status: *status, version: None, field: field.map(str::to_string) }
            }
        }
    }
}

fn seen(r: &Reply) -> Seen {
    let accepted = r.status == StatusCode::ACCEPTED;
    Seen {
        status: r.status.as_u16(),
        version: if accepted { r.body["version"].as_i64() } else { None },
        field: r.body["reasons"][0]["field"].as_str().map(str::to_string),
    }
}

async fn stored(h: &Harness, id: &str) -> (i64, String, i64) {
    let client = h.client().await;
    let outbox: i64 = client.query_one("select count(*) from outbox", &[]).await.expect("outbox").get(0);
    let row = client
        .query_one("select version, status from articles where id = $1::text::uuid", &[&id])
        .await
        .expect("article row");
    (outbox, row.get(1), row.get(0))
}

async fn run_case(h: &Harness, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let now = chrono::Utc::now();
    let nonce = Uuid::now_v7().simple().to_string();
    let mut model = Model { articles: Vec::new(), slugs: HashSet::new() };
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Draft { title, valid } => {
                let slug = format!("title-{nonce}-{title}");
                let predicted = if !*valid {
                    refused(422, Some("title"))
                } else if model.slugs.contains(&slug) {
                    refused(422, Some("slug"))
                } else {
                    Outcome::Accepted { version: 1, state: State::Draft }
                };
                let title = if *valid { format!("Title {nonce} {title}") } else { String::new() };
                let before = h.outbox_rows().await;
                let r = h.post("/articles", json!({"title": title, "body": "b"})).await;
                let after = h.outbox_rows().await;
                prop_assert_eq!(seen(&r), predicted.seen(), "step {} {:?}: {:?}", step, op, r.body);
                if let Outcome::Accepted { .. } = predicted {
                    prop_assert_eq!(after, before + 1, "one outbox row per accepted command");
                    let id = r.id();
                    let (_, status, version) = stored(h, &id).await;
                    prop_assert_eq!((status.as_str(), version), ("DRAFT", 1));
                    model.slugs.insert(slug);
                    model.articles.push(ModelArticle { id, state: State::Draft, version: 1 });
                } else {
                    prop_assert_eq!(after, before, "a refused draft wrote");
                }
            }
            Op::Missing => {
                let r = h.post(&format!("/articles/{}/publish", Uuid::now_v7()), json!({})).await;
                prop_assert_eq!(seen(&r), refused(404, None).seen(), "{:?}", r.body);
            }
            _ => {
                let Some(i) = (!model.articles.is_empty()).then(|| target(op) % model.articles.len()) else {
                    continue;
                };
                let a = model.articles[i].clone();
                let predicted = Model::on_article(&a, op);
                let before = stored(h, &a.id).await;
                let r = send(h, &a, op, now).await;
                let after = stored(h, &a.id).await;
                prop_assert_eq!(seen(&r), predicted.seen(), "step {} {:?}: {:?}", step, op, r.body);
                match predicted {
                    Outcome::Accepted { version, state } => {
                        prop_assert_eq!(after.0, before.0 + 1, "one outbox row per accepted command");
                        prop_assert_eq!((after.1.as_str(), after.2), (state.stored(), version), "stored article");
                        model.articles[i] = ModelArticle { state, version, ..a };
                    }
                    Outcome::Refused { status, .. } => {
                        prop_assert_eq!(&after, &before, "refused but wrote");
                        if status == 409 {
                            prop_assert_eq!(r.body["current_version"].as_i64(), Some(a.version));
                        }
                    }
                }
            }
        }
    }
    // Every article as the model has it.
    for a in &model.articles {
        let (_, status, version) = stored(h, &a.id).await;
        prop_assert_eq!((status.as_str(), version), (a.state.stored(), a.version), "{}", a.id);
    }
    Ok(())
}

#[test]
fn random_command_sequences_agree_with_the_model() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let h = rt.block_on(Harness::start());
    let mut runner = TestRunner::new(Config { cases: 32, failure_persistence: None, ..Config::default() });
    runner.run(&proptest::collection::vec(op(), 1..30), |ops| rt.block_on(run_case(&h, ops))).expect("property holds");
    // Globally: every aggregate's outbox versions are exactly 1..=n.
    rt.block_on(async {
        let gaps: i64 = h
            .count(
                "select count(*) from (
                    select aggregateid, count(*) as n, max(aggregate_version) as top, count(distinct aggregate_version) as d
                    from outbox group by aggregateid) s
                 where n <> top or d <> n",
            )
            .await;
        assert_eq!(gaps, 0, "some aggregate's outbox versions are not 1..=n");
    });
}
