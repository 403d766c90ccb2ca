//! The pipeline runner: claims runs from the job queue, asks `gangplank_core::pipeline` what
//! each does next, and runs steps through their action executors (`actions`).

pub mod actions;
pub mod runner;
pub mod step;
