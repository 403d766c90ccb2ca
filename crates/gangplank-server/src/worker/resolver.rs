//! Digest resolution: container versions registered without a digest, for a registry
//! Gangplank knows, get their tag resolved (HEAD on the manifest) with that registry's
//! credentials. Failures are recorded on the version and retried with backoff, so a registry
//! that is down delays the digest, never the registration.

use std::time::Instant;

use gangplank_core::image::{DOCKER_HUB, ImageReference};
use gangplank_core::registry::longest_prefix_match;
use gangplank_oci::{Client, Credentials, OciError};
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
    let registries = state
        .store
        .list_registries(org_id)
        .await
        .map_err(|e| e.to_string())?;
    let prefixes: Vec<String> = registries.iter().map(|r| r.registry.clone()).collect();
    let image = format!("{name}:{version}");
    let index = longest_prefix_match(&image, &prefixes).ok_or("no registry matches the image")?;
    let registry = &registries[index];
    let reference = ImageReference::parse(&image)?;
    let creds = crate::registry_login::login(state, org_id, registry)
        .await
        .map_err(|e| e.to_string())?
        .map(|login| Credentials {
            username: login.username,
            password: login.password,
        });
    // Docker Hub's API lives on registry-1.docker.io.
    let host = match reference.repository.domain() {
        DOCKER_HUB => "registry-1.docker.io",
        other => other,
    };
    let client = Client::new(state.outbound().clone(), host, creds, registry.insecure);
    let started = Instant::now();
    let digest = client
        .resolve_digest(reference.repository.path(), version)
        .await;
    let outcome = match &digest {
        Ok(_) => "ok",
        Err(error) => oci_outcome(error),
    };
    crate::metrics::registry_call(
        org_id,
        &registry.id,
        "resolve_digest",
        outcome,
        started.elapsed(),
    );
    digest.map_err(|e| e.to_string())
}

/// A failed registry call's outcome label: what went wrong, in a few fixed words.
fn oci_outcome(error: &OciError) -> &'static str {
    match error {
        OciError::Transport { .. } => "unreachable",
        OciError::Auth { .. } => "auth_failed",
        OciError::Status { status: 404, .. } => "not_found",
        OciError::Status {
            status: 401 | 403, ..
        } => "denied",
        OciError::Status { .. } => "http_error",
        OciError::Invalid { .. } => "invalid_answer",
    }
}
