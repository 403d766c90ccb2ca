//! Whether a compose service already runs the image a deployment wants: the one rule the agent
//! uses to answer `unchanged` (and skip compose) and the server uses to call a workload in sync.
//! The agent's own pin must name the image, and the container must run it, be running and not
//! be unhealthy; a digest-pinned image must match the container's image digest, so a tag moved
//! by hand, or an image replaced under the same reference, does not count as running it.

use crate::image::ImageReference;

/// What the agent observed of one service, borrowed from its `GET /state` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservedService<'a> {
    /// The image the agent's override file pins.
    pub pinned: Option<&'a str>,
    /// The reference the running container was created from.
    pub running_image: Option<&'a str>,
    /// The container image's repository digests (`repo@sha256:…`).
    pub running_digests: &'a [String],
    /// `running`, `exited`, …, or `missing`.
    pub state: &'a str,
    /// `healthy`, `unhealthy`, `starting` or `none`.
    pub health: &'a str,
}

/// Why a service does not run the desired image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Divergence {
    /// No container exists for the service.
    Missing,
    /// The agent's pin names another image (or none).
    NotPinned {
        pinned: Option<String>,
    },
    /// The container runs another image.
    OtherImage {
        running: Option<String>,
    },
    /// The container is not running (`exited`, `restarting`, …).
    NotRunning {
        state: String,
    },
    Unhealthy,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Divergence::Missing => write!(f, "no container runs the service"),
            Divergence::NotPinned { pinned: None } => {
                write!(f, "the agent has not pinned an image")
            }
            Divergence::NotPinned { pinned: Some(p) } => write!(f, "the agent pins {p}"),
            Divergence::OtherImage { running: None } => {
                write!(f, "the container's image is unknown")
            }
            Divergence::OtherImage { running: Some(r) } => write!(f, "the container runs {r}"),
            Divergence::NotRunning { state } => write!(f, "the container is {state}"),
            Divergence::Unhealthy => write!(f, "the container is unhealthy"),
        }
    }
}

/// `Ok(())` when `observed` runs `desired`; otherwise the first reason it does not.
pub fn check_runs(desired: &str, observed: &ObservedService<'_>) -> Result<(), Divergence> {
    if observed.state == "missing" {
        return Err(Divergence::Missing);
    }
    if observed.pinned != Some(desired) {
        return Err(Divergence::NotPinned {
            pinned: observed.pinned.map(str::to_owned),
        });
    }
    if !container_runs(desired, observed) {
        return Err(Divergence::OtherImage {
            running: observed.running_image.map(str::to_owned),
        });
    }
    if observed.state != "running" {
        return Err(Divergence::NotRunning {
            state: observed.state.to_owned(),
        });
    }
    if observed.health == "unhealthy" {
        return Err(Divergence::Unhealthy);
    }
    Ok(())
}

/// The container was created from `desired`, and, when `desired` names a digest, its image has
/// that digest in the same repository.
fn container_runs(desired: &str, observed: &ObservedService<'_>) -> bool {
    if observed.running_image != Some(desired) {
        return false;
    }
    let Ok(wanted) = ImageReference::parse(desired) else {
        return false;
    };
    let Some(digest) = wanted.digest else {
        // A tag alone: the reference is all there is to compare.
        return true;
    };
    observed.running_digests.iter().any(|have| {
        ImageReference::parse(have).is_ok_and(|have| {
            have.repository == wanted.repository && have.digest.as_deref() == Some(&digest)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const E: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn observed<'a>(
        pinned: Option<&'a str>,
        running: Option<&'a str>,
        digests: &'a [String],
        state: &'a str,
        health: &'a str,
    ) -> ObservedService<'a> {
        ObservedService {
            pinned,
            running_image: running,
            running_digests: digests,
            state,
            health,
        }
    }

    #[test]
    fn a_service_runs_an_image_only_when_pin_container_digest_and_state_agree() {
        let desired = format!("127.0.0.1:5000/app:v1@{D}");
        let same = vec![format!("127.0.0.1:5000/app@{D}")];
        let other = vec![format!("127.0.0.1:5000/app@{E}")];
        let elsewhere = vec![format!("127.0.0.1:5001/app@{D}")];
        let d = desired.as_str();
        let table: Vec<(ObservedService<'_>, Result<(), Divergence>)> = vec![
            (observed(Some(d), Some(d), &same, "running", "none"), Ok(())),
            (
                observed(Some(d), Some(d), &same, "running", "healthy"),
                Ok(()),
            ),
            (
                observed(Some(d), Some(d), &same, "running", "starting"),
                Ok(()),
            ),
            (
                observed(Some(d), Some(d), &same, "running", "unhealthy"),
                Err(Divergence::Unhealthy),
            ),
            (
                observed(Some(d), Some(d), &same, "exited", "none"),
                Err(Divergence::NotRunning {
                    state: "exited".into(),
                }),
            ),
            (
                observed(None, None, &[], "missing", "none"),
                Err(Divergence::Missing),
            ),
            (
                observed(None, Some(d), &same, "running", "none"),
                Err(Divergence::NotPinned { pinned: None }),
            ),
            (
                observed(Some("app:v0"), Some(d), &same, "running", "none"),
                Err(Divergence::NotPinned {
                    pinned: Some("app:v0".into()),
                }),
            ),
            (
                observed(Some(d), Some("app:v0"), &same, "running", "none"),
                Err(Divergence::OtherImage {
                    running: Some("app:v0".into()),
                }),
            ),
            (
                observed(Some(d), Some(d), &other, "running", "none"),
                Err(Divergence::OtherImage {
                    running: Some(d.into()),
                }),
            ),
            (
                observed(Some(d), Some(d), &elsewhere, "running", "none"),
                Err(Divergence::OtherImage {
                    running: Some(d.into()),
                }),
            ),
            (
                observed(Some(d), Some(d), &[], "running", "none"),
                Err(Divergence::OtherImage {
                    running: Some(d.into()),
                }),
            ),
        ];
        for (observed, expected) in table {
            assert_eq!(check_runs(d, &observed), expected, "{observed:?}");
        }
    }

    #[test]
    fn a_tag_without_digest_compares_by_reference() {
        let o = observed(Some("app:v1"), Some("app:v1"), &[], "running", "none");
        assert_eq!(check_runs("app:v1", &o), Ok(()));
        assert!(check_runs("app:v2", &o).is_err());
    }
}
