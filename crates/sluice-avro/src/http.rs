//! The HTTP client for registry calls: every request has a deadline.

use crate::AvroError;
use std::sync::OnceLock;
use std::time::Duration;

/// Connecting to the registry takes at most this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole registry call (connect, send, answer) takes at most this long
/// unless the caller sets a shorter deadline.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One client per process (connection pool), built once.
pub(crate) fn client() -> Result<&'static reqwest::Client, AvroError> {
    static HTTP: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    HTTP.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| AvroError::RegistryUnavailable(format!("cannot build the HTTP client: {e}")))
}

/// Whether an answer with this status may turn into a success later:
/// server errors, time-outs at a proxy, rate limiting.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}
