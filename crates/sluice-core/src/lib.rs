//! Shared vocabulary of Sluice: record header names, topic naming, configuration
//! loading and the error kind that decides whether a failure is retried.

pub mod config;
pub mod consistency;
pub mod error;
pub mod header_set;
pub mod headers;
pub mod partitioner;
pub mod secret;
pub mod text;
pub mod token;
pub mod topics;
pub mod validate;

pub use config::{ConfigError, load_config};
pub use error::ErrorKind;
pub use secret::Secret;
pub use token::ConsistencyToken;
pub use validate::Validate;
