//! Every command over HTTP against a real PostgreSQL, and every way to refuse one.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Harness, READ, WRITE};
use serde_json::json;

#[tokio::test]
async fn every_article_and_author_command_is_accepted_with_its_event() {
    let h = Harness::start().await;
    let author = h.post("/authors", json!({"name": "Ada", "bio": "Mathematician"})).await;
    assert_eq!(author.status, StatusCode::ACCEPTED, "{:?}", author.body);
    let author_id = author.id();
    assert_eq!(author.headers["location"], format!("http://query.test/authors/{author_id}").as_str());

    let draft =
        h.post("/articles", json!({"title": "Hello", "body": "b", "author_id": author_id, "tags": ["Rust"]})).await;
    assert_eq!(draft.status, StatusCode::ACCEPTED, "{:?}", draft.body);
    let id = draft.id();
    assert_eq!(draft.body["version"], 1);
    assert_eq!(draft.headers["location"], format!("http://query.test/articles/{id}").as_str());
    assert!(cms_write::ConsistencyToken::decode(draft.body["consistency_token"].as_str().expect("token")).is_some());

    let at = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let steps = [
        ("edit", json!({"title": "Hello again", "tags": ["rust", "cqrs"]}), 2),
        ("schedule", json!({"publish_at": at}), 3),
        ("publish", json!({}), 4),
        ("unpublish", json!({}), 5),
        ("archive", json!({}), 6),
        ("restore", json!({}), 7),
    ];
    for (action, body, version) in steps {
        let r = h.post(&format!("/articles/{id}/{action}"), body).await;
        assert_eq!(
            (r.status, r.body["version"].as_i64()),
            (StatusCode::ACCEPTED, Some(version)),
            "{action}: {:?}",
            r.body
        );
    }
    // A command without fields also takes an empty body, without a content type.
    let r = h.send(Method::POST, &format!("/articles/{id}/publish"), Some(WRITE), &[], Body::empty()).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (StatusCode::ACCEPTED, Some(8)), "{:?}", r.body);

    let r = h.post(&format!("/authors/{author_id}/rename"), json!({"name": "Ada Lovelace"})).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (StatusCode::ACCEPTED, Some(2)));
    let r = h.post(&format!("/authors/{author_id}/bio"), json!({"bio": null})).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (StatusCode::ACCEPTED, Some(3)));

    let client = h.client().await;
    let events: Vec<String> = client
        // In the order of the writing transactions' ids (each command is one
        // transaction, sent one after the other), not of clock readings.
        .query("select type from outbox order by xmin::text::bigint", &[])
        .await
        .expect("outbox")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected = [
        "AuthorCreated",
        "ArticleDrafted",
        "ArticleEdited",
        "ArticleScheduled",
        "ArticlePublished",
        "ArticleUnpublished",
        "ArticleArchived",
        "ArticleRestored",
        "ArticlePublished",
        "AuthorRenamed",
        "AuthorBioUpdated",
    ];
    assert_eq!(events, expected);
    let row = client
        .query_one("select version, status, title, tags from articles where id = $1::text::uuid", &[&id])
        .await
        .expect("article row");
    assert_eq!(row.get::<_, i64>(0), 8);
    assert_eq!(row.get::<_, String>(1), "PUBLISHED");
    assert_eq!(row.get::<_, Vec<String>>(3), ["rust", "cqrs"]);
    // Outbox payloads are Confluent-framed Avro.
    let payload: Vec<u8> = client.query_one("select payload from outbox limit 1", &[]).await.expect("payload").get(0);
    assert_eq!(payload[0], 0, "magic byte");
}

