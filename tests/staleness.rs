//! query-api's staleness contract, every process real: each answer says how
//! far the key's partition is behind; `bounded` and `at-least` reads are
//! refreshed from the source of truth (command-api) when the read model is
//! staler than asked, through the projector's own version-guarded upsert;
//! the source down means stale data with 200, never a 5xx.

mod common;

use common::{Answer, read};
use serde_json::json;
use sluice_testkit::{ServiceHandle, wait_until};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);

struct Stack {
    w: common::WriteSide,
    projector: ServiceHandle,
    query: ServiceHandle,
}

impl Stack {
    async fn start() -> Stack {
        let w = common::WriteSide::start("stale").await;
        // The topics exist once the relay published to them.
        let author = w.send("/authors", Some(json!({"name": "Ada"}))).await;
        let author = author["id"].as_str().expect("author id").to_string();
        w.create_article(json!({"title": "Warm-up", "author_id": author})).await;
        let projector = w.projector().await;
        let query = w.query(&[]).await;
        Stack { w, projector, query }
    }

    async fn create_article(&self, title: &str) -> (String, String) {
        let answer = self.w.send("/articles", Some(json!({"title": title}))).await;
        (answer["id"].as_str().expect("id").into(), answer["consistency_token"].as_str().expect("token").into())
    }

    /// Edits the article's title; returns the consistency token.
    async fn edit(&self, id: &str, title: &str) -> String {
        let answer = self.w.send(&format!("/articles/{id}/edit"), Some(json!({"title": title}))).await;
        answer["consistency_token"].as_str().expect("token").into()
    }

    fn url(&self, id: &str) -> String {
        format!("{}/articles/{id}", self.query.base_url())
    }

    async fn get(&self, id: &str, consistency: Option<&str>) -> Answer {
        read(&self.w.http, &self.url(id), consistency).await
    }

    /// Polls an eventual read until `until` holds.
    async fn wait_read(&self, id: &str, what: &str, until: impl Fn(&Answer) -> bool) -> Answer {
        wait_until(what, DEADLINE, || async {
            let a = self.get(id, None).await;
            until(&a).then_some(a)
        })
        .await
    }
}

