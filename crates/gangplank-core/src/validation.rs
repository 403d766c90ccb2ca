//! The one error every parser in the core returns: which field is wrong, and why.

/// A value supplied by a caller that does not satisfy a domain rule.
///
/// `field` names the offending input as the caller spelled it (a JSON field or query
/// parameter), so the message can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The input field, as named in the API.
    pub field: String,
    /// What is wrong with it, lowercase, no trailing period.
    pub message: String,
}

impl ValidationError {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }
}