#[tokio::test]
async fn refusals_have_the_right_status_and_write_nothing() {
    let h = Harness::start().await;
    let id = h.post("/articles", json!({"title": "Original"})).await.id();
    let before = h.outbox_rows().await;

    // 422: validation, with every reason.
    let r = h.post("/articles", json!({"title": "", "slug": "Not A Slug"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> =
        r.body["reasons"].as_array().expect("reasons").iter().filter_map(|x| x["field"].as_str()).collect();
    assert_eq!(fields, ["title", "slug"]);
    // 422: invalid transition.
    let r = h.post(&format!("/articles/{id}/restore"), json!({})).await;
    assert_eq!((r.status, r.body["reasons"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("status")));
    // 422: duplicate slug.
    let r = h.post("/articles", json!({"title": "Original"})).await;
    assert_eq!((r.status, r.body["reasons"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("slug")));
    // 422: unknown author.
    let r = h.post("/articles", json!({"title": "x", "author_id": uuid::Uuid::now_v7()})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // 422, not a database error: PostgreSQL text cannot hold NUL (found by schemathesis).
    let r = h.post("/articles", json!({"title": "a\0b", "body": "c\0"})).await;
    let fields: Vec<&str> =
        r.body["reasons"].as_array().expect("reasons").iter().filter_map(|x| x["field"].as_str()).collect();
    assert_eq!((r.status, fields), (StatusCode::UNPROCESSABLE_ENTITY, vec!["title", "body"]));
    let r = h.post("/authors", json!({"name": "Ada\0", "bio": "\0"})).await;
    let fields: Vec<&str> =
        r.body["reasons"].as_array().expect("reasons").iter().filter_map(|x| x["field"].as_str()).collect();
    assert_eq!((r.status, fields), (StatusCode::UNPROCESSABLE_ENTITY, vec!["name", "bio"]));
    // The length of a title counts its surrounding spaces, as the document says.
    let r = h.post("/articles", json!({"title": format!("{}  ", "t".repeat(199))})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // 400: malformed JSON, wrong type, unknown field, bad id, bad If-Match.
    let malformed = h
        .send(
            Method::POST,
            "/articles",
            Some(WRITE),
            &[("content-type", "application/json")],
            Body::from("{\"title\": "),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(malformed.body["error"].as_str().expect("error").contains("malformed JSON"), "{:?}", malformed.body);
    let wrong_type = h.post("/articles", json!({"title": 42})).await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert!(wrong_type.body["error"].as_str().expect("error").contains("invalid type"), "{:?}", wrong_type.body);
    let unknown = h.post("/articles", json!({"title": "t", "colour": "red"})).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.body["error"].as_str().expect("error").contains("colour"), "{:?}", unknown.body);
    assert_eq!(h.post("/articles/not-a-uuid/publish", json!({})).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        h.post_with(&format!("/articles/{id}/publish"), json!({}), &[("if-match", "soon")]).await.status,
        StatusCode::BAD_REQUEST
    );
    // 415: not JSON.
    let r =
        h.send(Method::POST, "/articles", Some(WRITE), &[("content-type", "text/plain")], Body::from("title=x")).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // 413: over the body limit.
    let huge = json!({"title": "t", "body": "x".repeat(common::MAX_BODY + 1)});
    assert_eq!(h.post("/articles", huge).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    // 404: no such aggregate.
    let r = h.post(&format!("/articles/{}/publish", uuid::Uuid::now_v7()), json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // 409: stale If-Match, with the current version.
    let r = h.post_with(&format!("/articles/{id}/publish"), json!({}), &[("if-match", "\"7\"")]).await;
    assert_eq!((r.status, r.body["current_version"].as_i64()), (StatusCode::CONFLICT, Some(1)));
    // 401 without a token, 403 with a read-only token.
    let r = h
        .send(Method::POST, "/articles", None, &[("content-type", "application/json")], Body::from("{\"title\":\"t\"}"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    let r = h
        .send(
            Method::POST,
            "/articles",
            Some(READ),
            &[("content-type", "application/json")],
            Body::from("{\"title\":\"t\"}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .send(
            Method::POST,
            "/articles",
            Some("guess"),
            &[("content-type", "application/json")],
            Body::from("{\"title\":\"t\"}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    assert_eq!(h.outbox_rows().await, before, "a refused command wrote an outbox row");
    assert_eq!(h.count("select count(*) from articles").await, 1);
    assert_eq!(h.count("select max(version) from articles").await, 1);

    // The matching If-Match is accepted.
    let r = h.post_with(&format!("/articles/{id}/publish"), json!({}), &[("if-match", "1")]).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (StatusCode::ACCEPTED, Some(2)));
}

#[tokio::test]
async fn the_openapi_document_is_served_and_matches_the_checked_in_copy() {
    let h = Harness::start().await;
    let r = h.send(Method::GET, "/openapi.json", None, &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["paths"]["/articles/{id}/publish"]["post"].is_object());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../services/command-api/openapi.json");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(
        checked_in.trim(),
        cms_write::openapi_json().trim(),
        "services/command-api/openapi.json is stale: regenerate it with `make openapi`"
    );
}
