//! Command bodies as the API receives them: any JSON either fails to
//! deserialise (400) or is judged by the rules (202 or 422), never a panic;
//! and whatever the rules accept fits the documented bounds and holds no NUL
//! (PostgreSQL text cannot).

use chrono::Utc;
use cms_domain::{CreateAuthor, DraftArticle, EditArticle};
use proptest::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

/// Strings likely to meet the rules' edges: empty, blank, NUL, long, unicode.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("  \t ".to_string()),
        Just("a\0b".to_string()),
        "[a-z0-9-]{1,130}",
        "\\PC{0,250}",
        any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| proptest::collection::vec(inner, 0..4).prop_map(Value::from))
}

fn draft_body() -> impl Strategy<Value = Value> {
    (
        text(),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::collection::vec(text(), 0..24),
        json_value(),
    )
        .prop_map(|(title, body, slug, tags, extra)| {
            let mut v = json!({"title": title, "tags": tags});
            if let Some(b) = body {
                v["body"] = b.into();
            }
            if let Some(s) = slug {
                v["slug"] = s.into();
            }
            if extra.is_string() {
                v["unknown"] = extra; // an unknown field: refused by deny_unknown_fields
            }
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn drafts_are_judged_and_what_passes_fits_the_document(body in draft_body()) {
        let Ok(draft) = serde_json::from_value::<DraftArticle>(body.clone()) else { return Ok(()) };
        if let Ok((article, _)) = draft.execute(Uuid::nil(), Utc::now()) {
            prop_assert!(!article.title.is_empty() && article.title.chars().count() <= 200, "{body}");
            prop_assert!(!article.title.contains('\0') && !article.body.contains('\0'), "{body}");
            prop_assert!(cms_domain::article::is_valid_slug(&article.slug), "{body}");
            prop_assert!(article.tags.len() <= 20 && article.tags.iter().all(|t| cms_domain::article::is_valid_slug(t)), "{body}");
        }
    }

    #[test]
    fn any_json_is_refused_or_judged(body in json_value()) {
        if let Ok(edit) = serde_json::from_value::<EditArticle>(body.clone()) {
            let _ = format!("{edit:?}");
        }
        let author = serde_json::from_value::<CreateAuthor>(body).ok();
        if let Some(Ok((a, _))) = author.map(|c| c.execute(Uuid::nil(), Utc::now())) {
            prop_assert!(!a.name.is_empty() && !a.name.contains('\0'));
        }
    }
}
