//! What a reader asks for (`Sluice-Consistency` header or `consistency`
//! query parameter): `eventual` (the default), `bounded; max-staleness-ms=N`
//! or `at-least; token=T` with the token a command answered.

use sluice_core::ConsistencyToken;
use std::time::Duration;

pub const HEADER: &str = "sluice-consistency";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consistency {
    /// Whatever the read model holds.
    Eventual,
    /// Data at most this far behind the topic.
    Bounded { max_staleness: Duration },
    /// The token's aggregate at least at the token's version.
    AtLeast(ConsistencyToken),
}

impl Consistency {
    /// The label of the mode, for metrics.
    pub fn mode(&self) -> &'static str {
        match self {
            Consistency::Eventual => "eventual",
            Consistency::Bounded { .. } => "bounded",
            Consistency::AtLeast(_) => "at-least",
        }
    }
}

/// The consistency asked for by the header and the query parameter. Both
/// may be given only if they agree. Anything malformed is an error that
/// says what was wrong (answered 400): never silently `eventual`.
pub fn from_request(header: Option<&str>, parameter: Option<&str>) -> Result<Consistency, String> {
    let header = header.map(|h| parse(h).map_err(|e| format!("Sluice-Consistency header: {e}"))).transpose()?;
    let parameter = parameter.map(|p| parse(p).map_err(|e| format!("consistency parameter: {e}"))).transpose()?;
    match (header, parameter) {
        (Some(h), Some(p)) if h != p => {
            Err("the Sluice-Consistency header and the consistency parameter disagree: give one".into())
        }
        (Some(c), _) | (None, Some(c)) => Ok(c),
        (None, None) => Ok(Consistency::Eventual),
    }
}

/// Parses one value: a mode, then `;`-separated `name=value` parameters.
pub fn parse(value: &str) -> Result<Consistency, String> {
    let mut parts = value.split(';').map(str::trim);
    let mode = parts.next().unwrap_or_default().to_ascii_lowercase();
    let mut params = Vec::new();
    for part in parts.filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').ok_or_else(|| format!("`{part}` is not a name=value parameter"))?;
        params.push((name.trim().to_ascii_lowercase(), value.trim()));
    }
    let only = |expected: &str| -> Result<&str, String> {
        match params.as_slice() {
            [(name, value)] if name == expected => Ok(*value),
            [] => Err(format!("`{mode}` needs `; {expected}=...`")),
            _ => Err(format!("`{mode}` takes exactly one parameter, `{expected}`")),
        }
    };
    match mode.as_str() {
        "eventual" if params.is_empty() => Ok(Consistency::Eventual),
        "eventual" => Err("`eventual` takes no parameters".into()),
        "bounded" => {
            let ms = only("max-staleness-ms")?;
            let ms: u64 = ms
                .parse()
                .map_err(|_| format!("max-staleness-ms must be a whole number of milliseconds, not `{ms}`"))?;
            Ok(Consistency::Bounded { max_staleness: Duration::from_millis(ms) })
        }
        "at-least" => {
            let token = only("token")?;
            ConsistencyToken::decode(token)
                .filter(|t| {
                    matches!(t.aggregate_type.as_str(), "article" | "author")
                        && uuid::Uuid::parse_str(&t.aggregate_id).is_ok()
                        && t.version > 0
                })
                .map(Consistency::AtLeast)
                .ok_or_else(|| format!("`{token}` is not a consistency token a command answered"))
        }
        "" => Err("empty value: expected eventual, bounded or at-least".into()),
        other => Err(format!("unknown mode `{other}`: expected eventual, bounded or at-least")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> ConsistencyToken {
        let id = "0b6c7d52-7f3a-4c1e-9a55-2f1f6f0c2a11".into();
        ConsistencyToken { aggregate_type: "article".into(), aggregate_id: id, version: 3 }
    }

    #[test]
    fn the_three_modes_parse() {
        assert_eq!(parse("eventual"), Ok(Consistency::Eventual));
        assert_eq!(
            parse(" Bounded ;max-staleness-ms = 250 "),
            Ok(Consistency::Bounded { max_staleness: Duration::from_millis(250) })
        );
        assert_eq!(parse(&format!("at-least; token={}", token().encode())), Ok(Consistency::AtLeast(token())));
        assert_eq!(from_request(None, None), Ok(Consistency::Eventual));
    }

    #[test]
    fn malformed_values_are_refused_with_the_reason() {
        for (value, reason) in [
            ("", "empty"),
            ("strong", "unknown mode `strong`"),
            ("bounded", "needs `; max-staleness-ms"),
            ("bounded; max-staleness-ms=-1", "whole number"),
            ("bounded; max-staleness-ms=10; token=x", "exactly one"),
            ("bounded; ms", "not a name=value"),
            ("at-least; token=!!", "not a consistency token"),
            // Well-formed, but of no aggregate a command answers for.
            (
                &format!("at-least; token={}", ConsistencyToken { aggregate_type: "order".into(), ..token() }.encode()),
                "not a consistency token",
            ),
            (
                &format!("at-least; token={}", ConsistencyToken { aggregate_id: "a1".into(), ..token() }.encode()),
                "not a consistency token",
            ),
            ("eventual; x=1", "takes no parameters"),
        ] {
            let error = parse(value).expect_err(value);
            assert!(error.contains(reason), "{value}: {error}");
        }
        let error = from_request(Some("eventual"), Some("bounded; max-staleness-ms=1")).expect_err("disagree");
        assert!(error.contains("disagree"));
        let error = from_request(Some("nope"), None).expect_err("header");
        assert!(error.starts_with("Sluice-Consistency header"), "{error}");
    }
}
