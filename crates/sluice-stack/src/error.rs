#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("{tool} not found ({looked}). Run `make setup` to install it.")]
    MissingTool { tool: String, looked: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} did not become ready: {detail}")]
    NotReady { what: String, detail: String },
    #[error("{0}")]
    Failed(String),
}

impl StackError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StackError {
        let what = what.into();
        move |source| StackError::Io { what, source }
    }
}
