//! Schema registries for tests: real `schema-registry` processes that, as in
//! production, take writes only with a write token.

use crate::ServiceHandle;
use sluice_avro::RegistryEndpoint;
use sluice_core::Secret;

/// The write token of the test kit's registries.
pub const REGISTRY_TOKEN: &str = "test-registry-token";

/// A registry keeping its schemas on `bootstrap`'s broker.
pub async fn start_registry(bootstrap: &str) -> ServiceHandle {
    start_registry_with(bootstrap, &[]).await
}

/// [`start_registry`] with more variables.
pub async fn start_registry_with(bootstrap: &str, more: &[(&str, String)]) -> ServiceHandle {
    let mut env = vec![("SLUICE_BROKERS", bootstrap.to_string()), ("SLUICE_WRITE_TOKENS", REGISTRY_TOKEN.to_string())];
    env.extend(more.iter().cloned());
    ServiceHandle::start("schema-registry", &env).await
}

/// Registering with `registry`, with the test kit's write token.
pub fn registry_writer(registry: &ServiceHandle) -> RegistryEndpoint {
    RegistryEndpoint::new(registry.base_url(), Secret::new(REGISTRY_TOKEN))
}
