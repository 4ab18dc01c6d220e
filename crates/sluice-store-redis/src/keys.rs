//! Key names, shared with the query side. Every key of a projection starts
//! with `sluice:{<projection>}:`; the hash tag keeps them in one slot of a
//! cluster, so one script can touch them all.

fn prefix(projection: &str) -> String {
    format!("sluice:{{{projection}}}:")
}

/// Hash with `version` and `doc` (the snapshot as JSON); for an erased
/// aggregate, `version` and `erased` only (no `doc`). An article's hash also
/// holds `author_name` (its author's current name, when the author is
/// known); an author's holds `name`.
pub fn document(projection: &str, aggregate_type: &str, id: &str) -> String {
    format!("{}{aggregate_type}:{id}", prefix(projection))
}

/// Set of the ids present in the read model.
pub fn ids(projection: &str, aggregate_type: &str) -> String {
    format!("{}{aggregate_type}:ids", prefix(projection))
}

/// Present while the projection's data is in the store: the key format
/// (`KEY_FORMAT`) while it is written, then `sealed` and `dropped` once a
/// blue/green rebuild retires it (see `generation.rs`).
pub fn marker(projection: &str) -> String {
    format!("{}initialized", prefix(projection))
}

/// The marker a sealed generation had before it was sealed (restored if
/// the rebuild gives up).
pub fn sealed_from(projection: &str) -> String {
    format!("{}sealed_from", prefix(projection))
}

/// The generation of `alias` a rebuild swapped out and is dropping; a rebuild
/// interrupted there finishes it at its next run.
pub fn retiring(alias: &str) -> String {
    format!("sluice:retiring:{alias}")
}

/// The lease of the rebuild of `alias` that is running (one at a time).
pub fn rebuild_lease(alias: &str) -> String {
    format!("sluice:rebuilding:{alias}")
}

/// The serving pointer of `alias`: the name of the generation (a projection)
/// that serves it. Absent: the projection named `alias` itself serves.
pub fn serving(alias: &str) -> String {
    format!("sluice:serving:{alias}")
}

/// The pattern `SCAN` matches every key of `projection` with.
pub fn pattern(projection: &str) -> String {
    let escaped: String = projection
        .chars()
        .flat_map(|c| if matches!(c, '*' | '?' | '[' | ']' | '\\') { vec!['\\', c] } else { vec![c] })
        .collect();
    format!("sluice:{{{escaped}}}:*")
}

/// Hash partition -> `next_offset:applied_at_ms` for one topic.
pub fn positions(projection: &str, topic: &str) -> String {
    format!("{}positions:{topic}", prefix(projection))
}

/// The CMS views (see `views.lua`, which builds the same names).
pub mod views {
    use super::prefix;

    /// Set of the ids of the articles whose current slug is (or, during a
    /// hand-over between two articles, was) `slug`: read each and keep the
    /// one whose `doc.slug` is `slug`.
    pub fn article_by_slug(projection: &str, slug: &str) -> String {
        format!("{}view:article:slug:{slug}", prefix(projection))
    }

    /// Sorted set of published article ids, scored by `published_at`
    /// (microseconds): newest first with ZREVRANGE.
    pub fn published(projection: &str) -> String {
        format!("{}view:articles:published", prefix(projection))
    }

    /// Published articles carrying `tag`, scored like [`published`].
    pub fn published_by_tag(projection: &str, tag: &str) -> String {
        format!("{}view:articles:published:tag:{tag}", prefix(projection))
    }

    /// Published articles of `author_id`, scored like [`published`].
    pub fn published_by_author(projection: &str, author_id: &str) -> String {
        format!("{}view:articles:published:author:{author_id}", prefix(projection))
    }

    /// Set of the ids of every article of `author_id`, whatever its status.
    pub fn author_articles(projection: &str, author_id: &str) -> String {
        format!("{}view:author:{author_id}:articles", prefix(projection))
    }

    /// Hash status (`DRAFT`, `SCHEDULED`, `PUBLISHED`, `ARCHIVED`) -> number
    /// of the author's articles in it.
    pub fn author_counts(projection: &str, author_id: &str) -> String {
        format!("{}view:author:{author_id}:counts", prefix(projection))
    }
}
