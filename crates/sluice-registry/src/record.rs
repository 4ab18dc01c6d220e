//! Records of the `_schemas` topic, in the shape Confluent's registry writes.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "keytype", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LogKey {
    Schema { subject: String, version: u32, magic: u8 },
    Config { subject: Option<String>, magic: u8 },
}

impl LogKey {
    pub fn schema(subject: &str, version: u32) -> Self {
        LogKey::Schema { subject: subject.into(), version, magic: 1 }
    }

    pub fn config(subject: Option<&str>) -> Self {
        LogKey::Config { subject: subject.map(str::to_string), magic: 0 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchemaValue {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: String,
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigValue {
    pub compatibility_level: String,
}
