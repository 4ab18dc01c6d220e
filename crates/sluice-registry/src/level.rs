//! Compatibility levels and what each one checks.

use crate::compat::can_read;
use apache_avro::Schema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Level {
    /// Confluent's default.
    pub const DEFAULT: Level = Level::Backward;

    pub fn parse(s: &str) -> Option<Level> {
        serde_json::from_value(serde_json::Value::String(s.to_ascii_uppercase())).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(self) -> bool {
        matches!(self, Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive)
    }

    fn backward(self) -> bool {
        matches!(self, Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive)
    }

    fn forward(self) -> bool {
        matches!(self, Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive)
    }

    /// Checks `candidate` against the live versions (oldest first): the newest
    /// only, or all of them for the transitive levels. Returns every problem.
    pub fn check(self, candidate: &Schema, live: &[(u32, &Schema)]) -> Vec<String> {
        let against: &[(u32, &Schema)] =
            if self.transitive() { live } else { live.last().map_or(&[], std::slice::from_ref) };
        let mut problems = Vec::new();
        for (version, existing) in against {
            if self.backward()
                && let Err(e) = can_read(existing, candidate)
            {
                problems.push(format!(
                    "{}: the new schema cannot read data written with version {version}: {e}",
                    self.as_str()
                ));
            }
            if self.forward()
                && let Err(e) = can_read(candidate, existing)
            {
                problems.push(format!(
                    "{}: version {version} cannot read data written with the new schema: {e}",
                    self.as_str()
                ));
            }
        }
        problems
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
