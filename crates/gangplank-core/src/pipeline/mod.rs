//! Promotion pipelines (Humanitec Pipelines, plus Gangplank's image promotion): the YAML
//! definition and its validation, the actions a step may use, expressions, the lifecycles of
//! runs, jobs, steps and approvals, the approval policy, and the scheduler that decides what a
//! run does next. Pure: the store persists what these decide, the server's runner acts on it.

pub mod action;
pub mod approval;
pub mod definition;
pub mod expr;
pub mod http;
pub mod inputs;
pub mod lifecycle;
pub mod run;
pub mod schedule;
pub mod schema;
pub mod status;
pub mod trigger;
pub mod with;
