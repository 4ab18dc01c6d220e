//! Idempotency keys, optimistic concurrency and scheduled publishing with
//! several workers, against a real PostgreSQL.

mod common;

use axum::http::StatusCode;
use cms_domain::{ArticleCommand, EditArticle};
use cms_write::CommandContext;
use common::Harness;
use serde_json::json;

#[tokio::test]
async fn a_retried_command_returns_its_first_answer_and_runs_once() {
    let h = Harness::start().await;
    let key = [("idempotency-key", "retry-1")];
    let first = h.post_with("/articles", json!({"title": "Once"}), &key).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let again = h.post_with("/articles", json!({"title": "Once"}), &key).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["location"], first.headers["location"]);
    assert_eq!(h.count("select count(*) from articles").await, 1);
    assert_eq!(h.outbox_rows().await, 1);

    // Same key, different body: refused, nothing written.
    let other = h.post_with("/articles", json!({"title": "Twice"}), &key).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.body["reasons"][0]["field"], "Idempotency-Key");
    // The same key on another endpoint is another key.
    let author = h.post_with("/authors", json!({"name": "A"}), &key).await;
    assert_eq!(author.status, StatusCode::ACCEPTED);
    assert_eq!(h.outbox_rows().await, 2);

    // Concurrent retries of one key: exactly one runs.
    let key = [("idempotency-key", "race")];
    let (a, b) = tokio::join!(
        h.post_with("/articles", json!({"title": "Race"}), &key),
        h.post_with("/articles", json!({"title": "Race"}), &key)
    );
    assert_eq!((a.status, b.status), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(a.body, b.body);
    assert_eq!(h.count("select count(*) from articles where title = 'Race'").await, 1);
}

#[tokio::test]
async fn idempotency_keys_expire() {
    let h = Harness::start().await;
    let key = [("idempotency-key", "old")];
    let first = h.post_with("/articles", json!({"title": "Old"}), &key).await;
    h.client()
        .await
        .execute("update idempotency_keys set created_at = now() - interval '2 hours'", &[])
        .await
        .expect("age");
    // The harness keeps keys for one hour: the expired key is purged, and may be reused.
    assert_eq!(h.service.purge_expired_keys().await.expect("purge"), 1);
    let reused = h.post_with("/articles", json!({"title": "New"}), &key).await;
    assert_eq!(reused.status, StatusCode::ACCEPTED);
    assert_ne!(reused.body["id"], first.body["id"]);
}

#[tokio::test]
async fn of_two_concurrent_edits_with_the_same_if_match_exactly_one_wins() {
    let h = Harness::start().await;
    let id = h.post("/articles", json!({"title": "Contended"})).await.id();
    for round in 0..5 {
        let version = (1 + round).to_string();
        let uri = format!("/articles/{id}/edit");
        let if_match = [("if-match", version.as_str())];
        let (a, b) = tokio::join!(
            h.post_with(&uri, json!({"body": format!("a{round}")}), &if_match),
            h.post_with(&uri, json!({"body": format!("b{round}")}), &if_match)
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::ACCEPTED, StatusCode::CONFLICT], "round {round}: {:?} {:?}", a.body, b.body);
    }
    assert_eq!(h.count("select version from articles").await, 6);
    assert_eq!(h.outbox_rows().await, 6);
}

#[tokio::test]
async fn scheduled_articles_are_published_exactly_once_by_two_workers() {
    let h = Harness::start().await;
    let replica = h.replica().await;
    // An hour ahead: in the future when the command runs, however slowly it runs.
    let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let mut ids = Vec::new();
    for i in 0..20 {
        let id = h.post("/articles", json!({"title": format!("Scheduled {i}")})).await.id();
        let r = h.post(&format!("/articles/{id}/schedule"), json!({"publish_at": at})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        ids.push(id);
    }
    let edited = ids[0].parse().expect("uuid");
    // One more article scheduled far away stays scheduled.
    let later = h.post("/articles", json!({"title": "Later"})).await.id();
    let at = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    h.post(&format!("/articles/{later}/schedule"), json!({"publish_at": at})).await;
    assert_eq!(h.service.publish_due(100).await.expect("early"), 0, "published before its time");

    // Their time comes. Workers compare with the database's clock, so instead
    // of waiting an hour, their schedule moves into that clock's past.
    let moved = h
        .client()
        .await
        .execute("update articles set scheduled_at = now() - interval '1 second' where title like 'Scheduled %'", &[])
        .await
        .expect("move the schedule");
    assert_eq!(moved, 20);
    let (a, b) = tokio::join!(h.service.publish_due(100), replica.publish_due(100));
    let (a, b) = (a.expect("worker a"), b.expect("worker b"));
    assert_eq!(a + b, 20, "worker a published {a}, worker b {b}");
    assert_eq!(h.count("select count(*) from outbox where type = 'ArticlePublished'").await, 20);
    assert_eq!(h.count("select count(*) from articles where status = 'PUBLISHED'").await, 20);
    assert_eq!(h.count("select count(*) from articles where status = 'SCHEDULED'").await, 1);
    // Nothing is left to publish twice.
    assert_eq!(h.service.publish_due(100).await.expect("again"), 0);
    // A published article can still be edited: version 4 after draft, schedule, publish.
    let r = h
        .service
        .article_command(
            &CommandContext::default(),
            edited,
            ArticleCommand::Edit(EditArticle { body: Some("x".into()), ..Default::default() }),
        )
        .await
        .expect("edit after publish");
    assert_eq!(r.body["version"], 4);
}
