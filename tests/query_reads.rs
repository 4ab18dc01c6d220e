//! query-api's reads, every process real: lists with cursors, slugs, pages,
//! author pages and full-text search over both read models; the same
//! answers from PostgreSQL while Redis is down; every parameter checked;
//! concurrent refreshes of one key share one fetch.

mod common;

use common::{Answer, read};
use serde_json::{Value, json};
use sluice_testkit::{ServiceHandle, wait_until};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);

struct Stack {
    w: common::WriteSide,
    projector: ServiceHandle,
    projector_pg: ServiceHandle,
    query: ServiceHandle,
}

impl Stack {
    async fn send(&self, path: &str, body: Value) -> Value {
        self.w.send(path, Some(body)).await
    }

    async fn get(&self, path: &str, consistency: Option<&str>) -> Answer {
        read(&self.w.http, &format!("{}{path}", self.query.base_url()), consistency).await
    }

    /// Every page of a list, following its cursor `limit` at a time.
    async fn all_pages(&self, path: &str, limit: usize) -> (Vec<String>, String) {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        let mut store;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let page = match &cursor {
                Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
                None => format!("{path}{sep}limit={limit}"),
            };
            let a = self.get(&page, None).await;
            assert_eq!(a.status, 200, "{page}: {a:?}");
            store = a.read_model.clone();
            let items = a.body["items"].as_array().expect("items").clone();
            assert!(items.len() <= limit);
            ids.extend(items.iter().map(|i| i["article"]["id"].as_str().expect("id").to_string()));
            match a.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return (ids, store),
            }
        }
    }
}

