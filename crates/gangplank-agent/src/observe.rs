//! What a compose project actually runs, read from the engine: per service, the image the
//! override pins, the running container's image reference and repository digests, its state,
//! health and start time. Three docker commands per project, whatever its size (`ps`, one
//! `inspect` of every container, one `image inspect` of their images), so observing costs the
//! same for one service or fifty.
//!
//! Containers come and go while a project is deployed: one listed by `ps` may be gone by the
//! `inspect`. Then `ps` and `inspect` are run once more, and if that races too, what `inspect`
//! found is used (a vanished container runs nothing), so an observation during a deployment
//! is not an error. One-off containers (`docker compose run`) are not the service's.

use std::collections::BTreeMap;

use gangplank_api::agent::ServiceState;
use gangplank_core::agent::override_image;
use serde_json::Value;

use crate::docker::Docker;
use crate::project::Project;

/// Why a project could not be observed (the engine did not answer).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ObserveError(String);

/// Every service of `project` the agent may deploy, sorted by name; a service without a
/// container is `missing`.
pub async fn observe(
    docker: &Docker,
    project: &Project,
) -> Result<Vec<ServiceState>, ObserveError> {
    let label = format!("label=com.docker.compose.project={}", project.name);
    let mut containers = Vec::new();
    for attempt in 0..2 {
        let ps = docker
            .docker(
                &[
                    "ps",
                    "-a",
                    "-q",
                    "--filter",
                    &label,
                    "--filter",
                    "label=com.docker.compose.oneoff=False",
                ],
                None,
            )
            .await;
        if !ps.ok {
            return Err(ObserveError(format!(
                "docker ps failed: {}",
                ps.output.trim()
            )));
        }
        let ids: Vec<&str> = ps.stdout.split_whitespace().collect();
        if ids.is_empty() {
            containers.clear();
            break;
        }
        let mut args = vec!["inspect"];
        args.extend(&ids);
        let ran = docker.docker(&args, None).await;
        if ran.ok {
            containers = parse_inspect(&ran.stdout)?;
            break;
        }
        // Some container vanished between `ps` and `inspect` (or the engine failed): what
        // was found is on stdout; without it, the engine did not answer.
        let found = serde_json::from_str::<Vec<Value>>(&ran.stdout)
            .map_err(|_| ObserveError(format!("docker inspect failed: {}", ran.output.trim())))?;
        tracing::debug!(attempt, problem = %ran.output.trim(), "a container vanished while observed");
        containers = found;
    }
    // Newest container per service (a service being replaced may briefly have two).
    let mut by_service: BTreeMap<String, &Value> = BTreeMap::new();
    for container in &containers {
        let Some(service) = container
            .pointer("/Config/Labels/com.docker.compose.service")
            .and_then(Value::as_str)
        else {
            continue;
        };
        let newer = by_service.get(service).is_none_or(|known| {
            created_after(&text(container, "/Created"), &text(known, "/Created"))
        });
        if newer {
            by_service.insert(service.to_owned(), container);
        }
    }
    let image_ids: Vec<String> = {
        let mut ids: Vec<String> = by_service.values().map(|c| text(c, "/Image")).collect();
        ids.retain(|id| !id.is_empty());
        ids.sort();
        ids.dedup();
        ids
    };
    let mut digests: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if !image_ids.is_empty() {
        let mut args = vec!["image", "inspect"];
        args.extend(image_ids.iter().map(String::as_str));
        // An image removed since its container started is not an error: it has no digests.
        for image in inspect_json(docker, &args).await.unwrap_or_default() {
            let repo_digests = image
                .get("RepoDigests")
                .and_then(Value::as_array)
                .map(|all| {
                    all.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            digests.insert(text(&image, "/Id"), repo_digests);
        }
    }
    let overrides = project.read_override();
    Ok(project
        .services
        .iter()
        .map(|service| {
            let pinned_image = override_image(&overrides, service).map(str::to_owned);
            match by_service.get(service) {
                None => ServiceState {
                    service: service.clone(),
                    pinned_image,
                    state: "missing".to_owned(),
                    health: "none".to_owned(),
                    ..ServiceState::default()
                },
                Some(container) => {
                    let health = text(container, "/State/Health/Status");
                    ServiceState {
                        service: service.clone(),
                        pinned_image,
                        running_image: Some(text(container, "/Config/Image"))
                            .filter(|s| !s.is_empty()),
                        running_digests: digests
                            .get(&text(container, "/Image"))
                            .cloned()
                            .unwrap_or_default(),
                        state: text(container, "/State/Status"),
                        health: if health.is_empty() {
                            "none".to_owned()
                        } else {
                            health
                        },
                        started_at: Some(text(container, "/State/StartedAt"))
                            .filter(|s| !s.is_empty() && !s.starts_with("0001-")),
                        last_deploy_id: None,
                        last_outcome: None,
                    }
                }
            }
        })
        .collect())
}

async fn inspect_json(docker: &Docker, args: &[&str]) -> Result<Vec<Value>, ObserveError> {
    let ran = docker.docker(args, None).await;
    if !ran.ok {
        return Err(ObserveError(format!(
            "docker {} failed: {}",
            args.first().copied().unwrap_or_default(),
            ran.output.trim()
        )));
    }
    parse_inspect(&ran.stdout)
}

fn parse_inspect(stdout: &str) -> Result<Vec<Value>, ObserveError> {
    serde_json::from_str(stdout)
        .map_err(|e| ObserveError(format!("docker inspect printed unreadable JSON: {e}")))
}

/// Whether a container created at `a` is newer than one created at `b` (the engine's RFC 3339
/// times, nanoseconds and all, trailing zeros trimmed): compared as instants, not as text;
/// an unreadable time is older than any readable one.
fn created_after(a: &str, b: &str) -> bool {
    let key = |t: &str| {
        (
            gangplank_core::timestamp::parse_rfc3339_millis(t).unwrap_or(i64::MIN),
            // Within one millisecond (two containers of one `up`), the nanoseconds.
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_or(i128::MIN, time::OffsetDateTime::unix_timestamp_nanos),
        )
    };
    key(a) > key(b)
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_newer_container_is_the_later_instant() {
        let cases = [
            (
                "2026-01-01T10:00:00.5Z",
                "2026-01-01T10:00:00.123456789Z",
                true,
            ),
            // Text order would say otherwise: "10:00:01Z" > "10:00:01.9Z".
            ("2026-01-01T10:00:01.9Z", "2026-01-01T10:00:01Z", true),
            ("2026-01-01T10:00:01Z", "2026-01-01T10:00:01.9Z", false),
            ("2026-01-01T12:00:00+02:00", "2026-01-01T11:00:00Z", false),
            (
                "2026-01-01T10:00:00.000000002Z",
                "2026-01-01T10:00:00.000000001Z",
                true,
            ),
            (
                "2026-01-01T10:00:00.00011Z",
                "2026-01-01T10:00:00.0009Z",
                false,
            ),
            ("2026-01-01T10:00:00Z", "garbage", true),
            ("garbage", "2026-01-01T10:00:00Z", false),
            ("2026-01-01T10:00:00Z", "2026-01-01T10:00:00Z", false),
        ];
        for (a, b, newer) in cases {
            assert_eq!(super::created_after(a, b), newer, "{a} vs {b}");
        }
    }
}
