//! `GET …/envs/{env}/runtime`: what the environment's hosts run, as the observer last saw it,
//! against the environment's current set.

use axum::Json;
use axum::extract::{Path, State};
use gangplank_api::runtime::{EnvRuntime, WorkloadRuntime};
use gangplank_core::access::Action;
use gangplank_core::runtime::DriftState;
use gangplank_core::timestamp::format_millis;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_runtime))
}

/// What each workload of the environment runs (per its agent's last `GET /state`) beside what
/// its current set says it should, and whether the environment is in sync. Humanitec serves its
/// runtime view at this path, but its body is Kubernetes-specific; this shape is Gangplank's.
/// An environment without a compose target has no workloads here and `in_sync: null`.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/envs/{env}/runtime", tag = "environments", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path)), responses((status = 200, body = EnvRuntime)))]
async fn get_runtime(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env)): Path<(String, String, String)>,
) -> Result<Json<EnvRuntime>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    let (kind, _) = state.store.env_target(&org, &app, &env).await?;
    if kind != "compose" {
        // Not observed (any more): what was seen under an earlier compose target is stale.
        return Ok(Json(EnvRuntime {
            env_id: env,
            in_sync: None,
            drifted_since: None,
            checked_at: None,
            workloads: Vec::new(),
        }));
    }
    let runtime = state.store.env_runtime(&org, &app, &env).await?;
    // Drift is what reachable hosts showed; "in sync" also needs every agent to have answered.
    let all_reachable = runtime.workloads.iter().all(|w| w.runtime.reachable);
    let (in_sync, drifted_since) = match runtime.drift {
        DriftState::Unknown => (None, None),
        DriftState::InSync => (all_reachable.then_some(true), None),
        DriftState::Drifted { since, .. } => (Some(false), Some(format_millis(since))),
    };
    let when = |ms: i64| (ms > 0).then(|| format_millis(ms));
    Ok(Json(EnvRuntime {
        env_id: env,
        in_sync,
        drifted_since,
        checked_at: when(runtime.checked_at),
        workloads: runtime
            .workloads
            .into_iter()
            .map(|w| WorkloadRuntime {
                workload: w.runtime.workload,
                agent: w.runtime.agent,
                project: w.runtime.project,
                service: w.runtime.service,
                desired_image: w.runtime.desired_image,
                running_image: w.runtime.running_image,
                health: w.runtime.health,
                state: w.runtime.state,
                in_sync: w.runtime.in_sync,
                reason: w.runtime.reason,
                last_seen_at: when(w.last_seen_at),
                agent_reachable: w.runtime.reachable,
            })
            .collect(),
    }))
}
