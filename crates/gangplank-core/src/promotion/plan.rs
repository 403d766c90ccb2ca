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
    /// `to` is not a version tag at all (`latest`, `rolled-back-0.3`, `1`).
    #[error("{0} is not a version: name a version tag, MAJOR.MINOR such as 0.14")]
    NotAVersion(String),
    /// `to` is a version, but no tag of the repository spells it; the versions it has.
    #[error("the repository has no version {to} ({})", shown_versions(.versions))]
    NoSuchVersion { to: String, versions: Vec<String> },
    /// `to` names the image live now: a rollback to it would change nothing.
    #[error("version {0} is live already")]
    Live(String),
}

/// At most this many versions are named in a refusal (the highest ones).
const SHOWN_VERSIONS: usize = 10;

fn shown_versions(versions: &[String]) -> String {
    match versions.len() {
        0 => "it has none".to_owned(),
        n if n > SHOWN_VERSIONS => format!(
            "its versions: …, {}",
            versions[n - SHOWN_VERSIONS..].join(", ")
        ),
        _ => format!("its versions: {}", versions.join(", ")),
    }
}

/// The version tag a rollback's `to` names (`0.14`, or `v0.14`), checked against every tag of
/// the repository and `live_version`, the version the live image is live as (the live image
/// carries no version tag of its own). A tag that exists is returned even when it is
/// `live_version`: only its digest can tell whether it is the live image (a registry that
/// refused to drop a version tag leaves it on the live image), and the caller compares that.
pub fn rollback_to(to: &str, tags: &[String], live_version: &str) -> Result<String, RollbackError> {
    let wanted = to.strip_prefix('v').unwrap_or(to);
    if Version::parse(wanted).is_none() {
        return Err(RollbackError::NotAVersion(to.to_owned()));
    }
    if tags.iter().any(|t| t == wanted) {
        return Ok(wanted.to_owned());
    }
    if wanted == live_version.strip_prefix('v').unwrap_or(live_version) {
        return Err(RollbackError::Live(wanted.to_owned()));
    }
    let mut versions: Vec<Version> = tags.iter().filter_map(|t| Version::parse(t)).collect();
    versions.sort();
    Err(RollbackError::NoSuchVersion {
        to: to.to_owned(),
        versions: versions.into_iter().map(|v| v.tag).collect(),
    })
}

/// Plans a rollback (the seed's `rollback.sh`, with `--to`).
pub fn plan_rollback(input: &RollbackInput<'_>) -> Result<RollbackPlan, RollbackError> {
    let highest = Version::highest(input.tags).ok_or(RollbackError::NothingToRollBack)?;
    let version_before = highest.next();
    let restore_tag = match input.to {
        None => highest.tag,
        Some(to) => rollback_to(to, input.tags, &version_before)?,
    };
    Ok(RollbackPlan {
        restore_tag: restore_tag.clone(),
        version_before,
        version_after: restore_tag,
    })
}
