//! Gangplank's domain vocabulary and every decision, as pure functions with no I/O.
//!
//! Nothing in this crate reads the clock, the environment, files or the network: callers pass
//! "now" and any outside facts in. That keeps every rule testable with plain tables.

pub mod access;
pub mod agent;
pub mod artefact;
pub mod automation;
pub mod build;
pub mod delta;
pub mod deploy;
pub mod id;
pub mod image;
pub mod inbound;
pub mod json_patch;
pub mod limits;
pub mod net;
pub mod page;
pub mod pipeline;
pub mod promotion;
pub mod registry;
pub mod runtime;
pub mod set;
pub mod target;
pub mod timestamp;
pub mod validation;
pub mod watch;
pub mod webhook;
pub mod yaml;

pub use validation::ValidationError;
