//! `/ui/events?org=&app=&env=`: a server-sent event stream of the environment's deployment
//! changes (`event: deployment`, data `{"deploy": …, "status": …}`), fed by the in-process
//! notifications in `crate::events`. Access is checked when the stream opens, and the session
//! again before each event, so a signed-out browser stops hearing. A listener that fell
//! behind gets `event: resync` and reloads what it shows.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::state::AppState;
use crate::ui::error::UiError;
use crate::ui::pages::{Chrome, OrgParam};
use crate::ui::session::UiUser;

#[derive(Debug, Deserialize)]
pub struct StreamParams {
    org: Option<String>,
    app: String,
    env: String,
}

pub async fn stream(
    State(state): State<AppState>,
    user: UiUser,
    Query(params): Query<StreamParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, UiError> {
    let chrome = Chrome::new(&state, &user, &OrgParam { org: params.org }).await?;
    crate::ui::pages::env::read_access(&state, &user, &chrome.org, &params.app).await?;
    let receiver = state.events.subscribe();
    let listener = Listener {
        state,
        id_hash: user.id_hash,
        org: chrome.org,
        app: params.app,
        env: params.env,
        receiver,
        greeted: false,
    };
    let events = futures::stream::unfold(listener, |mut listener| async move {
        let event = listener.next().await?;
        Some((Ok(event), listener))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

struct Listener {
    state: AppState,
    id_hash: String,
    org: String,
    app: String,
    env: String,
    receiver: tokio::sync::broadcast::Receiver<crate::events::DeployChange>,
    greeted: bool,
}

impl Listener {
    /// The next event for this environment; `None` ends the stream (the server stops, or the
    /// session ended).
    async fn next(&mut self) -> Option<Event> {
        if !self.greeted {
            self.greeted = true;
            return Some(
                Event::default()
                    .event("ready")
                    .data("{}")
                    .retry(Duration::from_secs(2)),
            );
        }
        loop {
            let event = match self.receiver.recv().await {
                Ok(change)
                    if change.org_id == self.org
                        && change.app_id == self.app
                        && change.env_id == self.env =>
                {
                    let data = serde_json::json!({
                        "deploy": change.deploy_id,
                        "status": change.status,
                    });
                    Event::default().event("deployment").data(data.to_string())
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
                Err(RecvError::Closed) => return None,
            };
            // Signed out (or expired) meanwhile: stop.
            match self.state.store.find_ui_session(&self.id_hash).await {
                Ok(Some(_)) => return Some(event),
                _ => return None,
            }
        }
    }
}
