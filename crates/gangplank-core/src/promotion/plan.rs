//! What a promotion and a rollback will do to a destination repository, decided from its tags
//! and the digest its live tag points at.
//!
//! The seed's convention: the live image carries only the live tag (`latest`); older images
//! carry a version. The live image's own version is implicit: one above the highest version.
//! A promotion first gives the live image that version (the archive tag), then moves the live
//! tag; a rollback moves the live tag back to the highest version's image and drops that tag.

use super::version::Version;

/// What a promotion reads before it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionInput<'a> {
    /// The digest being promoted.
    pub source_digest: &'a str,
    /// Every tag of the destination repository.
    pub tags: &'a [String],
    /// The digest the live tag points at, `None` when the repository has no live tag.
    pub live_digest: Option<&'a str>,
}

/// The archive step: the digest live now gets `tag` before the live tag moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub tag: String,
    pub digest: String,
}

/// What a promotion does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromotionPlan {
    /// The live tag already points at the source digest: nothing to number, nothing to move
    /// (an idempotent re-run).
    AlreadyLive,
    /// Archive the live image (unless there is none: the first promotion into the repository
    /// numbers nothing), then move the live tag.
    Promote {
        archive: Option<Archive>,
        /// The live image's version before (its archive tag), `None` on a first promotion.
        version_before: Option<String>,
        /// The version the promoted image is live as (one above the archive tag).
        version_after: String,
    },
}

/// Plans a promotion. A repository with a live tag but no version yet (only `latest`) archives
/// the live image as `0.1`; never is a version derived from a non-numeric tag.
pub fn plan_promotion(input: &PromotionInput<'_>) -> PromotionPlan {
    let Some(live) = input.live_digest else {
        return PromotionPlan::Promote {
            archive: None,
            version_before: None,
            version_after: Version::next_after(input.tags),
        };
    };
    if live == input.source_digest {
        return PromotionPlan::AlreadyLive;
    }
    let archive_tag = Version::next_after(input.tags);
    let version_after = Version::parse(&archive_tag)
        .map(|v| v.next())
        .unwrap_or_else(|| archive_tag.clone());
    PromotionPlan::Promote {
        archive: Some(Archive {
            tag: archive_tag.clone(),
            digest: live.to_owned(),
        }),
        version_before: Some(archive_tag),
        version_after,
    }
}

/// What a rollback reads before it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackInput<'a> {
    /// Every tag of the repository.
    pub tags: &'a [String],
    /// The version to go back to (`--to`); `None`: the highest.
    pub to: Option<&'a str>,
}

/// What a rollback does: point the live tag at the image of `restore_tag`, then drop that tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackPlan {
    /// The version tag whose image becomes live again (and is then dropped).
    pub restore_tag: String,
    /// The live image's implicit version before the rollback (one above the highest version).
    pub version_before: String,
    /// The version live after the rollback (`restore_tag`).
    pub version_after: String,
}

/// Why there is no rollback to make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackError {
    #[error("the repository has no version to roll back to")]
    NothingToRollBack,
    #[error("the repository has no version {0}")]
    NoSuchVersion(String),
}

/// Plans a rollback (the seed's `rollback.sh`, with `--to`).
pub fn plan_rollback(input: &RollbackInput<'_>) -> Result<RollbackPlan, RollbackError> {
    let highest = Version::highest(input.tags).ok_or(RollbackError::NothingToRollBack)?;
    let restore = match input.to {
        None => highest.clone(),
        Some(to) => {
            let wanted = to.strip_prefix('v').unwrap_or(to);
            input
                .tags
                .iter()
                .filter(|t| t.as_str() == wanted)
                .find_map(|t| Version::parse(t))
                .ok_or_else(|| RollbackError::NoSuchVersion(to.to_owned()))?
        }
    };
    Ok(RollbackPlan {
        restore_tag: restore.tag.clone(),
        version_before: highest.next(),
        version_after: restore.tag,
    })
}
