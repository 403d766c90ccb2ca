//! What the deploy endpoint and automation share: new IDs, an environment's base set, and
//! the `NewDeploy` record for a target set.

use gangplank_core::delta::DeltaContent;
use gangplank_core::set::Set;
use gangplank_store::{DeltaRow, NewDeploy};

use crate::error::ApiError;

/// `n` random bytes as lower-case hex.
fn random_hex(n: usize) -> String {
    hex::encode(crate::secrets::random_bytes(n))
}

/// A deployment ID: 16 hex characters, like Humanitec's.
pub fn new_deploy_id() -> String {
    random_hex(8)
}

/// A delta ID: 40 hex characters, like Humanitec's.
pub fn new_delta_id() -> String {
    random_hex(20)
}

/// A rule ID: 16 hex characters, like Humanitec's.
pub fn new_rule_id() -> String {
    random_hex(8)
}

/// Parses a stored set; the empty text is the empty set (before the first deployment).
pub fn parse_set(content: &str) -> Result<Set, ApiError> {
    if content.is_empty() {
        return Ok(Set::default());
    }
    serde_json::from_str(content)
        .map_err(|e| ApiError::Internal(format!("a stored set is damaged: {e}")))
}

/// Parses a stored delta's content.
pub fn parse_delta(content: &str) -> Result<DeltaContent, ApiError> {
    serde_json::from_str(content)
        .map_err(|e| ApiError::Internal(format!("a stored delta is damaged: {e}")))
}

/// Where a deployment goes and what it carries.
pub struct DeployPlan<'a> {
    pub org_id: &'a str,
    pub app_id: &'a str,
    pub env_id: &'a str,
    pub from_deploy_id: String,
    /// The repositories the base set runs (to skip rewriting an unchanged index).
    pub base_repositories: Vec<String>,
    pub delta_id: String,
    pub set: Set,
    pub comment: String,
    pub created_by: String,
    pub triggered_by: String,
    /// A delta to store with the deployment (automation's generated ones).
    pub new_delta: Option<DeltaRow>,
}

impl DeployPlan<'_> {
    /// Creates the deployment and its queue row, and wakes the deployer and the delivery
    /// worker (its `deployment.created` deliveries). 409 while another is active.
    pub async fn create(
        self,
        state: &crate::state::AppState,
    ) -> Result<gangplank_store::DeployRow, ApiError> {
        let (org_id, app_id) = (self.org_id, self.app_id);
        let row = state
            .store
            .create_deploy(self.into_new_deploy())
            .await
            .map_err(|e| match e {
                gangplank_store::StoreError::Conflict(message) => ApiError::Conflict(message),
                other => other.into(),
            })?;
        state.wake.deploy.notify_one();
        state.wake.delivery.notify_one();
        state.events.deploy_changed(&row, org_id, app_id);
        Ok(row)
    }

    pub fn into_new_deploy(self) -> NewDeploy {
        let content = serde_json::to_string(&self.set).unwrap_or_default();
        NewDeploy {
            org_id: self.org_id.to_owned(),
            app_id: self.app_id.to_owned(),
            env_id: self.env_id.to_owned(),
            id: new_deploy_id(),
            expected_from_id: self.from_deploy_id,
            delta_id: self.delta_id,
            set_id: self.set.id(),
            repositories: Some(self.set.repositories())
                .filter(|repositories| *repositories != self.base_repositories),
            set_content: content,
            comment: self.comment,
            created_by: self.created_by,
            triggered_by: self.triggered_by,
            new_delta: self.new_delta,
        }
    }
}

