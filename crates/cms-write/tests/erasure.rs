//! `DELETE /articles/{id}`: an erasure leaves nothing of the article in the
//! write model and ends its history with an event that has no payload.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Harness, WRITE};
use serde_json::json;

#[tokio::test]
async fn an_erased_article_leaves_only_its_payloadless_last_event() {
    let h = Harness::start().await;
    let keep = h.post("/articles", json!({"title": "Kept", "body": "b"})).await.id();
    let id = h.post("/articles", json!({"title": "Personal", "body": "b", "tags": ["x"]})).await.id();
    assert_eq!(h.post(&format!("/articles/{id}/publish"), json!({})).await.status, StatusCode::ACCEPTED);

    // A stale If-Match is refused and erases nothing.
    let uri = format!("/articles/{id}");
    let stale = h.send(Method::DELETE, &uri, Some(WRITE), &[("if-match", "1")], Body::empty()).await;
    assert_eq!((stale.status, stale.body["current_version"].as_i64()), (StatusCode::CONFLICT, Some(2)));
    assert_eq!(h.count(&format!("select count(*) from articles where id = '{id}'")).await, 1);

    let headers = [("if-match", "2"), ("idempotency-key", "erase-1")];
    let erased = h.send(Method::DELETE, &uri, Some(WRITE), &headers, Body::empty()).await;
    assert_eq!((erased.status, erased.body["version"].as_i64()), (StatusCode::ACCEPTED, Some(3)), "{:?}", erased.body);
    assert!(!erased.headers.contains_key("location"), "an erased article has no read resource");
    // A retry with the same key answers the same, and writes nothing more.
    let retry = h.send(Method::DELETE, &uri, Some(WRITE), &headers, Body::empty()).await;
    assert_eq!((retry.status, retry.body), (StatusCode::ACCEPTED, erased.body.clone()));

    let client = h.client().await;
    let events: Vec<(String, i64, Option<Vec<u8>>)> = client
        .query("select type, aggregate_version, payload from outbox where aggregateid = $1", &[&id])
        .await
        .expect("outbox")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(events, [("ArticleErased".to_string(), 3, None)], "only the erasure stays in the outbox");
    assert_eq!(h.count(&format!("select count(*) from articles where id = '{id}'")).await, 0);
    let changes: Vec<(String, serde_json::Value)> = client
        .query("select event_type, snapshot from changes where aggregate_id = $1", &[&id])
        .await
        .expect("changes")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(changes, [("ArticleErased".to_string(), serde_json::Value::Null)]);
    // The other article is untouched.
    assert_eq!(h.count(&format!("select count(*) from outbox where aggregateid = '{keep}'")).await, 1);

    // Gone: erasing again, or any command on it, is a 404.
    let again = h.send(Method::DELETE, &uri, Some(WRITE), &[], Body::empty()).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(h.post(&format!("/articles/{id}/publish"), json!({})).await.status, StatusCode::NOT_FOUND);
}
