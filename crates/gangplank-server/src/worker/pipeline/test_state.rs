//! An `AppState` over a fresh SQLite store in a temporary directory, and a `StepCtx` on it:
//! what executor tests run against (no workers, no listener). Org `default` has app `shop`
//! with environment `development` (deploy target `none`).

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;
use crate::worker::pipeline::step::StepCtx;

/// A state whose outbound requests may reach loopback when `allow_private`.
pub async fn state(dir: &std::path::Path, allow_private: bool) -> AppState {
    let mut settings = crate::Settings {
        data_dir: dir.to_path_buf(),
        ..crate::Settings::default()
    };
    settings.webhook.allow_private = allow_private;
    let store = gangplank_store::Store::connect(&settings.database_url())
        .await
        .unwrap();
    let secrets = crate::secrets::SecretBox::load(None, dir).unwrap();
    let tokens = crate::auth::TokenHasher::load(&store, &secrets)
        .await
        .unwrap();
    let keys = crate::signing::ServerKeys::load(&store, &secrets)
        .await
        .unwrap();
    store
        .bootstrap(gangplank_store::Bootstrap {
            org_id: "default".to_owned(),
            admin_user_id: "admin".to_owned(),
            admin_name: "admin".to_owned(),
            token_hash: tokens.hash("unused-token"),
            env_types: vec![("development".to_owned(), "Development".to_owned())],
        })
        .await
        .unwrap();
    store
        .create_app(gangplank_store::NewApp {
            org_id: "default".to_owned(),
            id: "shop".to_owned(),
            name: "shop".to_owned(),
            created_by: "admin".to_owned(),
            env: Some(gangplank_store::NewEnv {
                id: "development".to_owned(),
                name: "Development".to_owned(),
                from_deploy_id: String::new(),
                env_type: "development".to_owned(),
            }),
        })
        .await
        .unwrap();
    AppState::new(
        store,
        &settings,
        crate::metrics::install(),
        secrets,
        keys,
        tokens,
    )
}

/// A step of run `run-1` in app `shop` of org `default`, due by `deadline` (Unix ms).
pub fn ctx<'a>(state: &'a AppState, inputs: &'a Value, deadline: i64) -> StepCtx<'a> {
    StepCtx {
        state,
        org_id: "default",
        app_id: "shop",
        pipeline_id: "p",
        run_id: "run-1",
        job_id: "job",
        step_index: 0,
        run_as: "admin",
        inputs,
        cancel: CancellationToken::new(),
        deadline,
        now: gangplank_store::now_millis(),
        automatic: false,
    }
}
