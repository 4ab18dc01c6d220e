//! The kind of a failure decides what a service does with it.

/// Whether a failure is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Network blips, broker or database briefly unavailable: retry with back-off.
    Transient,
    /// Bad input or configuration: retrying will not help.
    Permanent,
}
