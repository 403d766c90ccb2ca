//! Identifiers of organizations, applications, environments and environment types.
//!
//! Humanitec's pattern is `^[a-z0-9](?:-?[a-z0-9]+)+$` with at most 50 characters: lowercase
//! alphanumerics, single dashes between them, at least two characters, no leading or trailing
//! dash. Scripts written against Humanitec rely on exactly these rules.

use std::fmt;

use crate::ValidationError;

/// The longest identifier Humanitec accepts.
pub const MAX_ID_LEN: usize = 50;

/// A validated organization, application, environment or environment-type identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId(String);

impl ResourceId {
    /// Checks `value` against Humanitec's ID pattern; `field` names the input in the error.
    pub fn parse(field: &str, value: &str) -> Result<Self, ValidationError> {
        if is_valid_id(value) {
            Ok(ResourceId(value.to_owned()))
        } else {
            Err(ValidationError::new(
                field,
                format!(
                    "must match ^[a-z0-9](?:-?[a-z0-9]+)+$ and be at most {MAX_ID_LEN} characters"
                ),
            ))
        }
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True when `value` matches `^[a-z0-9](?:-?[a-z0-9]+)+$` and is at most 50 characters long.
pub fn is_valid_id(value: &str) -> bool {
    let bytes = value.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.len() < 2 || bytes.len() > MAX_ID_LEN {
        return false;
    }
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    // Every dash stands between two alphanumerics: no doubled dashes.
    bytes
        .windows(2)
        .all(|pair| !(pair[0] == b'-' && pair[1] == b'-'))
        && bytes.iter().all(|&b| alnum(b) || b == b'-')
}

#[cfg(test)]
mod tests;
