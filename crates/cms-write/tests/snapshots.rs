//! GET /articles/{id} and /authors/{id}: the source of truth's current
//! snapshot and version, for read models' on-demand updates.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Harness, READ};
use serde_json::json;

#[tokio::test]
async fn the_current_snapshot_is_served_to_read_tokens_with_its_version() {
    let h = Harness::start().await;
    let author = h.post("/authors", json!({"name": "Ada"})).await.body;
    let author = author["id"].as_str().expect("id").to_string();
    let article = h.post("/articles", json!({"title": "First", "author_id": author})).await.body;
    let article = article["id"].as_str().expect("id").to_string();
    h.post(&format!("/articles/{article}/edit"), json!({"title": "First, edited"})).await;

    let r = h.send(Method::GET, &format!("/articles/{article}"), Some(READ), &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["title"], "First, edited");
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["author_id"], author.as_str());
    assert_eq!(r.headers.get("sluice-version").and_then(|v| v.to_str().ok()), Some("2"));
    let r = h.send(Method::GET, &format!("/authors/{author}"), Some(READ), &[], Body::empty()).await;
    assert_eq!(
        (r.status, &r.body["name"], r.headers.get("sluice-version").and_then(|v| v.to_str().ok())),
        (StatusCode::OK, &json!("Ada"), Some("1"))
    );

    let missing = uuid::Uuid::new_v4();
    for path in [format!("/articles/{missing}"), format!("/authors/{missing}")] {
        let r = h.send(Method::GET, &path, Some(READ), &[], Body::empty()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    let r = h.send(Method::GET, "/articles/not-a-uuid", Some(READ), &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["error"].as_str().is_some_and(|e| e.contains("not-a-uuid")), "{:?}", r.body);
    let r = h.send(Method::GET, &format!("/articles/{article}"), None, &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Erased: gone from the source of truth.
    let r = h.send(Method::DELETE, &format!("/articles/{article}"), Some(common::WRITE), &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let r = h.send(Method::GET, &format!("/articles/{article}"), Some(READ), &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
