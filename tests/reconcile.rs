//! `sluice reconcile`: read-model entries corrupted and deleted by hand, in
//! Redis and in PostgreSQL, are repaired by one run from the source of
//! truth; a second run finds nothing.

mod common;

use serde_json::{Value, json};
use sluice_testkit::{service_binary, wait_until};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);

fn reconcile(args: &[&str]) -> String {
    let out = std::process::Command::new(service_binary("sluice"))
        .arg("reconcile")
        .args(args)
        .env("SLUICE_SOURCE_TOKEN", common::READ_TOKEN)
        .output()
        .expect("run sluice reconcile");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "sluice reconcile failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_repairs_what_was_corrupted_or_deleted_and_a_second_finds_nothing() {
    let w = common::WriteSide::start("reconcile").await;
    let ada = w.send("/authors", Some(json!({"name": "Ada"}))).await["id"].as_str().expect("id").to_string();
    let mut ids = Vec::new();
    for n in 0..6 {
        let id = w.create_article(json!({"title": format!("Article {n}"), "author_id": ada, "tags": ["t"]})).await;
        w.send(&format!("/articles/{id}/publish"), Some(json!({}))).await;
        w.send(&format!("/articles/{id}/edit"), Some(json!({"title": format!("Edited {n}")}))).await;
        ids.push(id);
    }
    // The last one is erased.
    w.send(&format!("/articles/{}", ids[5]), None).await;

    let _projector = w.projector().await;
    let (_projector_pg, pg_url, read_db) = w.projector_postgres().await;
    let (pg, redis, base, prefix, projection) = (&w.pg, &w.redis, w.command.base_url(), &w.prefix, &w.projection);
    let admin = pg.connect(&read_db).await;
    let mut conn = redis.connection().await;
    let key = |id: &str| format!("sluice:{{{projection}}}:article:{id}");
    wait_until("both read models to hold every version", DEADLINE, || {
        let (admin, mut conn) = (&admin, conn.clone());
        let keys: Vec<String> = ids.iter().map(|id| key(id)).collect();
        async move {
            let mut versions = Vec::new();
            for k in &keys {
                let v: Option<i64> = redis::cmd("HGET").arg(k).arg("version").query_async(&mut conn).await.ok()?;
                versions.push(v);
            }
            let row = admin
                .query_one(
                    "select (select count(*) from cms_read.articles where version = 3),
                            (select count(*) from cms_read.erased where version = 4)",
                    &[],
                )
                .await
                .ok()?;
            let pg: (i64, i64) = (row.get(0), row.get(1));
            let want = [Some(3), Some(3), Some(3), Some(3), Some(3), Some(4)];
            (versions == want && pg == (5, 1)).then_some(())
        }
    })
    .await;
    let source = ["--source-url", base.as_str(), "--topic-prefix", prefix.as_str()];
    let redis_args: Vec<&str> =
        source.iter().copied().chain(["--store", "redis", "--projection", projection.as_str()]).collect();
    let redis_url = redis.url();
    let redis_args: Vec<&str> = redis_args.into_iter().chain(["--redis-url", redis_url.as_str()]).collect();
    let pg_args: Vec<&str> = source
        .iter()
        .copied()
        .chain(["--store", "postgres", "--projection", "cms", "--database-url", pg_url.as_str()])
        .collect();
    for args in [&redis_args, &pg_args] {
        let clean = reconcile(args);
        assert!(clean.contains("checked 7 aggregates, repaired 0, left alone 0"), "{clean}");
    }

    // By hand, in Redis: one article deleted, one taken back to an older
    // version, the erased one brought back.
    let old = w.snapshot(&ids[1]).await;
    let _: () = redis::cmd("DEL").arg(key(&ids[0])).query_async(&mut conn).await.expect("DEL");
    let mut older = old.clone();
    older["title"] = json!("Article 1");
    older["version"] = json!(2);
    let _: () = redis::cmd("HSET")
        .arg(key(&ids[1]))
        .arg("version")
        .arg(2)
        .arg("doc")
        .arg(older.to_string())
        .query_async(&mut conn)
        .await
        .expect("HSET");
    let _: () = redis::cmd("DEL").arg(key(&ids[5])).query_async(&mut conn).await.expect("DEL");
    let _: () = redis::cmd("HSET")
        .arg(key(&ids[5]))
        .arg("version")
        .arg(1)
        .arg("doc")
        .arg(older.to_string())
        .query_async(&mut conn)
        .await
        .expect("HSET");
    // In PostgreSQL: one row deleted, one taken back, the erasure marker gone.
    admin.execute("delete from cms_read.articles where id = $1", &[&ids[2]]).await.expect("delete");
    admin
        .execute("update cms_read.articles set version = 1, title = 'Article 3' where id = $1", &[&ids[3]])
        .await
        .expect("update");
    admin.execute("delete from cms_read.erased", &[]).await.expect("delete marker");

    let repaired = reconcile(&redis_args);
    for (id, line) in [(&ids[0], "missing -> 3"), (&ids[1], "version 2 -> 3"), (&ids[5], "version 1 -> 4")] {
        assert!(repaired.contains(&format!("repaired article {id}: {line}")), "{id} {line}: {repaired}");
    }
    assert!(repaired.contains("checked 7 aggregates, repaired 3, left alone 0"), "{repaired}");
    let repaired = reconcile(&pg_args);
    for (id, line) in [(&ids[2], "missing -> 3"), (&ids[3], "version 1 -> 3")] {
        assert!(repaired.contains(&format!("repaired article {id}: {line}")), "{id} {line}: {repaired}");
    }
    // A lost erasure marker of an absent row is not a divergence.
    assert!(repaired.contains("checked 7 aggregates, repaired 2, left alone 0"), "{repaired}");

    // What they hold now is the source's.
    for id in &ids[..5] {
        let doc: String = redis::cmd("HGET").arg(key(id)).arg("doc").query_async(&mut conn).await.expect("doc");
        let doc: Value = serde_json::from_str(&doc).expect("json");
        assert_eq!(doc, w.snapshot(id).await, "Redis {id}");
        let row =
            admin.query_one("select title, version from cms_read.articles where id = $1", &[id]).await.expect("row");
        assert_eq!((row.get::<_, String>(0), row.get::<_, i64>(1)), (doc["title"].as_str().expect("t").into(), 3));
    }
    let gone: Option<String> = redis::cmd("HGET").arg(key(&ids[5])).arg("doc").query_async(&mut conn).await.expect("h");
    assert_eq!(gone, None, "the erased article came back");
    let counts: i32 =
        admin.query_one("select published from cms_read.authors where id = $1", &[&ada]).await.expect("counts").get(0);
    assert_eq!(counts, 5);
    for args in [&redis_args, &pg_args] {
        let again = reconcile(args);
        assert!(again.contains("checked 7 aggregates, repaired 0, left alone 0"), "{again}");
    }
}
