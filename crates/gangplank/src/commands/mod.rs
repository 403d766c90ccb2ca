//! One module per verb.

#[cfg(feature = "server")]
pub mod agent;
pub mod api;
pub mod builds;
pub mod config;
pub mod create;
pub mod delete;
pub mod deploy;
pub mod get;
pub mod pipeline_runs;
pub mod registry;
#[cfg(feature = "server")]
pub mod serve;
pub mod status;
