//! Command bodies as the API receives them (the first byte picks the
//! command, the rest is its JSON body): anything either fails to
//! deserialise (400) or is judged by the rules (202, or 422 with a reason
//! naming a field of the command or the body as a whole),
//! never a panic; whatever the rules accept fits the documented bounds and
//! encodes with the newest Avro schema (accepted, then unwritable, would be
//! a 500 after a 202's checks).
#![no_main]

use apache_avro::{Schema, to_avro_datum, to_value};
use chrono::{DateTime, Utc};
use cms_domain::article::is_valid_slug;
use cms_domain::{
    Article, ArticleCommand, Author, AuthorCommand, CreateAuthor, DraftArticle, EditArticle, Rejection, RenameAuthor,
    ScheduleArticle, UpdateAuthorBio,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use sluice_avro::SchemaSet;
use sluice_core::text::is_blank;
use std::sync::LazyLock;
use uuid::Uuid;

struct Fixture {
    article_schema: Schema,
    author_schema: Schema,
    article: Article,
    author: Author,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let set = SchemaSet::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas").as_ref()).expect("schemas/");
    let latest = |a: &str| set.latest(a).expect("a schema").schema.clone();
    let draft = DraftArticle { title: "A title".into(), body: String::new(), slug: None, author_id: None, tags: vec![] };
    let author = CreateAuthor { name: "Ada".into(), bio: None };
    Fixture {
        article_schema: latest("article"),
        author_schema: latest("author"),
        article: draft.execute(Uuid::nil(), now()).expect("a valid draft").0,
        author: author.execute(Uuid::nil(), now()).expect("a valid author").0,
    }
});

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("a time")
}

fn encodes<T: Serialize>(item: &T, schema: &Schema) {
    let value = to_value(item).expect("to an Avro value");
    let value = value.resolve(schema).expect("fits the newest schema");
    to_avro_datum(schema, value).expect("encodes");
}

fn check_article(result: Result<(Article, cms_domain::ArticleEvent), Rejection>) {
    match result {
        Ok((a, _)) => {
            assert!(!is_blank(&a.title) && a.title.chars().count() <= 200, "{a:?}");
            assert!(!a.title.contains('\0') && !a.body.contains('\0'), "{a:?}");
            assert!(is_valid_slug(&a.slug), "{a:?}");
            assert!(a.tags.len() <= 20 && a.tags.iter().all(|t| is_valid_slug(t)), "{a:?}");
            encodes(&a, &FIXTURE.article_schema);
        }
        Err(rejection) => check_rejection(&rejection),
    }
}

fn check_author(result: Result<(Author, cms_domain::AuthorEvent), Rejection>) {
    match result {
        Ok((a, _)) => {
            assert!(!is_blank(&a.name) && a.name.chars().count() <= 100 && !a.name.contains('\0'), "{a:?}");
            assert!(a.bio.as_deref().is_none_or(|b| b.chars().count() <= 2000 && !b.contains('\0')), "{a:?}");
            encodes(&a, &FIXTURE.author_schema);
        }
        Err(rejection) => check_rejection(&rejection),
    }
}

/// A 422 says what was wrong and where: a field the command has, or the body
/// as a whole (an empty field).
fn check_rejection(rejection: &Rejection) {
    const FIELDS: [&str; 10] = ["", "title", "body", "slug", "tags", "author_id", "publish_at", "status", "name", "bio"];
    assert!(!rejection.0.is_empty(), "a rejection without reasons");
    for reason in &rejection.0 {
        assert!(!reason.message.is_empty(), "{rejection:?}");
        assert!(FIELDS.contains(&reason.field.as_str()), "{rejection:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    let f = &*FIXTURE;
    match kind % 6 {
        0 => {
            if let Ok(c) = serde_json::from_slice::<DraftArticle>(body) {
                check_article(c.execute(Uuid::nil(), now()));
            }
        }
        1 => {
            if let Ok(c) = serde_json::from_slice::<EditArticle>(body) {
                check_article(f.article.handle(ArticleCommand::Edit(c), now()));
            }
        }
        2 => {
            if let Ok(c) = serde_json::from_slice::<ScheduleArticle>(body) {
                check_article(f.article.handle(ArticleCommand::Schedule(c), now()));
            }
        }
        3 => {
            if let Ok(c) = serde_json::from_slice::<CreateAuthor>(body) {
                check_author(c.execute(Uuid::nil(), now()));
            }
        }
        4 => {
            if let Ok(c) = serde_json::from_slice::<RenameAuthor>(body) {
                check_author(f.author.handle(AuthorCommand::Rename(c), now()));
            }
        }
        _ => {
            if let Ok(c) = serde_json::from_slice::<UpdateAuthorBio>(body) {
                check_author(f.author.handle(AuthorCommand::UpdateBio(c), now()));
            }
        }
    }
});
