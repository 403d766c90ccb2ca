//! `/ui/apps/{app}/envs/{env}`: the environment's workloads (desired against running image),
//! its deployment history (who, when, comment, status) with a "Roll back to this" button per
//! earlier succeeded deployment and a Redeploy button (both only for users who may deploy,
//! and refused with 403 for anyone else), and the history fragment the page's script reloads
//! when a deployment of the environment changes.

use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use gangplank_core::access::Action;
use gangplank_core::page::PageRequest;
use gangplank_core::runtime::DriftState;
use gangplank_core::set::Set;
use gangplank_store::{DeployRow, EnvRow, EnvRuntime};
use serde::Deserialize;

use crate::auth::{AppAccess, Caller};
use crate::state::AppState;
use crate::ui::error::{UiError, render};
use crate::ui::pages::{Chrome, OrgParam};
use crate::ui::session::{self, UiUser};
use crate::ui::view;

/// The history shows this many newest deployments.
const HISTORY: usize = 25;

/// One workload: what the set wants and what the host runs.
pub struct WorkloadView {
    pub name: String,
    pub desired: String,
    pub running: String,
    pub state: String,
    pub sync: &'static str,
    pub sync_class: &'static str,
}

/// One deployment of the history.
pub struct DeployView {
    pub id: String,
    pub status: String,
    pub status_class: &'static str,
    pub created_by: String,
    pub when: String,
    pub when_iso: String,
    pub age: String,
    pub comment: String,
    pub current: bool,
    pub can_roll_back: bool,
}

/// What the history fragment needs (the page includes the same template).
pub struct History {
    pub deploys: Vec<DeployView>,
    pub csrf: String,
    pub rollback_url: String,
    pub redeploy_url: String,
    pub can_redeploy: bool,
}

