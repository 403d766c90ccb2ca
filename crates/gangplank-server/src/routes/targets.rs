//! An environment's deploy target (`none` or `compose` with its agents), and the JWKS agents
//! verify the server's requests with. The wire `EnvTarget` is validated and parsed into the
//! typed `TargetConfig` here, once; the store keeps `TargetConfig`'s JSON, which each
//! deployment captures when it is created.

use axum::Json;
use axum::extract::{Path, State};
use gangplank_api::agent::{AgentBinding as WireBinding, EnvTarget};
use gangplank_core::access::Action;
use gangplank_core::limits;
use gangplank_core::target::{AgentBinding, ComposeConfig, TargetConfig};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_target, put_target))
}

/// The public keys agents verify the server's requests with (no authentication).
pub async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.keys.jwks.clone())
}

/// The environment's deploy target.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/envs/{env}/target", tag = "environments", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path)), responses((status = 200, body = EnvTarget)))]
async fn get_target(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env)): Path<(String, String, String)>,
) -> Result<Json<EnvTarget>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    let (kind, config) = state.store.env_target(&org, &app, &env).await?;
    let target = TargetConfig::from_stored(&kind, &config)
        .map_err(|e| ApiError::Internal(format!("environment {env}'s stored target: {e}")))?;
    Ok(Json(wire(&target)))
}

/// Sets where the environment's deployments are applied: `none` (recorded only) or `compose`
/// (its agents, and which workload runs as which compose service).
#[utoipa::path(put, path = "/orgs/{org}/apps/{app}/envs/{env}/target", tag = "environments", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path)), request_body = EnvTarget, responses((status = 200, body = EnvTarget), (status = 400, description = "a `compose` target needs agents with valid URLs and services; limits are exceeded")))]
async fn put_target(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env)): Path<(String, String, String)>,
    ApiJson(target): ApiJson<EnvTarget>,
) -> Result<Json<EnvTarget>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ManageEnvs)?;
    let target = parse(target)?;
    state
        .store
        .set_env_target(&org, &app, &env, target.kind(), &target.to_stored())
        .await?;
    Ok(Json(wire(&target)))
}

/// The typed target of a wire one, or the rule it breaks.
fn parse(target: EnvTarget) -> Result<TargetConfig, ApiError> {
    validate(&target)?;
    Ok(match target.kind.as_str() {
        "compose" => TargetConfig::Compose(ComposeConfig {
            agents: target
                .agents
                .into_iter()
                .map(|a| AgentBinding {
                    url: a.url,
                    project: a.project,
                    services: a.services,
                })
                .collect(),
            timeout_seconds: target.timeout_seconds,
            auto_heal: target.auto_heal,
            auto_heal_after_seconds: target.auto_heal_after_seconds,
        }),
        _ => TargetConfig::None,
    })
}

/// The wire form of a typed target.
fn wire(target: &TargetConfig) -> EnvTarget {
    match target {
        TargetConfig::None => EnvTarget {
            kind: "none".to_owned(),
            ..EnvTarget::default()
        },
        TargetConfig::Compose(compose) => EnvTarget {
            kind: "compose".to_owned(),
            agents: compose
                .agents
                .iter()
                .map(|a| WireBinding {
                    url: a.url.clone(),
                    project: a.project.clone(),
                    services: a.services.clone(),
                })
                .collect(),
            timeout_seconds: compose.timeout_seconds,
            auto_heal: compose.auto_heal,
            auto_heal_after_seconds: compose.auto_heal_after_seconds,
        },
    }
}

fn validate(target: &EnvTarget) -> Result<(), ApiError> {
    match target.kind.as_str() {
        "none" => {
            if !target.agents.is_empty() {
                return Err(ApiError::invalid(
                    "agents",
                    "only a compose target has agents",
                ));
            }
            if target.auto_heal {
                return Err(ApiError::invalid(
                    "auto_heal",
                    "only a compose target is observed and healed",
                ));
            }
        }
        "compose" => {
            if target.agents.is_empty() {
                return Err(ApiError::invalid(
                    "agents",
                    "a compose target needs at least one agent",
                ));
            }
        }
        other => {
            return Err(ApiError::invalid(
                "type",
                format!("must be none or compose, not {other:?}"),
            ));
        }
    }
    if let Some(seconds) = target.timeout_seconds {
        limits::check_target_timeout(seconds)?;
    }
    if let Some(seconds) = target.auto_heal_after_seconds {
        limits::check_auto_heal_after(seconds)?;
    }
    limits::check_count("agents", target.agents.len(), limits::MAX_TARGET_AGENTS)?;
    for (i, agent) in target.agents.iter().enumerate() {
        limits::check_len(&format!("agents[{i}].url"), &agent.url, limits::MAX_URL_LEN)?;
        limits::check_count(
            &format!("agents[{i}].services"),
            agent.services.len(),
            limits::MAX_AGENT_SERVICES,
        )?;
        limits::check_opt_len(
            &format!("agents[{i}].project"),
            agent.project.as_deref(),
            limits::MAX_SERVICE_NAME_LEN,
        )?;
        for (workload, service) in &agent.services {
            let field = format!("agents[{i}].services");
            limits::check_len(&field, workload, limits::MAX_SERVICE_NAME_LEN)?;
            limits::check_len(&field, service, limits::MAX_SERVICE_NAME_LEN)?;
        }
        let url = reqwest::Url::parse(&agent.url)
            .map_err(|e| ApiError::invalid(&format!("agents[{i}].url"), e))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ApiError::invalid(
                &format!("agents[{i}].url"),
                "must be an http:// or https:// URL",
            ));
        }
        if agent.services.is_empty() {
            return Err(ApiError::invalid(
                &format!("agents[{i}].services"),
                "map at least one workload to a compose service",
            ));
        }
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        for (workload, service) in &agent.services {
            let parts_ok = workload.split('/').count() <= 2 && workload.split('/').all(name_ok);
            if !parts_ok {
                return Err(ApiError::invalid(
                    &format!("agents[{i}].services"),
                    format!("{workload:?} is not a workload id or workload/container"),
                ));
            }
            if !name_ok(service) {
                return Err(ApiError::invalid(
                    &format!("agents[{i}].services.{workload}"),
                    format!("{service:?} is not a compose service name"),
                ));
            }
        }
        // Two workloads as one service would ask the agent to run two images in one
        // container: the apply names each service once, so one of them would be dropped.
        let mut seen: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
        for (workload, service) in &agent.services {
            if let Some(first) = seen.insert(service, workload) {
                return Err(ApiError::invalid(
                    &format!("agents[{i}].services.{workload}"),
                    format!("compose service {service:?} is already mapped from {first:?}"),
                ));
            }
        }
        if let Some(project) = &agent.project
            && !name_ok(project)
        {
            return Err(ApiError::invalid(
                &format!("agents[{i}].project"),
                "is not a compose project name",
            ));
        }
    }
    Ok(())
}
