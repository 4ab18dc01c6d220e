//! The statements of a session and of a batch, for one schema. Each batch
//! statement takes whole columns (`unnest` of arrays), so a batch costs the
//! same few round trips whatever its size.

use crate::rows::{ARTICLE, AUTHOR};
use crate::schema::SchemaName;

/// The CMS read model's statements; those of the marker and positions are
/// the ledger's (`ledger.rs`).
pub struct Statements {
    /// Per aggregate, the higher of its row's version and its erasure's,
    /// and an article's author before the batch.
    pub stored_versions: String,
    pub upsert_articles: String,
    pub upsert_authors: String,
    pub upsert_documents: String,
    pub erase: String,
    pub refresh_author_names: String,
    pub recount_authors: String,
}

impl Statements {
    pub fn new(schema: &SchemaName) -> Self {
        let articles = schema.table("articles");
        let authors = schema.table("authors");
        let documents = schema.table("documents");
        let erased = schema.table("erased");
        // An incoming change must be newer than an erasure of the same aggregate.
        let not_erased = |aggregate_type: &str| {
            format!(
                "not exists (select from {erased} e where e.aggregate_type = {aggregate_type} and e.id = i.id \
                 and e.version >= i.version)"
            )
        };
        Self {
            stored_versions: format!(
                "select k.aggregate_type, k.id, greatest(a.version, au.version, d.version, e.version), a.author_id
                   from unnest($1::text[], $2::text[]) as k(aggregate_type, id)
                   left join {articles} a on k.aggregate_type = '{ARTICLE}' and a.id = k.id
                   left join {authors} au on k.aggregate_type = '{AUTHOR}' and au.id = k.id
                   left join {documents} d on d.aggregate_type = k.aggregate_type and d.id = k.id
                   left join {erased} e on e.aggregate_type = k.aggregate_type and e.id = k.id"
            ),
            upsert_articles: format!(
                "insert into {articles} as t (id, version, slug, title, body, author_id, status, tags, created_at,
                                              updated_at, published_at, scheduled_at)
                 select i.id, i.version, i.slug, i.title, i.body, i.author_id, i.status,
                        array(select jsonb_array_elements_text(i.tags)), i.created_at, i.updated_at, i.published_at,
                        i.scheduled_at
                   from unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                               $8::jsonb[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[],
                               $12::timestamptz[])
                        as i(id, version, slug, title, body, author_id, status, tags, created_at, updated_at,
                             published_at, scheduled_at)
                  where {not_erased}
                  order by i.id
                 on conflict (id) do update
                    set version = excluded.version, slug = excluded.slug, title = excluded.title,
                        body = excluded.body, author_id = excluded.author_id, status = excluded.status,
                        tags = excluded.tags, created_at = excluded.created_at, updated_at = excluded.updated_at,
                        published_at = excluded.published_at, scheduled_at = excluded.scheduled_at
                  where t.version < excluded.version",
                not_erased = not_erased(&format!("'{ARTICLE}'")),
            ),
            upsert_authors: format!(
                "insert into {authors} as t (id, version, name, bio, created_at, updated_at)
                 select i.id, i.version, i.name, i.bio, i.created_at, i.updated_at
                   from unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[],
                               $6::timestamptz[])
                        as i(id, version, name, bio, created_at, updated_at)
                  where {not_erased}
                  order by i.id
                 on conflict (id) do update
                    set version = excluded.version, name = excluded.name, bio = excluded.bio,
                        created_at = excluded.created_at, updated_at = excluded.updated_at
                  where t.version < excluded.version",
                not_erased = not_erased(&format!("'{AUTHOR}'")),
            ),
            upsert_documents: format!(
                "insert into {documents} as t (aggregate_type, id, version, doc)
                 select i.aggregate_type, i.id, i.version, i.doc
                   from unnest($1::text[], $2::text[], $3::bigint[], $4::jsonb[]) as i(aggregate_type, id, version, doc)
                  where {not_erased}
                  order by i.aggregate_type, i.id
                 on conflict (aggregate_type, id) do update set version = excluded.version, doc = excluded.doc
                  where t.version < excluded.version",
                not_erased = not_erased("i.aggregate_type"),
            ),
            // One statement: the markers, and the rows they erase wherever they are.
            erase: format!(
                "with i(aggregate_type, id, version) as (select * from unnest($1::text[], $2::text[], $3::bigint[])),
                 marked as (
                     insert into {erased} as t (aggregate_type, id, version)
                     select aggregate_type, id, version from i order by aggregate_type, id
                     on conflict (aggregate_type, id) do update set version = excluded.version, erased_at = now()
                      where t.version < excluded.version),
                 gone_articles as (
                     delete from {articles} t using i
                      where i.aggregate_type = '{ARTICLE}' and t.id = i.id and t.version < i.version),
                 gone_authors as (
                     delete from {authors} t using i
                      where i.aggregate_type = '{AUTHOR}' and t.id = i.id and t.version < i.version),
                 gone_documents as (
                     delete from {documents} t using i
                      where t.aggregate_type = i.aggregate_type and t.id = i.id and t.version < i.version)
                 -- Data-modifying parts run whether or not anything reads them.
                 select 1"
            ),
            // The articles written in this batch and every article of the
            // authors written or erased in it: a rename fans out, an author
            // that arrives after its articles fills them in, an erased one
            // leaves no copy of its name behind.
            refresh_author_names: format!(
                "update {articles} a
                    set author_name = (select name from {authors} au where au.id = a.author_id)
                  where (a.id = any($1) or a.author_id = any($2))
                    and a.author_name is distinct from (select name from {authors} au where au.id = a.author_id)"
            ),
            recount_authors: format!(
                "update {authors} au
                    set drafts = c.drafts, scheduled = c.scheduled, published = c.published, archived = c.archived
                   from (select k.id,
                                count(a.id) filter (where a.status = 'DRAFT')::integer as drafts,
                                count(a.id) filter (where a.status = 'SCHEDULED')::integer as scheduled,
                                count(a.id) filter (where a.status = 'PUBLISHED')::integer as published,
                                count(a.id) filter (where a.status = 'ARCHIVED')::integer as archived
                           from unnest($1::text[]) as k(id)
                           left join {articles} a on a.author_id = k.id
                          group by k.id) c
                  where au.id = c.id
                    and (au.drafts, au.scheduled, au.published, au.archived)
                        is distinct from (c.drafts, c.scheduled, c.published, c.archived)"
            ),
        }
    }
}
