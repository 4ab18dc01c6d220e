use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_core::Validate;
use std::process::ExitCode;

/// The `main` of every Sluice service: JSON logs, configuration loaded and
/// validated (exit 2 with a clear message when wrong), then `body` on a tokio
/// runtime (exit 1 when it fails). With `--check-config` as the first
/// argument it stops after the validation (exit 0 when valid): the Helm
/// chart's checks run every rendered Deployment's settings through it.
pub fn run_service<C, F, Fut>(service: &'static str, body: F) -> ExitCode
where
    C: DeserializeOwned + Serialize + Default + Validate,
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    crate::init_logging(service);
    let config: C =
        match sluice_core::load_config::<C>().map_err(|e| e.to_string()).and_then(|c| c.validate().map(|()| c)) {
            Ok(_) if check_only() => {
                println!("{service}: configuration valid");
                return ExitCode::SUCCESS;
            }
            Ok(c) => c,
            Err(e) => {
                tracing::error!(service, error = %e, "invalid configuration");
                eprintln!("{service}: invalid configuration: {e}");
                return ExitCode::from(2);
            }
        };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(service, error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(body(config)) {
        Ok(()) => {
            tracing::info!(service, "stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(service, error = %format!("{e:#}"), "failed");
            ExitCode::FAILURE
        }
    }
}

fn check_only() -> bool {
    std::env::args().nth(1).as_deref() == Some("--check-config")
}
