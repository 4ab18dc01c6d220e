//! An outbox row as it arrives through pgoutput (text format).

use pg_walstream::{ColumnValue, RowData};

#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub payload: Option<Vec<u8>>,
    pub aggregate_version: i64,
    pub traceparent: Option<String>,
}

impl OutboxRow {
    pub fn from_row(row: &RowData) -> Result<Self, String> {
        let text = |name: &str| -> Result<Option<&str>, String> {
            match row.get(name) {
                None => Err(format!("column `{name}` missing from the outbox row")),
                Some(ColumnValue::Null) => Ok(None),
                Some(v) => v.as_str().map(Some).ok_or_else(|| format!("column `{name}` is not text")),
            }
        };
        let required = |name: &str| -> Result<String, String> {
            text(name)?.map(str::to_string).ok_or_else(|| format!("column `{name}` is null"))
        };
        let payload = match row.get("payload") {
            None => return Err("column `payload` missing from the outbox row".into()),
            Some(ColumnValue::Null) => None,
            Some(ColumnValue::Binary(b)) => Some(b.to_vec()),
            Some(v) => Some(decode_bytea_hex(v.as_str().ok_or("column `payload` is not text")?)?),
        };
        let version = required("aggregate_version")?;
        let traceparent = match text("headers") {
            Ok(Some(json)) => serde_json::from_str::<serde_json::Value>(json)
                .ok()
                .and_then(|h| h.get("traceparent").and_then(|t| t.as_str()).map(str::to_string)),
            _ => None,
        };
        Ok(Self {
            id: required("id")?,
            aggregate_type: required("aggregatetype")?,
            aggregate_id: required("aggregateid")?,
            event_type: required("type")?,
            payload,
            aggregate_version: version.parse().map_err(|_| format!("aggregate_version `{version}` is not a number"))?,
            traceparent,
        })
    }
}

/// The row's id, when it has one that is a uuid (also for an undecodable row).
pub(crate) fn row_id(row: &RowData) -> Option<uuid::Uuid> {
    row.get("id").and_then(ColumnValue::as_str).and_then(|id| id.parse().ok())
}

/// The row's columns as JSON text, for a dead letter.
pub(crate) fn describe(row: &RowData) -> String {
    let mut columns = serde_json::Map::new();
    for (name, value) in row.iter() {
        let value = match value {
            ColumnValue::Null => serde_json::Value::Null,
            v => v.as_str().map_or_else(|| serde_json::Value::String("<binary>".into()), |s| s.into()),
        };
        columns.insert(name.to_string(), value);
    }
    serde_json::Value::Object(columns).to_string()
}

/// pgoutput sends bytea in PostgreSQL's hex text format: `\x0a1b...`.
fn decode_bytea_hex(text: &str) -> Result<Vec<u8>, String> {
    let hex = text.strip_prefix("\\x").ok_or("payload is not in bytea hex format")?.as_bytes();
    if hex.len() % 2 != 0 {
        return Err("payload hex has an odd length".into());
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err("payload hex has a non-hex digit".to_string()),
    };
    hex.chunks_exact(2).map(|pair| Ok((nibble(pair[0])? << 4) | nibble(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_bytea_hex() {
        assert_eq!(decode_bytea_hex("\\x00ff10"), Ok(vec![0, 255, 16]));
        assert!(decode_bytea_hex("00ff").is_err());
        assert!(decode_bytea_hex("\\x0").is_err());
        assert!(decode_bytea_hex("\\xzz").is_err());
    }
}
