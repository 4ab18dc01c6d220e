//! The command API's database role owns the write schema and nothing else.

mod common;

use cms_domain::DraftArticle;
use cms_write::{CommandContext, CommandService};
use sluice_outbox::OutboxTable;
use sluice_testkit::TestPostgres;
use std::sync::Arc;

#[tokio::test]
async fn the_command_role_owns_only_the_write_schema_and_can_run_commands() {
    let pg = TestPostgres::start();
    let admin_url = pg.create_database().await;
    let db = admin_url.rsplit('/').next().expect("db").to_string();
    let admin = pg.connect(&db).await;
    let roles =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/sql/roles.sql")).expect("roles.sql");
    admin.batch_execute(&roles).await.expect("roles.sql runs");
    admin.batch_execute(&roles).await.expect("roles.sql is idempotent");

    let command_url = format!("postgres://sluice_command@127.0.0.1:{}/{db}", pg.port);
    let pool = cms_write::connect_pool(&command_url, 4).expect("pool");
    let outbox = OutboxTable::parse("cms.outbox").expect("name");
    let mut client = pool.get().await.expect("connect as sluice_command");
    cms_write::migrations::migrate(&mut client, &outbox).await.expect("migrations run as sluice_command");

    let foreign: i64 = admin
        .query_one("select count(*) from pg_tables where tableowner = 'sluice_command' and schemaname <> 'cms'", &[])
        .await
        .expect("ownership")
        .get(0);
    assert_eq!(foreign, 0, "sluice_command owns tables outside cms");
    let owned: i64 = admin
        .query_one("select count(*) from pg_tables where tableowner = 'sluice_command' and schemaname = 'cms'", &[])
        .await
        .expect("ownership")
        .get(0);
    assert!(owned >= 5, "the write tables are in cms, owned by sluice_command ({owned})");
    let refused =
        client.batch_execute("create table public.intruder (x int)").await.expect_err("public is not writable");
    assert_eq!(refused.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE));
    let refused = client.batch_execute("create schema other").await.expect_err("no new schemas");
    assert_eq!(refused.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE));
    drop(client);

    // And the command API works with it.
    let broker = sluice_testkit::TestBroker::start();
    let registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
    let schemas =
        sluice_avro::SchemaSet::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas").as_ref()).expect("schemas");
    let register = |a: &str| {
        let text = schemas.latest(a).expect("schema").text.clone();
        let writer = sluice_testkit::registry_writer(&registry);
        let subject = format!("roles.{a}.state-value");
        async move { Arc::new(sluice_avro::RegistryEncoder::register(&writer, &subject, &text).await.expect("register")) }
    };
    let encoders = cms_write::Encoders { article: register("article").await, author: register("author").await };
    let service = CommandService::new(pool, outbox, encoders, "http://q".into(), std::time::Duration::from_secs(60));
    let cmd = DraftArticle {
        title: "Least privilege".into(),
        body: String::new(),
        slug: None,
        author_id: None,
        tags: vec![],
    };
    let answer = service.draft_article(&CommandContext::default(), cmd).await.expect("command as sluice_command");
    assert_eq!(answer.status, 202);
}
