//! Where the registry answers, and the token its writes need.

use sluice_core::Secret;

/// A registry's base URL and the write token sent with registrations and
/// compatibility changes (empty: none sent; reads never need one).
#[derive(Clone, Debug)]
pub struct RegistryEndpoint {
    pub url: String,
    pub token: Secret,
}

impl RegistryEndpoint {
    pub fn new(url: impl Into<String>, token: Secret) -> Self {
        let url: String = url.into();
        Self { url: url.trim_end_matches('/').to_string(), token }
    }

    /// A registry that accepts writes without a token.
    pub fn open(url: impl Into<String>) -> Self {
        Self::new(url, Secret::default())
    }

    /// `request` with the write token, when there is one.
    pub(crate) fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.token.is_empty() { request } else { request.bearer_auth(self.token.expose()) }
    }
}
