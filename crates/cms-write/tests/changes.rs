//! GET /changes: catch-up in commit order that never skips a late commit.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Harness, READ};
use serde_json::{Value, json};

async fn page(h: &Harness, after: &str, limit: u32) -> Value {
    let r = h.send(Method::GET, &format!("/changes?after={after}&limit={limit}"), Some(READ), &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

fn titles(page: &Value) -> Vec<String> {
    page["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["snapshot"]["title"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn pages_follow_each_other_with_full_snapshots() {
    let h = Harness::start().await;
    for i in 0..5 {
        h.post("/articles", json!({"title": format!("A{i}")})).await;
    }
    let first = page(&h, "", 2).await;
    assert_eq!(titles(&first), ["A0", "A1"]);
    let c = &first["changes"][0];
    assert_eq!(
        (c["aggregate_type"].as_str(), c["version"].as_i64(), c["event_type"].as_str()),
        (Some("article"), Some(1), Some("ArticleDrafted"))
    );
    let second = page(&h, first["next_cursor"].as_str().expect("cursor"), 10).await;
    assert_eq!(titles(&second), ["A2", "A3", "A4"]);
    let empty = page(&h, second["next_cursor"].as_str().expect("cursor"), 10).await;
    assert_eq!(titles(&empty), Vec::<String>::new());
    assert_eq!(empty["next_cursor"], second["next_cursor"], "an empty page keeps the cursor");

    for bad in ["/changes?after=nonsense", "/changes?limit=0", "/changes?limit=5000", "/changes?colour=red"] {
        let r = h.send(Method::GET, bad, Some(READ), &[], Body::empty()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
    }
    let r = h.send(Method::GET, "/changes", None, &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_transaction_that_commits_late_is_not_skipped() {
    let h = Harness::start().await;
    h.post("/articles", json!({"title": "Before"})).await;
    let seen = page(&h, "", 100).await;
    assert_eq!(titles(&seen), ["Before"]);
    let cursor = seen["next_cursor"].as_str().expect("cursor").to_string();

    // A slow writer takes its transaction id first and commits last.
    let mut slow = h.client().await;
    let tx = slow.transaction().await.expect("begin");
    tx.execute(
        "insert into changes (aggregate_type, aggregate_id, version, event_type, snapshot)
         values ('article', 'slow', 1, 'ArticleDrafted', '{\"title\": \"Slow\"}')",
        &[],
    )
    .await
    .expect("slow insert");
    // Meanwhile two commands commit.
    h.post("/articles", json!({"title": "Fast 1"})).await;
    h.post("/articles", json!({"title": "Fast 2"})).await;

    // A reader now must not move past the open transaction.
    let during = page(&h, &cursor, 100).await;
    assert_eq!(titles(&during), Vec::<String>::new(), "returned rows committed after an open transaction");
    assert_eq!(during["next_cursor"].as_str(), Some(cursor.as_str()));

    tx.commit().await.expect("commit the slow transaction");
    let after = page(&h, &cursor, 100).await;
    assert_eq!(titles(&after), ["Slow", "Fast 1", "Fast 2"]);
}
