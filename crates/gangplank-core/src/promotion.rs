//! Image promotion: the destination repository's version rule (wire-formats §8.6/§8.7), the
//! plan of a promotion (which tag archives the live image, or none) and the plan of a rollback
//! (the live tag back to the highest-numbered version, that number dropped). Pure: the server
//! reads the tags and digests from the registry and carries the plans out.

mod plan;
mod version;

pub use plan::{
    Archive, PromotionInput, PromotionPlan, RollbackError, RollbackInput, RollbackPlan,
    plan_promotion, plan_rollback, rollback_to,
};
pub use version::Version;

#[cfg(test)]
mod tests;
