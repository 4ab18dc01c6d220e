//! The query side's reads of the CMS views (`views.lua` writes them): lists
//! of published articles with a cursor, articles by slug, author pages. Each
//! read takes the generation the serving pointer names and reads it in one
//! `MULTI` with its marker, like [`generation::read_document`].

use crate::generation::{self, DROPPED};
use crate::keys::{self, views};
use anyhow::Context;
use redis::aio::ConnectionLike;
use std::collections::HashMap;

/// Which published articles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    All,
    Tag(String),
    Author(String),
}

/// Where a page of a list starts: after the article at (`published_at` in
/// microseconds, id), newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub published_at: i64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.published_at, self.id)
    }

    pub fn decode(value: &str) -> Option<Self> {
        let (at, id) = value.split_once('.')?;
        Some(Self { published_at: at.parse().ok()?, id: id.to_string() }).filter(|c| !c.id.is_empty())
    }
}

/// One article of a list: its snapshot and its author's name.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub id: String,
    pub published_at: i64,
    pub doc: String,
    pub author_name: Option<String>,
}

/// Same-score members fetched beyond a page, so that a cursor in the middle
/// of articles published in the same microsecond still finds its place.
const TIE_ROOM: usize = 64;
const READ_ATTEMPTS: usize = 5;

/// A page of published articles, newest first, after `after`.
pub async fn published(
    conn: &mut impl ConnectionLike,
    alias: &str,
    which: &Published,
    after: Option<&Cursor>,
    limit: usize,
) -> anyhow::Result<Option<Vec<Listed>>> {
    for _ in 0..READ_ATTEMPTS {
        let g = generation::serving(conn, alias).await?;
        let key = match which {
            Published::All => views::published(&g),
            Published::Tag(tag) => views::published_by_tag(&g, tag),
            Published::Author(author) => views::published_by_author(&g, author),
        };
        let max = after.map_or("+inf".to_string(), |c| c.published_at.to_string());
        let (marker, flat): (Option<String>, Vec<(String, f64)>) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(keys::marker(&g))
            .cmd("ZREVRANGEBYSCORE")
            .arg(&key)
            .arg(&max)
            .arg("-inf")
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(limit + TIE_ROOM)
            .query_async(conn)
            .await
            .context("read a list")?;
        match marker.as_deref() {
            None => return Ok(None),
            Some(DROPPED) => continue,
            Some(_) => {}
        }
        // Newest first; among equal scores ZREVRANGEBYSCORE goes down by id.
        let ids: Vec<(String, i64)> = flat
            .into_iter()
            .map(|(id, score)| (id, score as i64))
            .filter(|(id, at)| after.is_none_or(|c| *at < c.published_at || id < &c.id))
            .take(limit)
            .collect();
        match documents(conn, &g, &ids).await? {
            Some(listed) => return Ok(Some(listed)),
            None => continue,
        }
    }
    anyhow::bail!("the serving pointer of {alias} kept moving while reading")
}

/// The articles of `ids` from generation `g`; `None` if it was dropped
/// meanwhile. Articles gone since the list was read are left out.
async fn documents(
    conn: &mut impl ConnectionLike,
    g: &str,
    ids: &[(String, i64)],
) -> anyhow::Result<Option<Vec<Listed>>> {
    let mut pipe = redis::pipe();
    pipe.atomic().cmd("GET").arg(keys::marker(g));
    for (id, _) in ids {
        pipe.cmd("HMGET").arg(keys::document(g, "article", id)).arg("doc").arg("author_name");
    }
    let mut answers: Vec<redis::Value> = pipe.query_async(conn).await.context("read the listed articles")?;
    if answers.is_empty() {
        anyhow::bail!("empty answer");
    }
    let marker: Option<String> = redis::from_redis_value(answers.remove(0)).context("marker")?;
    if marker.as_deref() == Some(DROPPED) || marker.is_none() {
        return Ok(None);
    }
    let mut listed = Vec::new();
    for ((id, published_at), answer) in ids.iter().zip(answers) {
        let (doc, author_name): (Option<String>, Option<String>) =
            redis::from_redis_value(answer).context("an article of the list")?;
        if let Some(doc) = doc {
            listed.push(Listed { id: id.clone(), published_at: *published_at, doc, author_name });
        }
    }
    Ok(Some(listed))
}

/// The ids of the articles whose current slug is `slug` (usually one; two
/// while a slug moves between articles whose records arrive in any order).
pub async fn article_ids_by_slug(
    conn: &mut impl ConnectionLike,
    alias: &str,
    slug: &str,
) -> anyhow::Result<Vec<String>> {
    let g = generation::serving(conn, alias).await?;
    let mut ids: Vec<String> =
        redis::cmd("SMEMBERS").arg(views::article_by_slug(&g, slug)).query_async(conn).await.context("read a slug")?;
    ids.sort();
    Ok(ids)
}

/// An author's article counts by status.
pub async fn author_counts(
    conn: &mut impl ConnectionLike,
    alias: &str,
    author: &str,
) -> anyhow::Result<HashMap<String, i64>> {
    let g = generation::serving(conn, alias).await?;
    let counts: HashMap<String, i64> =
        redis::cmd("HGETALL").arg(views::author_counts(&g, author)).query_async(conn).await.context("read counts")?;
    Ok(counts)
}

/// What a read model holds of one aggregate, for a comparison with the
/// source of truth.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub version: Option<i64>,
    /// Its snapshot (JSON); `None` when absent or erased.
    pub doc: Option<String>,
}

/// What the generation serving `alias` holds of each of `ids`.
pub async fn stored(
    conn: &mut impl ConnectionLike,
    alias: &str,
    aggregate_type: &str,
    ids: &[String],
) -> anyhow::Result<Vec<Stored>> {
    let g = generation::serving(conn, alias).await?;
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("HMGET").arg(keys::document(&g, aggregate_type, id)).arg("version").arg("doc");
    }
    let answers: Vec<(Option<i64>, Option<String>)> = pipe.query_async(conn).await.context("read stored versions")?;
    Ok(answers.into_iter().map(|(version, doc)| Stored { version, doc }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor { published_at: 1_700_000_000_000_123, id: "a.b-c".into() };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("x.y"), None);
        assert_eq!(Cursor::decode("12."), None);
        assert_eq!(Cursor::decode("12"), None);
    }
}