#[derive(Template)]
#[template(path = "env.html")]
struct EnvPage {
    chrome: Chrome,
    app_id: String,
    app_name: String,
    env: EnvRow,
    target: String,
    sync: &'static str,
    sync_class: &'static str,
    workloads: Vec<WorkloadView>,
    held: bool,
    events_url: String,
    fragment_url: String,
    history: History,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryFragment {
    history: History,
}

#[derive(Deserialize)]
pub struct RollbackForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    deploy: String,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn show(
    State(state): State<AppState>,
    user: UiUser,
    Path((app, env)): Path<(String, String)>,
    Query(param): Query<OrgParam>,
) -> Result<Response, UiError> {
    let chrome = Chrome::new(&state, &user, &param).await?;
    let org = chrome.org.clone();
    let access = read_access(&state, &user, &org, &app).await?;
    let env_row = env_of(&state, &org, &app, &env).await?;
    let (target, _) = state.store.env_target(&org, &app, &env).await?;
    let live = runtime_of(&state, &org, &app, &env).await?;
    let (sync, sync_class) = sync_label(live.as_ref());
    let workloads = workloads(&state, &org, &app, &env_row, live.as_ref()).await?;
    let history = history_of(&state, &access, &user, &env_row).await?;
    let base = env_base(&app, &env);
    render(&EnvPage {
        events_url: format!(
            "/ui/events{}&app={}&env={}",
            chrome.org_query,
            view::segment(&app),
            view::segment(&env)
        ),
        fragment_url: format!("{base}/history{}", chrome.org_query),
        chrome,
        app_name: access.app.name.clone(),
        app_id: app,
        held: env_row.automation_held_at > 0,
        env: env_row,
        target,
        sync,
        sync_class,
        workloads,
        history,
    })
}

/// The history section alone, for the page's live refresh.
pub async fn history(
    State(state): State<AppState>,
    user: UiUser,
    Path((app, env)): Path<(String, String)>,
    Query(param): Query<OrgParam>,
) -> Result<Response, UiError> {
    let chrome = Chrome::new(&state, &user, &param).await?;
    let access = read_access(&state, &user, &chrome.org, &app).await?;
    let env_row = env_of(&state, &chrome.org, &app, &env).await?;
    let history = history_of(&state, &access, &user, &env_row).await?;
    render(&HistoryFragment { history })
}

/// Rolls back to an earlier deployment of this environment, as `gangplank rollback --to`
/// does: rebase on it (which holds automation) and deploy its set.
pub async fn rollback(
    State(state): State<AppState>,
    user: UiUser,
    Path((app, env)): Path<(String, String)>,
    Query(param): Query<OrgParam>,
    form: Result<Form<RollbackForm>, FormRejection>,
) -> Result<Response, UiError> {
    let Form(form) = form.map_err(|_| session::csrf_refused())?;
    let (chrome, access, env_row) =
        deploying(&state, &user, &param, &form.csrf, &app, &env).await?;
    let org = chrome.org.clone();
    let target = state
        .store
        .get_deploy(&org, &app, &form.deploy)
        .await?
        .filter(|d| d.env_id == env)
        .ok_or_else(|| {
            UiError::Page(
                StatusCode::BAD_REQUEST,
                format!(
                    "There is no deployment {} in this environment.",
                    form.deploy
                ),
            )
        })?;
    refuse_while_active(&state, &org, &app, &env_row).await?;
    state
        .store
        .rebase_env(&org, &app, &env, &target.id, &user.user_id)
        .await?;
    let comment = format!("Rollback to {}", target.id);
    let row = crate::deploying::start(&state, &access, &env, None, None, comment).await?;
    tracing::info!(deploy = %row.id, to = %target.id, "rollback started from the dashboard");
    Ok(back_to(&chrome, &app, &env))
}

/// Deploys the environment's current set again.
pub async fn redeploy(
    State(state): State<AppState>,
    user: UiUser,
    Path((app, env)): Path<(String, String)>,
    Query(param): Query<OrgParam>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, UiError> {
    let Form(form) = form.map_err(|_| session::csrf_refused())?;
    let (chrome, access, env_row) =
        deploying(&state, &user, &param, &form.csrf, &app, &env).await?;
    let org = chrome.org.clone();
    let current = state
        .store
        .get_deploy(&org, &app, &env_row.last_deploy_id)
        .await?
        .ok_or_else(|| {
            UiError::Page(
                StatusCode::BAD_REQUEST,
                "This environment has no deployment to redeploy yet.".to_owned(),
            )
        })?;
    let comment = format!("Redeploy of {}", current.id);
    crate::deploying::start(&state, &access, &env, None, Some(current.set_id), comment).await?;
    Ok(back_to(&chrome, &app, &env))
}

/// What every deploying form checks first: its CSRF token, then that the user may deploy in
/// the app; the page's chrome, the access and the environment.
async fn deploying(
    state: &AppState,
    user: &UiUser,
    param: &OrgParam,
    csrf: &str,
    app: &str,
    env: &str,
) -> Result<(Chrome, AppAccess, EnvRow), UiError> {
    user.check_csrf(csrf)?;
    let chrome = Chrome::new(state, user, param).await?;
    let access = read_access(state, user, &chrome.org, app).await?;
    access.require(Action::Deploy)?;
    let env_row = env_of(state, &chrome.org, app, env).await?;
    Ok((chrome, access, env_row))
}

fn env_base(app: &str, env: &str) -> String {
    format!(
        "/ui/apps/{}/envs/{}",
        view::segment(app),
        view::segment(env)
    )
}

fn back_to(chrome: &Chrome, app: &str, env: &str) -> Response {
    let location = format!("{}{}", env_base(app, env), chrome.org_query);
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// A rollback rebases first; refusing up front while a deployment runs keeps a refused
/// rollback from leaving the environment rebased.
async fn refuse_while_active(
    state: &AppState,
    org: &str,
    app: &str,
    env: &EnvRow,
) -> Result<(), UiError> {
    if env.last_deploy_id.is_empty() {
        return Ok(());
    }
    let active = state
        .store
        .get_deploy(org, app, &env.last_deploy_id)
        .await?
        .is_some_and(|d| matches!(d.status.as_str(), "pending" | "in progress"));
    if active {
        return Err(UiError::Page(
            StatusCode::CONFLICT,
            "A deployment is running in this environment; wait for it to finish.".to_owned(),
        ));
    }
    Ok(())
}

/// The user's standing on the app; 403 unless they may read it, 404 for no such app.
pub async fn read_access(
    state: &AppState,
    user: &UiUser,
    org: &str,
    app: &str,
) -> Result<AppAccess, UiError> {
    let access = Caller {
        user_id: user.user_id.clone(),
    }
    .in_org(state, org)
    .await?
    .app(state, app)
    .await?;
    access.require(Action::ReadApp)?;
    Ok(access)
}

async fn env_of(state: &AppState, org: &str, app: &str, env: &str) -> Result<EnvRow, UiError> {
    state.store.get_env(org, app, env).await?.ok_or_else(|| {
        UiError::Page(
            StatusCode::NOT_FOUND,
            format!("There is no environment {env} in application {app}."),
        )
    })
}

/// What the hosts run, for an environment the observer watches (a compose target).
pub async fn runtime_of(
    state: &AppState,
    org: &str,
    app: &str,
    env: &str,
) -> Result<Option<EnvRuntime>, UiError> {
    let (kind, _) = state.store.env_target(org, app, env).await?;
    if kind != "compose" {
        return Ok(None);
    }
    Ok(Some(state.store.env_runtime(org, app, env).await?))
}

/// A stored set (the empty set for none or a damaged one).
pub async fn set_of(state: &AppState, org: &str, app: &str, set_id: &str) -> Result<Set, UiError> {
    let content = state
        .store
        .get_set(org, app, set_id)
        .await?
        .unwrap_or_default();
    Ok(crate::deploying::parse_set(&content).unwrap_or_default())
}

/// "in sync", "drifted", "unknown" or "not observed", with its CSS class.
pub fn sync_label(runtime: Option<&EnvRuntime>) -> (&'static str, &'static str) {
    match runtime {
        None => ("not observed", "muted"),
        Some(runtime) => match runtime.drift {
            DriftState::Unknown => ("unknown", "muted"),
            DriftState::InSync if runtime.workloads.iter().all(|w| w.runtime.reachable) => {
                ("in sync", "ok")
            }
            DriftState::InSync => ("unknown", "muted"),
            DriftState::Drifted { .. } => ("drifted", "bad"),
        },
    }
}

async fn workloads(
    state: &AppState,
    org: &str,
    app: &str,
    env: &EnvRow,
    live: Option<&EnvRuntime>,
) -> Result<Vec<WorkloadView>, UiError> {
    if let Some(runtime) = live.filter(|r| !r.workloads.is_empty()) {
        return Ok(runtime
            .workloads
            .iter()
            .map(|w| {
                let (sync, sync_class) = match w.runtime.in_sync {
                    Some(true) => ("in sync", "ok"),
                    Some(false) => ("drifted", "bad"),
                    None => ("unknown", "muted"),
                };
                let mut running = w.runtime.running_image.clone().unwrap_or_default();
                if let Some(digest) = w.runtime.running_digests.first() {
                    running = format!("{running} ({digest})");
                }
                WorkloadView {
                    name: w.runtime.workload.clone(),
                    desired: w.runtime.desired_image.clone().unwrap_or_default(),
                    running,
                    state: w.runtime.state.clone(),
                    sync,
                    sync_class,
                }
            })
            .collect());
    }
    if env.last_deploy_id.is_empty() {
        return Ok(Vec::new());
    }
    let Some(last) = state
        .store
        .get_deploy(org, app, &env.last_deploy_id)
        .await?
    else {
        return Ok(Vec::new());
    };
    Ok(set_of(state, org, app, &last.set_id)
        .await?
        .container_images()
        .into_iter()
        .map(|c| WorkloadView {
            name: if c.container == "main" || c.container.is_empty() {
                c.workload
            } else {
                format!("{}/{}", c.workload, c.container)
            },
            desired: c.image,
            running: String::new(),
            state: "not observed".to_owned(),
            sync: "not observed",
            sync_class: "muted",
        })
        .collect())
}

async fn history_of(
    state: &AppState,
    access: &AppAccess,
    user: &UiUser,
    env: &EnvRow,
) -> Result<History, UiError> {
    let org = &access.org.org_id;
    let app = &access.app.id;
    let rows: Vec<DeployRow> = state
        .store
        .list_deploys(
            org,
            app,
            &env.id,
            &PageRequest {
                per_page: HISTORY,
                after: None,
            },
        )
        .await?
        .items;
    let may_deploy = access.require(Action::Deploy).is_ok();
    let now = gangplank_store::now_millis();
    let active = rows
        .first()
        .is_some_and(|d| matches!(d.status.as_str(), "pending" | "in progress"));
    // Who started each deployment, by name (a user id when the user is gone).
    let mut names = std::collections::HashMap::new();
    for row in &rows {
        if !names.contains_key(&row.created_by) {
            let name = state
                .store
                .get_user(&row.created_by)
                .await?
                .map_or_else(|| row.created_by.clone(), |user| user.name);
            names.insert(row.created_by.clone(), name);
        }
    }
    let deploys = rows
        .into_iter()
        .map(|row| {
            let (when, when_iso) = view::when(row.created_at);
            let current = row.id == env.last_deploy_id;
            DeployView {
                can_roll_back: may_deploy && !current && !active && row.status == "succeeded",
                status_class: view::status_class(&row.status),
                age: view::age(now, row.created_at),
                id: row.id,
                status: row.status,
                created_by: names
                    .get(&row.created_by)
                    .cloned()
                    .unwrap_or(row.created_by),
                when,
                when_iso,
                comment: row.comment,
                current,
            }
        })
        .collect();
    let base = env_base(app, &env.id);
    let org_query = view::org_query(org);
    Ok(History {
        deploys,
        csrf: user.csrf.clone(),
        rollback_url: format!("{base}/rollback{org_query}"),
        redeploy_url: format!("{base}/redeploy{org_query}"),
        can_redeploy: may_deploy && !env.last_deploy_id.is_empty() && !active,
    })
}
