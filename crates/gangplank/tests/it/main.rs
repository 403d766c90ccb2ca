//! Integration tests: the real `gangplank serve` process on port 0 with a temporary data dir,
//! driven over HTTP by reqwest, curl, wget and the `gangplank` CLI itself.

mod agent_api;
mod agent_apply;
mod agent_docker;
mod agent_run;
mod agents;
mod approvals;
mod apps;
mod artefacts;
mod auth;
mod automation;
mod bounds;
mod cli;
mod compose_converge;
mod compose_target;
mod deep_yaml;
mod durability;
mod errors;
mod explain;
mod fuzz;
mod image_promotions;
mod lifecycle;
mod metrics;
mod openapi;
mod pages;
mod pipeline_runs;
mod pipelines;
mod promotion_crash;
mod receivers;
mod registries;
mod roles;
mod runtime;
mod shapes;
mod slow_clients;
mod support;
mod webhooks;
