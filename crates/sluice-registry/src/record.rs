//! Records of the `_schemas` topic: Confluent's shapes (`SCHEMA`, `CONFIG`)
//! plus Sluice's claims (`SLUICE_CLAIM`, see `store` for the rules).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "keytype", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LogKey {
    Schema {
        subject: String,
        version: u32,
        magic: u8,
    },
    Config {
        subject: Option<String>,
        magic: u8,
    },
    /// A registration's claim on a new id binding and a new subject version.
    /// Every claim has a key of its own, so compaction never removes one.
    SluiceClaim {
        claim: String,
        magic: u8,
    },
}

impl LogKey {
    pub fn schema(subject: &str, version: u32) -> Self {
        LogKey::Schema { subject: subject.into(), version, magic: 1 }
    }

    pub fn config(subject: Option<&str>) -> Self {
        LogKey::Config { subject: subject.map(str::to_string), magic: 0 }
    }

    pub fn claim(claim: &str) -> Self {
        LogKey::SluiceClaim { claim: claim.into(), magic: 0 }
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

/// What a claim asks for: `id` bound to `schema`, and version `version` of
/// `subject` pointing at it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimValue {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: String,
}
