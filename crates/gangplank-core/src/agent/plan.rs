//! Which compose services a deployment sends to an agent: every mapped workload of the set,
//! whatever ran before. The agent compares with what its project runs and acts only on the
//! difference (level-triggered), so a rollback, a redeploy or a wiped host all converge.

use std::collections::BTreeMap;

use crate::set::Set;

/// One service of the desired state: run `image` as `service`.
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

/// The desired state for one agent's `services` mapping (key → service): every mapped workload
/// the set holds, and the mappings it cannot satisfy. Workloads absent from the set are not
/// deployed (yet), so they are neither sent nor a problem.
pub fn plan_services(
    set: &Set,
    services: &BTreeMap<String, String>,
) -> (Vec<ServiceUpdate>, Vec<PlanProblem>) {
    let mut desired = Vec::new();
    let mut problems = Vec::new();
    for (key, service) in services {
        match mapped_image(set, key) {
            Ok(Some(image)) => desired.push(ServiceUpdate {
                workload: key.clone(),
                service: service.clone(),
                image,
            }),
            Ok(None) => {}
            Err(message) => problems.push(PlanProblem {
                workload: key.clone(),
                message,
            }),
        }
    }
    (desired, problems)
}