/// Starts a deployment in environment `env` of the app `access` was checked for (the caller
/// must be allowed to deploy): the environment's base set with `delta_id` applied, or exactly
/// `set_id`, or (with neither) the base set again, which after a rebase is a rollback. What
/// the API's `POST …/deploys` and the dashboard's roll-back and redeploy buttons share.
pub async fn start(
    state: &crate::state::AppState,
    access: &crate::auth::AppAccess,
    env: &str,
    delta_id: Option<String>,
    set_id: Option<String>,
    comment: String,
) -> Result<gangplank_store::DeployRow, ApiError> {
    access.require(gangplank_core::access::Action::Deploy)?;
    let org = access.org.org_id.as_str();
    let app = access.app.id.as_str();
    let env_row = state
        .store
        .get_env(org, app, env)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no environment {env} in app {app}")))?;
    let base = if env_row.from_deploy_id.is_empty() {
        gangplank_core::set::Set::default()
    } else {
        let from = state
            .store
            .get_deploy(org, app, &env_row.from_deploy_id)
            .await?
            .ok_or_else(|| {
                ApiError::Internal(format!("deployment {} is missing", env_row.from_deploy_id))
            })?;
        parse_set(
            &state
                .store
                .get_set(org, app, &from.set_id)
                .await?
                .unwrap_or_default(),
        )?
    };
    let base_repositories = base.repositories();
    let (delta_id, set) = match (
        delta_id.filter(|d| !d.is_empty()),
        set_id.filter(|s| !s.is_empty()),
    ) {
        (Some(delta_id), _) => {
            let delta = state
                .store
                .get_delta(org, app, &delta_id)
                .await?
                .ok_or_else(|| {
                    ApiError::invalid("delta_id", format!("no delta {delta_id} in app {app}"))
                })?;
            let set = parse_delta(&delta.content)?.apply_to(&base).map_err(|e| {
                ApiError::invalid(
                    "delta_id",
                    format!("the delta does not apply to the environment: {e}"),
                )
            })?;
            (delta_id, set)
        }
        (None, Some(set_id)) => {
            let content = state
                .store
                .get_set(org, app, &set_id)
                .await?
                .ok_or_else(|| {
                    ApiError::invalid("set_id", format!("no set {set_id} in app {app}"))
                })?;
            (String::new(), parse_set(&content)?)
        }
        (None, None) if env_row.from_deploy_id.is_empty() => {
            return Err(ApiError::invalid(
                "delta_id",
                "the environment has no deployment to redeploy; give a delta_id or set_id",
            ));
        }
        (None, None) => (String::new(), base),
    };
    let plan = DeployPlan {
        org_id: org,
        app_id: app,
        env_id: env,
        from_deploy_id: env_row.from_deploy_id,
        base_repositories,
        delta_id,
        set,
        comment,
        created_by: access.org.user_id.clone(),
        triggered_by: access.org.user_id.clone(),
        new_delta: None,
    };
    plan.create(state).await
}

/// Deploys the environment's current set (its newest deployment's, `last_deploy`, as the
/// runtime view and `deploy --redeploy` take it) again: what auto-heal does. 409 while a
/// deployment is active.
pub async fn redeploy_current(
    state: &crate::state::AppState,
    org_id: &str,
    app_id: &str,
    env_id: &str,
    comment: String,
    by: &str,
) -> Result<gangplank_store::DeployRow, ApiError> {
    let env = state
        .store
        .get_env(org_id, app_id, env_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no environment {env_id} in app {app_id}")))?;
    if env.last_deploy_id.is_empty() {
        return Err(ApiError::invalid(
            "delta_id",
            "the environment has no deployment to redeploy",
        ));
    }
    if env.from_deploy_id != env.last_deploy_id {
        // Someone rebased the environment (a rollback being prepared): healing now would
        // deploy a set they are moving away from.
        return Err(ApiError::Conflict(format!(
            "environment {env_id} is rebased on deployment {} and waits for its deployment",
            env.from_deploy_id
        )));
    }
    let from = state
        .store
        .get_deploy(org_id, app_id, &env.last_deploy_id)
        .await?
        .ok_or_else(|| {
            ApiError::Internal(format!("deployment {} is missing", env.last_deploy_id))
        })?;
    let set = parse_set(
        &state
            .store
            .get_set(org_id, app_id, &from.set_id)
            .await?
            .unwrap_or_default(),
    )?;
    let plan = DeployPlan {
        org_id,
        app_id,
        env_id,
        from_deploy_id: env.from_deploy_id,
        base_repositories: set.repositories(),
        delta_id: String::new(),
        set,
        comment,
        created_by: by.to_owned(),
        triggered_by: by.to_owned(),
        new_delta: None,
    };
    plan.create(state).await
}
