//! Gangplank's HTTP contract: the request and response bodies of the API (Humanitec-compatible
//! shapes where Humanitec has the object), the error body, and a small client for them.
//!
//! These types are promises to programs Gangplank does not control (CI scripts, humctl users,
//! Terraform): change a field only with care.

pub mod agent;
pub mod apps;
pub mod artefacts;
pub mod builds;
pub mod client;
pub mod deploys;
pub mod error;
pub mod image_promotions;
pub mod inbound_hooks;
pub mod pipeline_runs;
pub mod pipelines;
pub mod registries;
pub mod rules;
pub mod runtime;
pub mod users;
pub mod vocabulary;
pub mod watches;
pub mod webhooks;

pub use error::ErrorBody;
