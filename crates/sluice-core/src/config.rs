//! Layered configuration: defaults, then an optional TOML file (`SLUICE_CONFIG`),
//! then environment variables with the `SLUICE_` prefix. Validated at start.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} does not exist (named by SLUICE_CONFIG)")]
    MissingFile { path: String },
    #[error("{0}")]
    Invalid(String),
}

/// `SLUICE_*` variables that are not fields of a service's configuration: the
/// config file itself, logging, and tool locations used by the dev tooling.
/// Every other `SLUICE_*` variable must be a known field (typos fail at start).
pub const SHARED_VARIABLES: &[&str] =
    &["CONFIG", "LOG", "LOG_FORMAT", "TANSU_BIN", "REDIS_SERVER_BIN", "PG_BINDIR", "DEV_DIR"];

/// Loads `T` from its defaults, the file named by `SLUICE_CONFIG` (if set) and
/// `SLUICE_*` variables. `SLUICE_DATABASE_URL` sets field `database_url`.
pub fn load_config<T>() -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    load_from(Env::prefixed("SLUICE_"), std::env::var("SLUICE_CONFIG").ok())
}

fn load_from<T>(env: Env, file: Option<String>) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        if !std::path::Path::new(&path).exists() {
            return Err(ConfigError::MissingFile { path });
        }
        figment = figment.merge(Toml::file(path));
    }
    let env = env.ignore(SHARED_VARIABLES);
    figment.merge(env).extract().map_err(|e| ConfigError::Invalid(describe(e)))
}

fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let kind = e.kind.to_string();
            // A configuration with a flattened part (a projector's store
            // settings) reports an unknown key without its path.
            let unknown = kind.strip_prefix("unknown field `").and_then(|k| k.strip_suffix('`'));
            match unknown {
                Some(field) if key.is_empty() => format!("SLUICE_{}: unknown variable", field.to_ascii_uppercase()),
                _ if key.is_empty() => kind,
                _ => format!("SLUICE_{}: {kind}", key.to_ascii_uppercase()),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        port: u16,
        name: String,
    }

    impl Default for Sample {
        fn default() -> Self {
            Self { port: 8080, name: "x".into() }
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail error type
    fn env_overrides_defaults_and_bad_values_name_the_variable() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SLUICE_TEST_PORT", "9000");
            let s: Sample = load_from(Env::prefixed("SLUICE_TEST_"), None).map_err(|e| e.to_string())?;
            assert_eq!(s.port, 9000);
            assert_eq!(s.name, "x");

            jail.set_env("SLUICE_TEST_PORT", "not-a-port");
            let err = load_from::<Sample>(Env::prefixed("SLUICE_TEST_"), None).unwrap_err().to_string();
            assert!(err.contains("SLUICE_PORT"), "{err}");
            Ok(())
        });
    }

    #[derive(Debug, Serialize, Deserialize, Default)]
    struct Store {
        url: String,
    }

    #[derive(Debug, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct WithStore {
        port: u16,
        #[serde(flatten)]
        store: Store,
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail error type
    fn unknown_variables_are_named_also_beside_a_flattened_part() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SLUICE_TEST_URL", "redis://x");
            let s: WithStore = load_from(Env::prefixed("SLUICE_TEST_"), None).map_err(|e| e.to_string())?;
            assert_eq!(s.store.url, "redis://x");
            jail.set_env("SLUICE_TEST_PROT", "1");
            let err = load_from::<WithStore>(Env::prefixed("SLUICE_TEST_"), None).unwrap_err().to_string();
            assert_eq!(err, "SLUICE_PROT: unknown variable");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail error type
    fn file_layer_sits_under_env() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("s.toml", "port = 7000\nname = \"file\"")?;
            jail.set_env("SLUICE_TEST_NAME", "env");
            let s: Sample =
                load_from(Env::prefixed("SLUICE_TEST_"), Some("s.toml".into())).map_err(|e| e.to_string())?;
            assert_eq!(s, Sample { port: 7000, name: "env".into() });
            assert!(matches!(
                load_from::<Sample>(Env::prefixed("SLUICE_TEST_"), Some("nope.toml".into())),
                Err(ConfigError::MissingFile { .. })
            ));
            Ok(())
        });
    }
}