/// Ids of `titles`' articles newest first as the source published them.
fn newest_first(published: &[(String, i64)]) -> Vec<String> {
    let mut sorted = published.to_vec();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    sorted.into_iter().map(|(id, _)| id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_pages_and_search_from_either_read_model() {
    let w = common::WriteSide::start("reads").await;
    let id_of = |answer: Value| answer["id"].as_str().expect("id").to_string();
    let ada = id_of(w.send("/authors", Some(json!({"name": "Ada"}))).await);
    let grace = id_of(w.send("/authors", Some(json!({"name": "Grace"}))).await);
    let mut published: Vec<(String, String, i64)> = Vec::new(); // (id, author, published order)
    let mut draft = String::new();
    for n in 0..9 {
        let (author, tags) = if n % 3 == 0 { (&grace, json!(["pg"])) } else { (&ada, json!(["rust", "cqrs"])) };
        let title = if n == 4 { "Logical replication explained".to_string() } else { format!("Article number {n}") };
        let id = w
            .create_article(json!({"title": title, "body": format!("Body {n}"), "author_id": author, "tags": tags}))
            .await;
        if n == 8 {
            draft = id;
            continue;
        }
        w.send(&format!("/articles/{id}/publish"), Some(json!({}))).await;
        published.push((id, author.clone(), n));
    }

    let projector = w.projector().await;
    let (projector_pg, pg_url, _) = w.projector_postgres().await;
    let query = w.query(&[("SLUICE_POSTGRES_URL", pg_url.clone()), ("SLUICE_POSTGRES_PROJECTION", "cms".into())]).await;
    let mut s = Stack { w, projector, projector_pg, query };

    // The source's order: by published_at (read back from the source of truth).
    let mut order = Vec::new();
    for (id, _, _) in &published {
        let snapshot = s.w.snapshot(id).await;
        order.push((id.clone(), snapshot["published_at"].as_i64().expect("published_at")));
    }
    let all = newest_first(&order);
    let of = |author: &String| -> Vec<String> {
        let mine: Vec<(String, i64)> =
            order.iter().filter(|(id, _)| published.iter().any(|(p, a, _)| p == id && a == author)).cloned().collect();
        newest_first(&mine)
    };
    let expectations: Vec<(String, Vec<String>)> = vec![
        ("/articles".into(), all.clone()),
        ("/tags/rust/articles".into(), of(&ada)),
        ("/tags/pg/articles".into(), of(&grace)),
        (format!("/authors/{ada}/articles"), of(&ada)),
        (format!("/authors/{grace}/articles"), of(&grace)),
        ("/tags/none/articles".into(), vec![]),
    ];
    wait_until("the Redis read model to list every published article", DEADLINE, || async {
        let a = s.get("/articles?limit=100", None).await;
        (a.body["items"].as_array().map_or(0, Vec::len) == published.len()).then_some(())
    })
    .await;
    for (path, want) in &expectations {
        for limit in [1, 3, 100] {
            let (ids, store) = s.all_pages(path, limit).await;
            assert_eq!((&ids, store.as_str()), (want, "redis"), "{path} by {limit}");
        }
    }
    assert!(!all.contains(&draft), "a draft is listed");

    // Slug, page and author page.
    let first = &published[0].0;
    let page = s.get(&format!("/articles/{first}/page"), None).await;
    assert_eq!((page.status, page.body["author_name"].as_str()), (200, Some("Grace")), "{page:?}");
    let slug = page.body["article"]["slug"].as_str().expect("slug").to_string();
    let by_slug = s.get(&format!("/articles/by-slug/{slug}"), None).await;
    assert_eq!(by_slug.body["article"]["id"], first.as_str());
    assert_eq!(s.get("/articles/by-slug/no-such-slug", None).await.status, 404);
    let author = s.get(&format!("/authors/{ada}"), None).await;
    assert_eq!(author.body["author"]["name"], "Ada");
    assert_eq!(author.body["article_counts"]["PUBLISHED"].as_i64(), Some(5), "{author:?}");
    assert_eq!(author.body["article_counts"]["DRAFT"].as_i64(), Some(1), "{author:?}");

    // Search (PostgreSQL read model): by words of the title, best first.
    wait_until("the PostgreSQL read model to hold every article", DEADLINE, || async {
        let a = s.get("/articles/search?q=article", None).await;
        (a.body["items"].as_array().map_or(0, Vec::len) == 7).then_some(())
    })
    .await;
    let found = s.get("/articles/search?q=replication", None).await;
    assert_eq!((found.status, found.read_model.as_str()), (200, "postgres"));
    let items = found.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{found:?}");
    assert_eq!(items[0]["article"]["title"], "Logical replication explained");
    assert_eq!(items[0]["author_name"], "Ada");

    // Bad input: 400 naming what is wrong, nothing else happens.
    for (path, consistency, says) in [
        ("/articles?limit=0", None, "limit"),
        ("/articles?limit=abc", None, "limit"),
        ("/articles?cursor=zzz", None, "cursor"),
        ("/articles?colour=red", None, "colour"),
        ("/articles/not-a-uuid", None, "UUID"),
        ("/authors/not-a-uuid/articles", None, "UUID"),
        ("/articles/search", None, "q:"),
        ("/articles", Some("strong"), "unknown mode"),
        ("/articles?consistency=bounded", None, "max-staleness-ms"),
        ("/articles", Some("at-least; token=!!"), "not a consistency token"),
    ] {
        let a = s.get(path, consistency).await;
        let error = a.body["error"].as_str().unwrap_or_default().to_string();
        assert!(a.status == 400 && error.contains(says), "{path} {consistency:?}: {a:?}");
    }
    // Well-formed, but not processable (422): a token of no aggregate a
    // command answers for, and a header and a parameter that disagree.
    for (path, consistency, says) in [
        ("/articles", Some("at-least; token=b3JkZXI6MTox"), "not a consistency token a command answered"),
        ("/articles?consistency=eventual", Some("bounded; max-staleness-ms=5"), "disagree"),
    ] {
        let a = s.get(path, consistency).await;
        let error = a.body["error"].as_str().unwrap_or_default().to_string();
        assert!(a.status == 422 && error.contains(says), "{path} {consistency:?}: {a:?}");
    }

    // An erasure's token is met once the read model holds the erasure.
    let erased = s.w.send(&format!("/articles/{draft}"), None).await;
    let erased = format!("at-least; token={}", erased["consistency_token"].as_str().expect("token"));
    wait_until("a list read with the erasure's token to be projected", DEADLINE, || async {
        let a = s.get("/articles", Some(&erased)).await;
        (a.status == 200 && a.freshness == "projected").then_some(())
    })
    .await;
    let gone = s.get(&format!("/articles/{draft}"), Some(&erased)).await;
    assert_eq!((gone.status, gone.freshness.as_str()), (404, "projected"), "{gone:?}");

    // Search waits for the PostgreSQL read model, the one it reads.
    s.projector_pg.freeze();
    let edit = s.send(&format!("/articles/{}/edit", published[1].0), json!({"title": "Searchable later"})).await;
    let token = format!("at-least; token={}", edit["consistency_token"].as_str().expect("token"));
    let waited = s.get("/articles/search?q=searchable", Some(&token)).await;
    assert_eq!((waited.status, waited.freshness.as_str()), (200, "stale"), "{waited:?}");
    s.projector_pg.thaw();
    let found = wait_until("search to find the edit", DEADLINE, || async {
        let a = s.get("/articles/search?q=searchable", Some(&token)).await;
        (a.freshness == "projected").then_some(a)
    })
    .await;
    assert_eq!(found.body["items"][0]["article"]["title"], "Searchable later");

    // With read tokens configured, every read needs one; the OpenAPI document does not.
    let guarded = s.w.query(&[("SLUICE_READ_TOKENS", "reader-1, reader-2".into())]).await;
    let article_url = format!("{}/articles/{first}", guarded.base_url());
    assert_eq!(s.w.http.get(&article_url).send().await.expect("get").status(), 401);
    assert_eq!(s.w.http.get(&article_url).bearer_auth("nope").send().await.expect("get").status(), 401);
    assert_eq!(s.w.http.get(&article_url).bearer_auth("reader-2").send().await.expect("get").status(), 200);
    let served = s.w.http.get(format!("{}/openapi.json", guarded.base_url())).send().await.expect("openapi");
    assert_eq!(served.status(), 200);
    let served = served.text().await.expect("openapi body");
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../services/query-api/openapi.json"))
            .unwrap_or_default();
    assert_eq!(checked_in.trim(), served.trim(), "services/query-api/openapi.json is stale: run `make openapi`");
    drop(guarded);

    // Redis down: every read the PostgreSQL read model can serve comes from it, the same.
    let snapshot_article = s.get(&format!("/articles/{first}"), None).await;
    let redis_lists: Vec<(Vec<String>, String)> = {
        let mut v = Vec::new();
        for (path, _) in &expectations {
            v.push(s.all_pages(path, 2).await);
        }
        v
    };
    s.w.redis.stop();
    let from_pg = s.get(&format!("/articles/{first}"), None).await;
    assert_eq!((from_pg.status, from_pg.read_model.as_str()), (200, "postgres"), "{from_pg:?}");
    assert_eq!(from_pg.body, snapshot_article.body, "the two read models answer different documents");
    assert_eq!(from_pg.version, snapshot_article.version);
    for ((path, want), (redis_ids, _)) in expectations.iter().zip(&redis_lists) {
        let (ids, store) = s.all_pages(path, 2).await;
        assert_eq!((&ids, store.as_str()), (want, "postgres"), "{path} from PostgreSQL");
        assert_eq!(&ids, redis_ids);
    }
    let page = s.get(&format!("/articles/{first}/page"), None).await;
    assert_eq!((page.read_model.as_str(), page.body["author_name"].as_str()), ("postgres", Some("Grace")));
    let author = s.get(&format!("/authors/{ada}"), None).await;
    assert_eq!(author.body["article_counts"]["PUBLISHED"].as_i64(), Some(5), "{author:?}");
    // An on-demand refresh goes to the read model that answers.
    s.projector.freeze();
    let token = s.send(&format!("/articles/{first}/edit"), json!({"title": "Edited while Redis is down"})).await;
    let token = token["consistency_token"].as_str().expect("token").to_string();
    let mine = s.get(&format!("/articles/{first}"), Some(&format!("at-least; token={token}"))).await;
    assert_eq!((mine.status, mine.freshness.as_str(), mine.read_model.as_str()), (200, "refreshed", "postgres"));
    let again = s.get(&format!("/articles/{first}"), None).await;
    assert_eq!(
        (again.body["title"].as_str(), again.read_model.as_str()),
        (Some("Edited while Redis is down"), "postgres")
    );
    s.projector.thaw();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_of_one_key_are_one_fetch() {
    let w = common::WriteSide::start("coalesce").await;
    let id = w.create_article(json!({"title": "Once"})).await;
    let projector = w.projector().await;
    let query = w.query(&[("SLUICE_SOURCE_TIMEOUT_MS", "30000".into())]).await;
    let (http, command) = (&w.http, &w.command);
    let url = format!("{}/articles/{id}", query.base_url());
    wait_until("the article projected", DEADLINE, || async {
        (read(http, &url, None).await.status == 200).then_some(())
    })
    .await;

    projector.freeze();
    let edit = w.send(&format!("/articles/{id}/edit"), Some(json!({"title": "Twice"}))).await;
    let token = edit["consistency_token"].as_str().expect("token").to_string();
    // The source of truth hangs while 20 readers ask for the write: they all
    // wait on one fetch.
    command.freeze();
    let consistency = format!("at-least; token={token}");
    let readers: Vec<_> = (0..20)
        .map(|_| {
            let (http, url, consistency) = (http.clone(), url.clone(), consistency.clone());
            tokio::spawn(async move { read(&http, &url, Some(&consistency)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    command.thaw();
    for r in readers {
        let a = r.await.expect("reader");
        assert_eq!((a.status, a.version, a.freshness.as_str()), (200, Some(2), "refreshed"), "{a:?}");
    }
    let applied = common::metric(&query, "sluice_query_refreshes_total").await;
    let coalesced = common::metric(&query, "sluice_query_refreshes_coalesced_total").await;
    assert_eq!((applied, coalesced), (1.0, 19.0));
    projector.thaw();
}
