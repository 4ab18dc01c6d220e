//! Starting Sluice's services the way the end-to-end tests need them.
#![allow(dead_code)]

use sluice_testkit::{ServiceHandle, random_name};

pub const TOKEN: &str = "test-write-token";

pub fn schemas_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas").to_string()
}

/// A ready command API writing to `db`, registering its schemas itself.
pub async fn command_api(db: &str, registry_url: &str, prefix: &str, query_base_url: &str) -> ServiceHandle {
    let mut command = ServiceHandle::start(
        "command-api",
        &[
            ("SLUICE_DATABASE_URL", db.to_string()),
            ("SLUICE_REGISTRY_URL", registry_url.to_string()),
            ("SLUICE_QUERY_BASE_URL", query_base_url.to_string()),
            ("SLUICE_TOPIC_PREFIX", prefix.to_string()),
            ("SLUICE_AUTO_REGISTER", "true".to_string()),
            ("SLUICE_SCHEMAS_DIR", schemas_dir()),
            ("SLUICE_WRITE_TOKENS", TOKEN.to_string()),
        ],
    )
    .await;
    command.wait_ready().await;
    command
}

/// A relay on its own slot and publication.
pub async fn relay(db: &str, brokers: &str, prefix: &str) -> ServiceHandle {
    ServiceHandle::start(
        "outbox-relay",
        &[
            ("SLUICE_DATABASE_URL", db.to_string()),
            ("SLUICE_BROKERS", brokers.to_string()),
            ("SLUICE_TOPIC_PREFIX", prefix.to_string()),
            ("SLUICE_SLOT", random_name("slot")),
            ("SLUICE_PUBLICATION", random_name("pub")),
        ],
    )
    .await
}
