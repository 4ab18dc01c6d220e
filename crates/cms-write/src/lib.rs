//! The CMS write side: commands validated by `cms-domain`, stored in
//! PostgreSQL together with their outbox events in one transaction.

mod error;
pub mod http;
pub mod migrations;
mod repository;
mod token;

pub use error::CommandError;
pub use http::{AppState, router};
pub use repository::Repository;
pub use token::ConsistencyToken;
