//! Digest resolution: container versions registered without a digest, for a registry
//! Gangplank knows, get their tag resolved (HEAD on the manifest) with that registry's
//! credentials. Failures are recorded on the version and retried with backoff, so a registry
//! that is down delays the digest, never the registration.

use std::time::Instant;

use gangplank_core::image::ImageReference;
use gangplank_oci::OciError;
use gangplank_store::ToResolve;

use crate::state::AppState;

/// The longest wait between attempts.
const MAX_BACKOFF_MS: i64 = 60 * 60 * 1000;

pub async fn run(state: AppState) {
    loop {
        let now = gangplank_store::now_millis();
        let due = match state.store.versions_to_resolve(now, 32).await {
            Ok(due) => due,
            Err(error) => {
                tracing::error!(%error, "listing versions to resolve failed");
                super::idle(&state.wake.resolver, None).await;
                continue;
            }
        };
        if due.is_empty() {
            let next = state.store.next_resolution_due().await.ok().flatten();
            super::idle(&state.wake.resolver, next).await;
            continue;
        }
        for item in due {
            attempt(&state, &item).await;
        }
    }
}

/// Resolves one version and records the outcome; returns the digest when it worked.
pub async fn attempt(state: &AppState, item: &ToResolve) -> Option<String> {
    let outcome = resolve(state, &item.org_id, &item.name, &item.version).await;
    crate::metrics::digest_resolution(outcome.is_ok());
    let recorded = match &outcome {
        Ok(digest) => Ok(digest.clone()),
        Err(error) => {
            let backoff = (5_000_i64 << item.attempts.clamp(0, 20)).min(MAX_BACKOFF_MS);
            Err((error.clone(), gangplank_store::now_millis() + backoff))
        }
    };
    if let Err(error) = state.store.record_resolution(&item.id, recorded).await {
        tracing::error!(%error, version = %item.id, "recording a digest resolution failed");
    }
    outcome.ok()
}

/// The digest `name:version` points at, asked of the registry whose prefix matches.
pub(crate) async fn resolve(
    state: &AppState,
    org_id: &str,
    name: &str,
    version: &str,
) -> Result<String, String> {
    let reference = ImageReference::parse(&format!("{name}:{version}"))?;
    let opened = crate::registry_login::client_for(state, org_id, &reference.repository)
        .await
        .map_err(|e| match e {
            // The resolver's record keeps its own short wording for this case.
            crate::registry_login::ClientError::NoRegistry(_) => {
                "no registry matches the image".to_owned()
            }
            other => other.to_string(),
        })?;
    let started = Instant::now();
    let digest = opened
        .client
        .resolve_digest(reference.repository.path(), version)
        .await;
    let outcome = match &digest {
        Ok(_) => "ok",
        Err(error) => oci_outcome(error),
    };
    crate::metrics::registry_call(
        org_id,
        &opened.registry_id,
        "resolve_digest",
        outcome,
        started.elapsed(),
    );
    digest.map_err(|e| e.to_string())
}

/// A failed registry call's outcome label: what went wrong, in a few fixed words.
pub(crate) fn oci_outcome(error: &OciError) -> &'static str {
    match error {
        OciError::Transport { .. } => "unreachable",
        OciError::Auth { .. } => "auth_failed",
        OciError::Status { status: 404, .. } => "not_found",
        OciError::Status {
            status: 401 | 403, ..
        } => "denied",
        OciError::Status { .. } => "http_error",
        // Resolving reads no manifest body, so it never meets an unsupported one.
        OciError::Invalid { .. } | OciError::Unsupported { .. } => "invalid_answer",
    }
}
