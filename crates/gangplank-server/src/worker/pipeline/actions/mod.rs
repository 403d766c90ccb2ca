//! One executor per action (`gangplank_core::pipeline::action::Action`), each
//! `async fn execute(ctx: &StepCtx<'_>, with: &Map<String, Value>) -> StepResult`.

pub mod promote_image;
pub mod rollback_image;
