use tracing_subscriber::EnvFilter;

/// JSON logs on stderr; the level comes from `SLUICE_LOG` (default `info`).
/// `SLUICE_LOG_FORMAT=text` switches to human-readable lines.
pub fn init_logging(service: &'static str) {
    let filter = EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let text = std::env::var("SLUICE_LOG_FORMAT").is_ok_and(|f| f == "text");
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result =
        if text { builder.try_init() } else { builder.json().flatten_event(true).with_current_span(false).try_init() };
    // A second init (tests) keeps the first subscriber.
    if result.is_ok() {
        tracing::info!(service, "logging initialised");
    }
}
