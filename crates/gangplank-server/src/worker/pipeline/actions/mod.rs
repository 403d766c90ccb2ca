//! One executor per action (`gangplank_core::pipeline::action::Action`), each
//! `async fn execute(ctx: &StepCtx<'_>, with: &Map<String, Value>) -> StepResult`.
// Until the runner's dispatcher (wt-engine) calls them: drop the allows at the merge.
#[cfg_attr(not(test), allow(dead_code))]
pub mod http;
#[cfg_attr(not(test), allow(dead_code))]
pub mod promote_image;
#[cfg_attr(not(test), allow(dead_code))]
pub mod rollback_image;
#[cfg_attr(not(test), allow(dead_code))]
pub mod run;
