//! projector-redis: the Redis store's settings and the projector runtime.

use serde::{Deserialize, Serialize};
use sluice_core::Secret;
use sluice_core::validate::check_url;
use sluice_projection::service::{self, StoreSettings};
use sluice_store_redis::RedisStore;
use std::process::ExitCode;

#[derive(Debug, Serialize, Deserialize)]
struct RedisSettings {
    /// SLUICE_REDIS_URL (may carry a password: never logged).
    redis_url: Secret,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self { redis_url: Secret::new("redis://127.0.0.1:6379/") }
    }
}

impl StoreSettings for RedisSettings {
    const SERVICE: &'static str = "projector-redis";
    const DEFAULT_LISTEN: &'static str = "127.0.0.1:9091";
    const DEFAULT_AGGREGATES: &'static str = "article,author";

    fn validate(&self, projection: &str) -> Result<(), String> {
        check_url("SLUICE_REDIS_URL", self.redis_url.expose(), &["redis", "rediss"])?;
        // The projection is the hash tag of every key: `{<projection>}`.
        if projection.contains(['{', '}', ':']) {
            return Err("SLUICE_PROJECTION must not contain '{', '}' or ':'".into());
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    service::run(async |config: &service::ServiceConfig<RedisSettings>| {
        RedisStore::connect(config.store.redis_url.expose(), &config.projection).await
    })
}
