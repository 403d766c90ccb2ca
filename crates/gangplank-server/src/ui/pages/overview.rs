//! `/ui`: every application the user may see × its environments; per environment the running
//! (or, when not observed, deployed) versions, whether it is in sync, the last deployment's
//! status and age, and the approvals waiting; a text filter (`?q=`).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use gangplank_core::access::Action;
use gangplank_core::page::PageRequest;
use gangplank_store::{ApprovalFilter, EnvRow};
use serde::Deserialize;

use crate::state::AppState;
use crate::ui::error::{UiError, render};
use crate::ui::pages::{Chrome, OrgParam};
use crate::ui::session::UiUser;
use crate::ui::view;

/// At most this many applications are shown (the filter narrows them).
const MAX_APPS: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub struct OverviewParams {
    org: Option<String>,
    q: Option<String>,
}

/// One environment's cell.
pub struct EnvCell {
    pub id: String,
    pub name: String,
    pub href: String,
    pub versions: Vec<String>,
    /// `running` (observed on the hosts) or `deployed` (the last deployment's set).
    pub versions_source: &'static str,
    pub sync: &'static str,
    pub sync_class: &'static str,
    pub last_status: String,
    pub last_status_class: &'static str,
    pub last_age: String,
    pub approvals: usize,
}

/// One application's row.
pub struct AppCard {
    pub id: String,
    pub name: String,
    pub envs: Vec<EnvCell>,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    q: String,
    apps: Vec<AppCard>,
    approvals: usize,
}

pub async fn show(
    State(state): State<AppState>,
    user: UiUser,
    Query(params): Query<OverviewParams>,
) -> Result<Response, UiError> {
    let chrome = Chrome::new(&state, &user, &OrgParam { org: params.org }).await?;
    let org = chrome.org.clone();
    let access = crate::auth::Caller {
        user_id: user.user_id.clone(),
    }
    .in_org(&state, &org)
    .await?;
    access.require(Action::ReadOrg)?;
    let visible_to = (!access.role.sees_all_apps()).then_some(user.user_id.as_str());
    let q = params.q.unwrap_or_default().trim().to_owned();
    let needle = q.to_lowercase();
    let apps = state
        .store
        .list_apps(
            &org,
            visible_to,
            &PageRequest {
                per_page: MAX_APPS,
                after: None,
            },
        )
        .await?
        .items;
    let now = gangplank_store::now_millis();
    let mut cards = Vec::new();
    let mut total_approvals = 0;
    for app in apps {
        let app_matches = needle.is_empty()
            || app.id.to_lowercase().contains(&needle)
            || app.name.to_lowercase().contains(&needle);
        let envs: Vec<EnvRow> = state
            .store
            .list_envs(&org, &app.id)
            .await?
            .into_iter()
            .filter(|env| {
                app_matches
                    || env.id.to_lowercase().contains(&needle)
                    || env.name.to_lowercase().contains(&needle)
            })
            .collect();
        if envs.is_empty() && !app_matches {
            continue;
        }
        let waiting = state
            .store
            .list_approvals(
                &org,
                &app.id,
                ApprovalFilter {
                    status: Some("waiting".to_owned()),
                    ..ApprovalFilter::default()
                },
                &PageRequest {
                    per_page: 100,
                    after: None,
                },
            )
            .await?
            .items;
        let mut cells = Vec::new();
        for env in envs {
            let approvals = waiting
                .iter()
                .filter(|a| a.approval.env_id == env.id)
                .count();
            total_approvals += approvals;
            cells.push(cell(&state, &org, &app.id, env, approvals, now).await?);
        }
        cards.push(AppCard {
            id: app.id,
            name: app.name,
            envs: cells,
        });
    }
    render(&OverviewPage {
        chrome,
        q,
        apps: cards,
        approvals: total_approvals,
    })
}

async fn cell(
    state: &AppState,
    org: &str,
    app: &str,
    env: EnvRow,
    approvals: usize,
    now: i64,
) -> Result<EnvCell, UiError> {
    let last = if env.last_deploy_id.is_empty() {
        None
    } else {
        state
            .store
            .get_deploy(org, app, &env.last_deploy_id)
            .await?
    };
    let live = crate::ui::pages::env::runtime_of(state, org, app, &env.id).await?;
    let (versions, versions_source) = match &live {
        Some(runtime)
            if runtime
                .workloads
                .iter()
                .any(|w| w.runtime.running_image.is_some()) =>
        {
            let mut running: Vec<String> = runtime
                .workloads
                .iter()
                .filter_map(|w| w.runtime.running_image.clone())
                .collect();
            running.sort();
            running.dedup();
            (running, "running")
        }
        _ => {
            let mut deployed: Vec<String> = match &last {
                Some(deploy) => crate::ui::pages::env::set_of(state, org, app, &deploy.set_id)
                    .await?
                    .container_images()
                    .into_iter()
                    .map(|c| c.image)
                    .collect(),
                None => Vec::new(),
            };
            deployed.sort();
            deployed.dedup();
            (deployed, "deployed")
        }
    };
    let (sync, sync_class) = crate::ui::pages::env::sync_label(live.as_ref());
    let (last_status, last_age) = match &last {
        Some(deploy) => (deploy.status.clone(), view::age(now, deploy.created_at)),
        None => ("never deployed".to_owned(), String::new()),
    };
    Ok(EnvCell {
        href: format!(
            "/ui/apps/{}/envs/{}{}",
            view::segment(app),
            view::segment(&env.id),
            view::org_query(org)
        ),
        id: env.id,
        name: env.name,
        versions,
        versions_source,
        sync,
        sync_class,
        last_status_class: view::status_class(&last_status),
        last_status,
        last_age,
        approvals,
    })
}
