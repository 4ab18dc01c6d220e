//! The CMS rules, command by command.

use chrono::{Duration, Utc};
use cms_domain::*;
use uuid::Uuid;

fn draft(title: &str) -> Article {
    DraftArticle { title: title.into(), body: "b".into(), slug: None, author_id: None, tags: vec![] }
        .execute(Uuid::nil(), Utc::now())
        .expect("valid draft")
        .0
}

fn reasons(r: Result<(Article, ArticleEvent), Rejection>) -> Vec<String> {
    r.expect_err("rejected").0.into_iter().map(|r| format!("{}: {}", r.field, r.message)).collect()
}

#[test]
fn a_draft_starts_at_version_one_with_a_slug_and_clean_tags() {
    let (a, e) = DraftArticle {
        title: "  Hello, World!  ".into(),
        body: "b".into(),
        slug: None,
        author_id: None,
        tags: vec!["Rust".into(), "rust".into(), " cqrs ".into()],
    }
    .execute(Uuid::nil(), Utc::now())
    .expect("valid");
    assert_eq!(
        (a.version, a.status, a.slug.as_str(), a.title.as_str()),
        (1, ArticleStatus::Draft, "hello-world", "Hello, World!")
    );
    assert_eq!(a.tags, ["rust", "cqrs"]);
    assert_eq!(e.name(), "ArticleDrafted");
}

#[test]
fn every_reason_is_reported_at_once() {
    let cmd = DraftArticle {
        title: " ".into(),
        body: String::new(),
        slug: Some("Bad Slug".into()),
        author_id: None,
        tags: vec!["no spaces".into()],
    };
    let fields: Vec<String> =
        cmd.execute(Uuid::nil(), Utc::now()).expect_err("invalid").0.into_iter().map(|r| r.field).collect();
    assert_eq!(fields, ["title", "slug", "tags"]);
}

#[test]
fn the_lifecycle_moves_version_by_version() {
    let now = Utc::now();
    let a = draft("t");
    let (a, e) = a
        .handle(ArticleCommand::Schedule(ScheduleArticle { publish_at: now + Duration::hours(1) }), now)
        .expect("schedule");
    assert_eq!((a.version, a.status, e), (2, ArticleStatus::Scheduled, ArticleEvent::Scheduled));
    assert!(a.scheduled_at.is_some());
    let (a, e) = a.handle(ArticleCommand::Publish, now).expect("publish");
    assert_eq!((a.version, a.status, e, a.scheduled_at), (3, ArticleStatus::Published, ArticleEvent::Published, None));
    assert!(a.published_at.is_some());
    let (a, _) = a.handle(ArticleCommand::Unpublish, now).expect("unpublish");
    assert_eq!((a.version, a.status), (4, ArticleStatus::Draft));
    let (a, _) = a.handle(ArticleCommand::Archive, now).expect("archive");
    assert_eq!((a.version, a.status), (5, ArticleStatus::Archived));
    let (a, e) = a.handle(ArticleCommand::Restore, now).expect("restore");
    assert_eq!((a.version, a.status, e.name()), (6, ArticleStatus::Draft, "ArticleRestored"));
    let edit = EditArticle { title: Some("New".into()), tags: Some(vec!["x".into()]), ..Default::default() };
    let (a, e) = a.handle(ArticleCommand::Edit(edit), now).expect("edit");
    assert_eq!((a.version, a.title.as_str(), e.name()), (7, "New", "ArticleEdited"));
}

#[test]
fn invalid_transitions_say_why() {
    let now = Utc::now();
    let archived = draft("t").handle(ArticleCommand::Archive, now).expect("archive").0;
    assert_eq!(
        reasons(archived.handle(ArticleCommand::Publish, now)),
        ["status: an archived article cannot be published; restore it first"]
    );
    assert!(
        archived
            .handle(ArticleCommand::Edit(EditArticle { body: Some("x".into()), ..Default::default() }), now)
            .is_err()
    );
    assert!(archived.handle(ArticleCommand::Archive, now).is_err());
    let published = draft("t").handle(ArticleCommand::Publish, now).expect("publish").0;
    assert!(published.handle(ArticleCommand::Publish, now).is_err());
    assert!(
        published
            .handle(ArticleCommand::Schedule(ScheduleArticle { publish_at: now + Duration::hours(1) }), now)
            .is_err()
    );
    assert!(draft("t").handle(ArticleCommand::Unpublish, now).is_err());
    assert!(draft("t").handle(ArticleCommand::Restore, now).is_err());
    assert_eq!(
        reasons(
            draft("t")
                .handle(ArticleCommand::Schedule(ScheduleArticle { publish_at: now - Duration::seconds(1) }), now)
        ),
        ["publish_at: must be in the future"]
    );
    assert!(draft("t").handle(ArticleCommand::Edit(EditArticle::default()), now).is_err());
}

#[test]
fn authors_are_created_renamed_and_described() {
    let now = Utc::now();
    let (a, e) = CreateAuthor { name: " Ada ".into(), bio: None }.execute(Uuid::nil(), now).expect("create");
    assert_eq!((a.name.as_str(), a.version, e.name()), ("Ada", 1, "AuthorCreated"));
    let (a, e) = a.handle(AuthorCommand::Rename(RenameAuthor { name: "Ada L.".into() }), now).expect("rename");
    assert_eq!((a.name.as_str(), a.version, e.name()), ("Ada L.", 2, "AuthorRenamed"));
    assert!(a.handle(AuthorCommand::Rename(RenameAuthor { name: "Ada L.".into() }), now).is_err());
    assert!(a.handle(AuthorCommand::Rename(RenameAuthor { name: "".into() }), now).is_err());
    let (a, e) =
        a.handle(AuthorCommand::UpdateBio(UpdateAuthorBio { bio: Some("Mathematician".into()) }), now).expect("bio");
    assert_eq!((a.bio.as_deref(), a.version, e.name()), (Some("Mathematician"), 3, "AuthorBioUpdated"));
    assert!(CreateAuthor { name: "x".repeat(101), bio: None }.execute(Uuid::nil(), now).is_err());
}

fn roundtrip<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(path: &str, value: &T) {
    let schema = apache_avro::Schema::parse_str(&std::fs::read_to_string(path).expect("schema")).expect("parse");
    let avro = apache_avro::to_value(value).expect("to_value").resolve(&schema).expect("resolves");
    let bytes = apache_avro::to_avro_datum(&schema, avro).expect("encode");
    let back = apache_avro::from_avro_datum(&schema, &mut bytes.as_slice(), None).expect("decode");
    assert_eq!(&apache_avro::from_value::<T>(&back).expect("from_value"), value);
}

#[test]
fn snapshots_fit_the_latest_avro_schemas() {
    let now = Utc::now();
    let a = draft("t")
        .handle(ArticleCommand::Schedule(ScheduleArticle { publish_at: now + Duration::hours(1) }), now)
        .expect("schedule")
        .0;
    roundtrip(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/article/v3.avsc"), &a);
    let author =
        CreateAuthor { name: "Ada".into(), bio: Some("b".into()) }.execute(Uuid::nil(), now).expect("create").0;
    roundtrip(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/author/v2.avsc"), &author);
}
