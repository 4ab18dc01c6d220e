use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What a writer hands to a reader so the reader can ask for a read model that
/// includes the write: the aggregate and the version it reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyToken {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub version: i64,
}

impl ConsistencyToken {
    /// Opaque to clients: base64url of `type:id:version`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}:{}", self.aggregate_type, self.aggregate_id, self.version))
    }

    pub fn decode(token: &str) -> Option<Self> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
        let mut parts = raw.splitn(3, ':');
        let aggregate_type = parts.next()?.to_string();
        let aggregate_id = parts.next()?.to_string();
        let version = parts.next()?.parse().ok()?;
        Some(Self { aggregate_type, aggregate_id, version })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = ConsistencyToken { aggregate_type: "article".into(), aggregate_id: "a-b".into(), version: 7 };
        assert_eq!(ConsistencyToken::decode(&t.encode()), Some(t));
        assert_eq!(ConsistencyToken::decode("!!"), None);
    }
}
