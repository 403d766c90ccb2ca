//! The error body every API failure returns.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `{"error": code, "message": text}`, as Humanitec's `HumanitecErrorResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A short, stable code such as `invalid_value` or `not_found`.
    pub error: String,
    /// A human-readable explanation naming the offending field or object.
    pub message: String,
}
