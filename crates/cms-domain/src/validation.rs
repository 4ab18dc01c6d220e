use serde::Serialize;

/// Why one field of a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Reason {
    /// The body's field, or empty when the body as a whole is wrong (an edit
    /// that changes nothing), as an empty JSON pointer names the whole document.
    pub field: String,
    pub message: String,
}

impl Reason {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// A refused command: every reason at once, so a client can fix them together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(pub Vec<Reason>);

/// Collects reasons, then turns them into a result.
#[derive(Default)]
pub(crate) struct Checks(Vec<Reason>);

impl Checks {
    pub(crate) fn require(&mut self, ok: bool, field: &str, message: &str) {
        if !ok {
            self.0.push(Reason::new(field, message));
        }
    }

    pub(crate) fn finish(self) -> Result<(), Rejection> {
        if self.0.is_empty() { Ok(()) } else { Err(Rejection(self.0)) }
    }
}
