//! Gangplank's domain vocabulary and every decision, as pure functions with no I/O.
//!
//! Nothing in this crate reads the clock, the environment, files or the network: callers pass
//! "now" and any outside facts in. That keeps every rule testable with plain tables.

pub mod access;
pub mod artefact;
pub mod id;
pub mod image;
pub mod validation;

pub use validation::ValidationError;