fn at_least(token: &str) -> String {
    format!("at-least; token={token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_say_how_stale_they_are_and_are_refreshed_when_staler_than_asked() {
    let mut s = Stack::start().await;
    let (id, _) = s.create_article("One").await;
    let first = s.wait_read(&id, "the article projected", |a| a.status == 200).await;
    assert_eq!((first.version, first.freshness.as_str(), first.read_model.as_str()), (Some(1), "projected", "redis"));

    // The projector pauses; the article changes in the source of truth.
    s.projector.freeze();
    let token2 = s.edit(&id, "Two").await;

    // (a) eventual: the old version, and lag headers that say it is behind.
    let a =
        s.wait_read(&id, "the lag to show", |a| a.lag_messages.unwrap_or(0) > 0 && a.lag_ms.unwrap_or(0) >= 50).await;
    assert_eq!((a.status, a.version, a.freshness.as_str()), (200, Some(1), "projected"), "{a:?}");
    assert_eq!(a.body["title"], "One");

    // (e) a bound above the measured lag is met by the read model...
    let lag_ms = a.lag_ms.expect("lag");
    let above = s.get(&id, Some(&format!("bounded; max-staleness-ms={}", lag_ms + 600_000))).await;
    assert_eq!((above.version, above.freshness.as_str()), (Some(1), "projected"), "{above:?}");
    // ...one below it is refreshed from the source of truth.
    let below = s.get(&id, Some("bounded; max-staleness-ms=1")).await;
    assert_eq!((below.status, below.version, below.freshness.as_str()), (200, Some(2), "refreshed"), "{below:?}");
    assert_eq!(below.body["title"], "Two");

    // (b) at-least with a command's token: the new version, refreshed.
    let token3 = s.edit(&id, "Three").await;
    let b = s.get(&id, Some(&at_least(&token3))).await;
    assert_eq!((b.status, b.version, b.freshness.as_str()), (200, Some(3), "refreshed"), "{b:?}");
    assert_eq!(b.body["title"], "Three");
    // The refresh went into the read model without moving its position.
    let after = s.get(&id, None).await;
    assert_eq!((after.version, after.freshness.as_str()), (Some(3), "projected"), "{after:?}");
    assert!(after.lag_messages.unwrap_or(0) > 0, "a refresh moved the projection's position: {after:?}");
    // An older token is met by what the read model holds.
    let older = s.get(&id, Some(&at_least(&token2))).await;
    assert_eq!((older.version, older.freshness.as_str()), (Some(3), "projected"), "{older:?}");

    // A new slug, read by that slug with the edit's token: the article is
    // refreshed first, so the slug is found although not projected yet.
    let slug_edit = s.w.send(&format!("/articles/{id}/edit"), Some(json!({"slug": "a-fresh-slug"}))).await;
    let slug_token = slug_edit["consistency_token"].as_str().expect("token");
    let by_slug_url = format!("{}/articles/by-slug/a-fresh-slug", s.query.base_url());
    let eventual = read(&s.w.http, &by_slug_url, None).await;
    assert_eq!(eventual.status, 404, "{eventual:?}");
    assert!(eventual.lag_messages.is_some(), "a 404 says how stale it is: {eventual:?}");
    let by_slug = read(&s.w.http, &by_slug_url, Some(&at_least(slug_token))).await;
    assert_eq!((by_slug.status, by_slug.version), (200, Some(4)), "{by_slug:?}");
    assert_eq!(by_slug.body["article"]["id"], id.as_str());

    // (d) the source of truth down: the read model's data, 200, stale.
    s.w.command.freeze();
    let d = s.get(&id, Some("bounded; max-staleness-ms=1")).await;
    assert_eq!((d.status, d.version, d.freshness.as_str()), (200, Some(4), "stale"), "{d:?}");
    assert!(d.lag_messages.unwrap_or(0) > 0, "{d:?}");
    s.w.command.thaw();

    // (c) the projector resumes: it applies versions 2 and 3 and does not
    // take the refreshed article back.
    s.projector.thaw();
    let c = s.wait_read(&id, "the projector to catch up", |a| a.lag_messages == Some(0)).await;
    assert_eq!((c.version, c.freshness.as_str(), c.lag_ms), (Some(4), "projected", Some(0)), "{c:?}");
    assert_eq!(c.body["title"], "Three");
    assert_eq!(c.body["slug"], "a-fresh-slug");
    assert_eq!(c.body["version"], 4);

    // What the bound covers: from the topic to the read model, not the
    // relay's own delay. With the relay stopped, a committed edit is not on
    // the topic: the lag stays 0 and a bound of 0 ms is met by the old
    // version. An at-least token still reads the write.
    s.w.relay.terminate();
    let token4 = s.edit(&id, "Four").await;
    for _ in 0..5 {
        let zero = s.get(&id, Some("bounded; max-staleness-ms=0")).await;
        assert_eq!(
            (zero.version, zero.lag_messages, zero.lag_ms, zero.freshness.as_str()),
            (Some(4), Some(0), Some(0), "projected"),
            "{zero:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mine = s.get(&id, Some(&at_least(&token4))).await;
    assert_eq!((mine.version, mine.freshness.as_str()), (Some(5), "refreshed"), "{mine:?}");

    // The write database down (a fast shutdown): reads go on; a read that
    // needs the source of truth answers the read model's data, 200, stale.
    let pg = s.w.pg.pid();
    sluice_stack::signal_pid(pg, sluice_stack::SIGINT);
    wait_until("PostgreSQL to stop", DEADLINE, || async { (!sluice_stack::pid_alive(pg)).then_some(()) }).await;
    let down = s.get(&id, None).await;
    assert_eq!((down.status, down.version, down.freshness.as_str()), (200, Some(5), "projected"), "{down:?}");
    let beyond =
        sluice_core::ConsistencyToken { aggregate_type: "article".into(), aggregate_id: id.clone(), version: 6 };
    let stale = s.get(&id, Some(&at_least(&beyond.encode()))).await;
    assert_eq!((stale.status, stale.version, stale.freshness.as_str()), (200, Some(5), "stale"), "{stale:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_writes_are_each_read_back_with_their_token() {
    let s = Stack::start().await;
    let mut refreshed = 0;
    for n in 0..1_000 {
        let (id, token) = s.create_article(&format!("Mine {n}")).await;
        let a = s.get(&id, Some(&at_least(&token))).await;
        assert_eq!((a.status, a.version), (200, Some(1)), "write {n} not read back: {a:?}");
        assert_eq!(a.body["id"], id.as_str());
        assert_eq!(a.body["title"], format!("Mine {n}"));
        assert!(matches!(a.freshness.as_str(), "projected" | "refreshed"), "{a:?}");
        refreshed += usize::from(a.freshness == "refreshed");
    }
    eprintln!("1000 reads of one's own write: {refreshed} refreshed, {} projected", 1_000 - refreshed);
}
