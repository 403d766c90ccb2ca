//! The HTTP surface: one module per resource, assembled into one router with its OpenAPI
//! document, Swagger UI, health endpoints and the cross-cutting layers.

mod approvals;
mod apps;
mod artefacts;
pub(crate) mod builds;
mod deltas;
mod deploys;
mod env_types;
mod envs;
mod health;
mod image_promotions;
mod inbound_hooks;
mod inbound_receive;
mod pipeline_jobs;
mod pipeline_runs;
mod pipelines;
mod registries;
mod rules;
mod run_views;
mod runtime;
mod sets;
mod targets;
mod tokens;
mod users;
mod watches;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

pub use health::metrics;

use crate::extract::json_errors;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Gangplank", description = "Delivery orchestrator for container images. Humanitec-compatible paths and shapes."),
    components(schemas(gangplank_api::ErrorBody)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Builds the complete application.
pub fn router(state: AppState) -> Router {
    let max_body = state.max_body_bytes;
    let (api, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(users::routes())
        .merge(tokens::routes())
        .merge(env_types::routes())
        .merge(apps::routes())
        .merge(envs::routes())
        .merge(targets::routes())
        .merge(artefacts::routes())
        .merge(deploys::routes())
        .merge(deltas::routes())
        .merge(sets::routes())
        .merge(rules::routes())
        .merge(webhooks::routes())
        .merge(registries::routes())
        .merge(watches::routes())
        .merge(runtime::routes())
        .merge(image_promotions::routes())
        .merge(pipeline_runs::routes())
        .merge(pipeline_jobs::routes())
        .merge(approvals::routes())
        .merge(pipelines::routes())
        .merge(inbound_hooks::routes())
        .merge(inbound_receive::routes())
        .merge(builds::routes())
        .split_for_parts();
    crate::openapi::finish(&mut openapi);
    Router::new()
        .merge(api)
        .merge(health::routes(state.metrics_on_api))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .merge(crate::ui::routes())
        .with_state(state)
        .layer(from_fn(crate::metrics::track))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(CatchPanicLayer::new())
        .layer(from_fn(json_errors))
        .layer(TraceLayer::new_for_http())
}
