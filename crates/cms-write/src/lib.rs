//! The CMS write side: commands validated by `cms-domain`, stored in
//! PostgreSQL together with their outbox events in one transaction.

mod error;
pub mod http;
pub mod migrations;
mod pool;
pub mod scheduler;
pub mod service;
pub mod store;

pub use error::CommandError;
pub use http::auth::Tokens;
pub use http::{AppState, openapi_json, router};
pub use pool::{WRITE_SCHEMA, connect_pool};
pub use service::{CommandContext, CommandService, Encoders};
pub use sluice_core::ConsistencyToken;
