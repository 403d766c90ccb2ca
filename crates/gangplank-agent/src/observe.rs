//! What a compose project actually runs, read from the engine: per service, the image the
//! override pins, the running container's image reference and repository digests, its state,
//! health and start time. Three docker commands per project, whatever its size (`ps`, one
//! `inspect` of every container, one `image inspect` of their images), so observing costs the
//! same for one service or fifty.

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
    let ps = docker
        .docker(&["ps", "-a", "-q", "--filter", &label], None)
        .await;
    if !ps.ok {
        return Err(ObserveError(format!(
            "docker ps failed: {}",
            ps.output.trim()
        )));
    }
    let ids: Vec<&str> = ps.output.split_whitespace().collect();
    let containers = if ids.is_empty() {
        Vec::new()
    } else {
        let mut args = vec!["inspect"];
        args.extend(&ids);
        inspect_json(docker, &args).await?
    };
    // Newest container per service (a service being replaced may briefly have two).
    let mut by_service: BTreeMap<String, &Value> = BTreeMap::new();
    for container in &containers {
        let Some(service) = container
            .pointer("/Config/Labels/com.docker.compose.service")
            .and_then(Value::as_str)
        else {
            continue;
        };
        let newer = by_service
            .get(service)
            .is_none_or(|known| text(container, "/Created") > text(known, "/Created"));
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
    serde_json::from_str(&ran.output)
        .map_err(|e| ObserveError(format!("docker {} printed unreadable JSON: {e}", args[0])))
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
