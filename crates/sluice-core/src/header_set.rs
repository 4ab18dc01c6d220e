//! Which `sluice.*` headers a relayed record carries: every one by default;
//! operators may send fewer, per aggregate type (Debezium's
//! `table.fields.additional.placement` is the precedent). Consumers stay
//! correct without them: the version is also in the snapshot, a tombstone
//! (which has none) always carries `sluice.aggregate_version`, and the
//! aggregate type is the topic's (`<prefix>.<type>.state`) when its name is
//! lower case without dots; other types need `sluice.aggregate_type`.

use crate::headers::{AGGREGATE_TYPE, AGGREGATE_VERSION, COMMITTED_AT, EVENT_ID, EVENT_TYPE, SOURCE_LSN, TRACEPARENT};
use std::collections::BTreeMap;

/// Every header a relayed record can carry, in the order it is sent.
pub const RECORD_HEADERS: [&str; 7] =
    [EVENT_ID, EVENT_TYPE, AGGREGATE_TYPE, AGGREGATE_VERSION, SOURCE_LSN, COMMITTED_AT, TRACEPARENT];

/// A subset of [`RECORD_HEADERS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderSet(u8);

impl HeaderSet {
    pub const ALL: HeaderSet = HeaderSet((1 << RECORD_HEADERS.len()) - 1);
    pub const NONE: HeaderSet = HeaderSet(0);

    /// `all`, `none`, or names of [`RECORD_HEADERS`] joined by `+` or `,`.
    pub fn parse(text: &str) -> Result<HeaderSet, String> {
        match text.trim() {
            "all" | "" => return Ok(HeaderSet::ALL),
            "none" => return Ok(HeaderSet::NONE),
            _ => {}
        }
        let mut set = HeaderSet::NONE;
        for name in text.split(['+', ',']).map(str::trim) {
            let bit = RECORD_HEADERS.iter().position(|h| *h == name).ok_or_else(|| {
                format!("unknown header `{name}`: use all, none or some of {}", RECORD_HEADERS.join(", "))
            })?;
            set.0 |= 1 << bit;
        }
        Ok(set)
    }

    pub fn contains(self, name: &str) -> bool {
        RECORD_HEADERS.iter().position(|h| *h == name).is_some_and(|bit| self.0 & (1 << bit) != 0)
    }

    /// The names it holds, in sending order.
    pub fn names(self) -> Vec<&'static str> {
        RECORD_HEADERS.iter().copied().filter(|h| self.contains(h)).collect()
    }
}

/// The headers of each aggregate type's topics: `SLUICE_HEADERS` for all,
/// `SLUICE_TOPIC_HEADERS` (`article=none;author=sluice.event_id+...`) for some.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSelection {
    default: HeaderSet,
    by_aggregate: BTreeMap<String, HeaderSet>,
}

impl Default for HeaderSelection {
    fn default() -> Self {
        HeaderSelection { default: HeaderSet::ALL, by_aggregate: BTreeMap::new() }
    }
}

impl HeaderSelection {
    pub fn parse(headers: &str, topic_headers: &str) -> Result<HeaderSelection, String> {
        let default = HeaderSet::parse(headers).map_err(|e| format!("SLUICE_HEADERS: {e}"))?;
        let mut by_aggregate = BTreeMap::new();
        for entry in topic_headers.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (aggregate, set) = entry
                .split_once('=')
                .map(|(a, s)| (a.trim().to_ascii_lowercase(), s.trim()))
                .filter(|(a, s)| !a.is_empty() && !s.is_empty())
                .ok_or_else(|| format!("SLUICE_TOPIC_HEADERS: `{entry}` is not aggregate=headers"))?;
            let set = HeaderSet::parse(set).map_err(|e| format!("SLUICE_TOPIC_HEADERS, {aggregate}: {e}"))?;
            if by_aggregate.insert(aggregate.clone(), set).is_some() {
                return Err(format!("SLUICE_TOPIC_HEADERS names {aggregate} twice"));
            }
        }
        Ok(HeaderSelection { default, by_aggregate })
    }

    /// The headers of `aggregate_type`'s topics.
    pub fn for_aggregate(&self, aggregate_type: &str) -> HeaderSet {
        self.by_aggregate.get(&aggregate_type.to_ascii_lowercase()).copied().unwrap_or(self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_parse_from_names_and_words() {
        assert_eq!(HeaderSet::parse("all"), Ok(HeaderSet::ALL));
        assert_eq!(HeaderSet::parse("none").map(HeaderSet::names), Ok(vec![]));
        let some = HeaderSet::parse("sluice.aggregate_version+sluice.event_id").expect("two names");
        assert_eq!(some.names(), [EVENT_ID, AGGREGATE_VERSION]);
        assert!(some.contains(AGGREGATE_VERSION) && !some.contains(TRACEPARENT));
        assert_eq!(HeaderSet::ALL.names(), RECORD_HEADERS);
        let err = HeaderSet::parse("sluice.event_id,sluice.bogus").expect_err("unknown name");
        assert!(err.contains("sluice.bogus") && err.contains("sluice.source_lsn"), "{err}");
    }

    #[test]
    fn aggregates_override_the_default() {
        let selection = HeaderSelection::parse("sluice.event_id", "Article=none; author = all").expect("valid");
        assert_eq!(selection.for_aggregate("article"), HeaderSet::NONE);
        assert_eq!(selection.for_aggregate("author"), HeaderSet::ALL);
        assert_eq!(selection.for_aggregate("tag").names(), [EVENT_ID]);
        assert_eq!(HeaderSelection::parse("", "").expect("defaults"), HeaderSelection::default());
        for bad in ["article", "article=", "=none", "article=none;Article=all"] {
            assert!(HeaderSelection::parse("all", bad).is_err_and(|e| e.contains("SLUICE_TOPIC_HEADERS")), "{bad}");
        }
        assert!(HeaderSelection::parse("x", "").is_err_and(|e| e.starts_with("SLUICE_HEADERS")));
    }
}
