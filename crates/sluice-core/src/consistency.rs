//! What a reader asks for (`Sluice-Consistency` header or `consistency`
//! query parameter): `eventual` (the default), `bounded; max-staleness-ms=N`
//! or `at-least; token=T` with the token a command answered.

use crate::ConsistencyToken;
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

/// Why a consistency value was refused: malformed (400), or well-formed but
/// not processable (422): a token that no command answered, or a header and
/// a parameter that disagree. The message says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub message: String,
    pub unprocessable: bool,
}

impl Refused {
    fn malformed(message: impl Into<String>) -> Self {
        Self { message: message.into(), unprocessable: false }
    }

    fn within(self, place: &str) -> Self {
        Self { message: format!("{place}: {}", self.message), ..self }
    }
}

/// The pattern of a value, as the OpenAPI document states it; `parse`
/// accepts exactly what it matches.
pub const PATTERN: &str = r"^[ \t]*(eventual|bounded[ \t]*;[ \t]*max-staleness-ms[ \t]*=[ \t]*[0-9]{1,18}|at-least[ \t]*;[ \t]*token[ \t]*=[ \t]*[A-Za-z0-9_-]{1,512})[ \t]*$";

/// The consistency asked for by the header and the query parameter. Both
/// may be given only if they agree. Anything malformed is an error that
/// says what was wrong (answered 400): never silently `eventual`.
pub fn from_request(header: Option<&str>, parameter: Option<&str>) -> Result<Consistency, Refused> {
    let header = header.map(|h| parse(h).map_err(|e| e.within("Sluice-Consistency header"))).transpose()?;
    let parameter = parameter.map(|p| parse(p).map_err(|e| e.within("consistency parameter"))).transpose()?;
    match (header, parameter) {
        // Each well-formed on its own: the request cannot be processed (422).
        (Some(h), Some(p)) if h != p => Err(Refused {
            message: "the Sluice-Consistency header and the consistency parameter disagree: give one".into(),
            unprocessable: true,
        }),
        (Some(c), _) | (None, Some(c)) => Ok(c),
        (None, None) => Ok(Consistency::Eventual),
    }
}

/// Parses one value: a mode, then `;`-separated `name=value` parameters,
/// lower case, with spaces or tabs around the separators ([`PATTERN`]).
pub fn parse(value: &str) -> Result<Consistency, Refused> {
    let blank = |c: char| c == ' ' || c == '\t';
    let mut parts = value.split(';').map(|p| p.trim_matches(blank));
    let mode = parts.next().unwrap_or_default();
    let mut params = Vec::new();
    for part in parts {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| Refused::malformed(format!("`{part}` is not a name=value parameter")))?;
        params.push((name.trim_matches(blank), value.trim_matches(blank)));
    }
    let only = |expected: &str| -> Result<&str, Refused> {
        match params.as_slice() {
            [(name, value)] if *name == expected => Ok(*value),
            [] => Err(Refused::malformed(format!("`{mode}` needs `; {expected}=...`"))),
            _ => Err(Refused::malformed(format!("`{mode}` takes exactly one parameter, `{expected}`"))),
        }
    };
    match mode {
        "eventual" if params.is_empty() => Ok(Consistency::Eventual),
        "eventual" => Err(Refused::malformed("`eventual` takes no parameters")),
        "bounded" => {
            let ms = only("max-staleness-ms")?;
            if !(1..=18).contains(&ms.len()) || !ms.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Refused::malformed(format!(
                    "max-staleness-ms must be a whole number of milliseconds (1 to 18 digits), not `{ms}`"
                )));
            }
            let ms: u64 = ms.parse().map_err(|_| Refused::malformed("max-staleness-ms is too large"))?;
            Ok(Consistency::Bounded { max_staleness: Duration::from_millis(ms) })
        }
        "at-least" => {
            let token = only("token")?;
            let well_formed = (1..=512).contains(&token.len())
                && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !well_formed {
                return Err(Refused::malformed(format!(
                    "`{token}` is not a consistency token (1 to 512 characters of A-Z, a-z, 0-9, _ and -)"
                )));
            }
            ConsistencyToken::decode(token)
                .filter(|t| {
                    matches!(t.aggregate_type.as_str(), "article" | "author")
                        && uuid::Uuid::parse_str(&t.aggregate_id).is_ok()
                        && t.version > 0
                })
                .map(Consistency::AtLeast)
                .ok_or_else(|| Refused {
                    message: format!("`{token}` is not a consistency token a command answered"),
                    unprocessable: true,
                })
        }
        "" => Err(Refused::malformed("empty value: expected eventual, bounded or at-least")),
        other => Err(Refused::malformed(format!("unknown mode `{other}`: expected eventual, bounded or at-least"))),
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
            parse(" bounded ;max-staleness-ms = 250 "),
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
            ("Eventual", "unknown mode `Eventual`"),
            ("eventual;", "not a name=value"),
            ("bounded; max-staleness-ms=+5", "whole number"),
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
            let error = parse(value).expect_err(value).message;
            assert!(error.contains(reason), "{value}: {error}");
        }
        let error = from_request(Some("eventual"), Some("bounded; max-staleness-ms=1")).expect_err("disagree").message;
        assert!(error.contains("disagree"));
        let error = from_request(Some("nope"), None).expect_err("header").message;
        assert!(error.starts_with("Sluice-Consistency header"), "{error}");
        // Well-formed tokens of no command are 422, malformed ones 400.
        let unknown =
            format!("at-least; token={}", ConsistencyToken { aggregate_type: "order".into(), ..token() }.encode());
        assert!(parse(&unknown).expect_err("order").unprocessable);
        assert!(!parse("at-least; token=!!").expect_err("!!").unprocessable);
    }
}
