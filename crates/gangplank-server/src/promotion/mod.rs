//! Image promotion and rollback against real registries: copy by digest, number the image
//! being replaced, move the live tag, each tag write journalled before and after it runs
//! (`journal`), so a step that crashed anywhere resumes without doubling or skipping a
//! version. The decisions are `gangplank_core::promotion`'s; the records are the store's.

pub mod journal;
pub mod promote;
pub mod registry;
pub mod rollback;

#[cfg(test)]
mod tests;

/// How long a promotion's repository lock lasts before another writer may take it over (a
/// crashed holder's lock lapses; a live one renews it at each write).
pub const LOCK_LEASE_MS: i64 = 15 * 60 * 1000;

/// How long a recorded expected registry write suppresses the trigger of its registration.
pub const EXPECTED_WRITE_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// Why a promotion or rollback did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromotionError {
    /// The live tag moved since it was read: nothing more is written (never archive a digest
    /// that was not seen).
    #[error("drift: {tag} points at {found}, expected {expected}")]
    Drift {
        tag: String,
        expected: String,
        found: String,
    },
    /// Another run or rollback holds the repository.
    #[error("repository {image} is held by {holder}")]
    Locked { image: String, holder: String },
    /// Automatic promotion into the repository is held since a manual rollback.
    #[error(
        "automatic promotion into {image}:{tag} is held since rollback {promotion_id}; resume it to promote again"
    )]
    Held {
        image: String,
        tag: String,
        promotion_id: String,
    },
    /// The request cannot be carried out as asked (no version to roll back to, bad input).
    #[error("{0}")]
    Refused(String),
    /// The caller's app did not put the live image there (another app's repository).
    #[error("{0}")]
    Forbidden(String),
    /// A registry or the store failed: worth retrying.
    #[error("{0}")]
    Unavailable(String),
}

/// Takes (or renews) the lock of `image` for `holder`, for another `LOCK_LEASE_MS`: called
/// before each stage and registry write, so a long promotion keeps it; `Locked` when another
/// writer holds it (ours lapsed and was taken over).
pub async fn lock(
    store: &gangplank_store::Store,
    org_id: &str,
    image: &str,
    holder: &str,
    run_id: &str,
) -> Result<(), PromotionError> {
    let now = gangplank_store::now_millis();
    if store
        .lock_repository(org_id, image, holder, run_id, now, now + LOCK_LEASE_MS)
        .await?
    {
        return Ok(());
    }
    Err(locked(store, org_id, image, now).await)
}

/// The error for `image` found locked by another writer, naming it when it can.
pub async fn locked(
    store: &gangplank_store::Store,
    org_id: &str,
    image: &str,
    now: i64,
) -> PromotionError {
    let holder = match store.repository_lock(org_id, image, now).await {
        Ok(lock) => lock.map_or_else(|| "another writer".to_owned(), |l| l.holder),
        Err(error) => return error.into(),
    };
    PromotionError::Locked {
        image: image.to_owned(),
        holder,
    }
}

impl From<gangplank_store::StoreError> for PromotionError {
    fn from(error: gangplank_store::StoreError) -> Self {
        PromotionError::Unavailable(error.to_string())
    }
}

impl From<gangplank_oci::OciError> for PromotionError {
    /// A manifest the client does not copy fails the step (asking again cannot help); any
    /// other registry failure is worth retrying.
    fn from(error: gangplank_oci::OciError) -> Self {
        match error {
            gangplank_oci::OciError::Unsupported { .. } => {
                PromotionError::Refused(error.to_string())
            }
            _ => PromotionError::Unavailable(error.to_string()),
        }
    }
}
