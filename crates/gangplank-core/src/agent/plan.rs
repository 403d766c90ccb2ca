//! Which compose services a deployment sends to an agent: each mapped workload whose image
//! differs from the set the environment last ran successfully (all of them without one).

use std::collections::BTreeMap;

use crate::set::Set;

/// One request to send: run `image` as `service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUpdate {
    /// The mapping key: `workload` or `workload/container`.
    pub workload: String,
    pub service: String,
    pub image: String,
}

/// A mapping that the set cannot satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanProblem {
    pub workload: String,
    pub message: String,
}

/// The image a mapping key names in `set`: `workload/container`, or `workload` when it has
/// one container (or one named like the workload). `Ok(None)` when the workload is absent.
pub fn mapped_image(set: &Set, key: &str) -> Result<Option<String>, String> {
    let (workload, container) = match key.split_once('/') {
        Some((w, c)) => (w, Some(c)),
        None => (key, None),
    };
    let images: Vec<_> = set
        .container_images()
        .into_iter()
        .filter(|c| c.workload == workload)
        .collect();
    if images.is_empty() {
        return Ok(None);
    }
    let chosen = match container {
        Some(name) => images.iter().find(|c| c.container == name),
        None if images.len() == 1 => images.first(),
        None => images.iter().find(|c| c.container == workload),
    };
    match chosen {
        Some(c) => Ok(Some(c.image.clone())),
        None if container.is_some() => Err(format!("workload {workload} has no container {key}")),
        None => Err(format!(
            "workload {workload} has {} containers: map {workload}/<container> to the service",
            images.len()
        )),
    }
}

/// The updates for one agent's `services` mapping (key → service).
pub fn plan_updates(
    set: &Set,
    previous: Option<&Set>,
    services: &BTreeMap<String, String>,
) -> (Vec<ServiceUpdate>, Vec<PlanProblem>) {
    let mut updates = Vec::new();
    let mut problems = Vec::new();
    for (key, service) in services {
        match mapped_image(set, key) {
            Ok(Some(image)) => {
                let unchanged = previous
                    .and_then(|p| mapped_image(p, key).ok().flatten())
                    .is_some_and(|was| was == image);
                if !unchanged {
                    updates.push(ServiceUpdate {
                        workload: key.clone(),
                        service: service.clone(),
                        image,
                    });
                }
            }
            // Not deployed in this set (yet): nothing to run.
            Ok(None) => {}
            Err(message) => problems.push(PlanProblem {
                workload: key.clone(),
                message,
            }),
        }
    }
    (updates, problems)
}
