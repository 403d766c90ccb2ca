//! Upper bounds on every JSON request body, checked by `ApiJson` right after parsing: one impl
//! per request type naming its fields, the bounds themselves in `gangplank_core::limits`. A
//! new body type cannot be taken as `ApiJson` without saying what bounds it.

use gangplank_api::agent::EnvTarget;
use gangplank_api::apps::{CreateApp, CreateEnv, EnvType, PatchEnvType, Rename};
use gangplank_api::artefacts::PatchArtefactVersion;
use gangplank_api::deploys::{DeltaRequest, DeploymentRequest};
use gangplank_api::image_promotions::{ResumeRequest, RollbackRequest};
use gangplank_api::inbound_hooks::InboundHookRequest;
use gangplank_api::pipelines::PipelineCriteriaCreateBody;
use gangplank_api::registries::RegistryRequest;
use gangplank_api::rules::{RuleRequest, VersionPolicy};
use gangplank_api::users::{ChangeAppRole, ChangeRole, CreateServiceUser, CreateToken, GrantRole};
use gangplank_api::watches::WatchRequest;
use gangplank_api::webhooks::WebhookRequest;
use gangplank_core::ValidationError;
use gangplank_core::limits::{
    MAX_CREDENTIAL_LEN, MAX_DELTA_PATCHES, MAX_HEADER_NAME_LEN, MAX_HEADER_VALUE_LEN, MAX_NAME_LEN,
    MAX_PATTERN_LEN, MAX_REF_LEN, MAX_REGISTRY_SECRETS, MAX_RULE_FILTERS, MAX_TEXT_LEN,
    MAX_URL_LEN, MAX_WEBHOOK_HEADERS, MAX_WEBHOOK_TRIGGERS, check_count, check_len, check_opt_len,
};

type Checked = Result<(), ValidationError>;

/// A request body whose sizes are bounded.
pub trait Bounded {
    /// Refuses the first value over its bound, naming the field.
    fn check_bounds(&self) -> Checked;
}

/// A bare JSON string body (an ID or name).
impl Bounded for String {
    fn check_bounds(&self) -> Checked {
        check_len("body", self, MAX_REF_LEN)
    }
}

impl Bounded for bool {
    fn check_bounds(&self) -> Checked {
        Ok(())
    }
}

/// `PATCH …/deltas/{id}`: an array of deltas.
impl Bounded for Vec<DeltaRequest> {
    fn check_bounds(&self) -> Checked {
        check_count("body", self.len(), MAX_DELTA_PATCHES)?;
        self.iter().try_for_each(Bounded::check_bounds)
    }
}

fn list(field: &str, items: Option<&Vec<String>>, max_items: usize, max_len: usize) -> Checked {
    let Some(items) = items else { return Ok(()) };
    check_count(field, items.len(), max_items)?;
    items
        .iter()
        .try_for_each(|item| check_len(field, item, max_len))
}

/// `POST …/pipelines/{pipeline}/criteria`.
impl Bounded for PipelineCriteriaCreateBody {
    fn check_bounds(&self) -> Checked {
        check_len("trigger", &self.trigger, MAX_NAME_LEN)?;
        check_opt_len("env_type", self.env_type.as_deref(), MAX_NAME_LEN)?;
        check_opt_len("app_id", self.app_id.as_deref(), MAX_NAME_LEN)?;
        check_opt_len("env_id", self.env_id.as_deref(), MAX_NAME_LEN)?;
        check_opt_len(
            "deployment_type",
            self.deployment_type.as_deref(),
            MAX_NAME_LEN,
        )
    }
}

impl Bounded for CreateApp {
    fn check_bounds(&self) -> Checked {
        check_opt_len("name", self.name.as_deref(), MAX_NAME_LEN)?;
        if let Some(env) = &self.env {
            check_len("env.name", &env.name, MAX_NAME_LEN)?;
        }
        Ok(())
    }
}

impl Bounded for Rename {
    fn check_bounds(&self) -> Checked {
        check_len("name", &self.name, MAX_NAME_LEN)
    }
}

impl Bounded for CreateEnv {
    fn check_bounds(&self) -> Checked {
        check_opt_len("name", self.name.as_deref(), MAX_NAME_LEN)?;
        check_opt_len(
            "from_deploy_id",
            self.from_deploy_id.as_deref(),
            MAX_REF_LEN,
        )
    }
}

impl Bounded for EnvType {
    fn check_bounds(&self) -> Checked {
        check_len("description", &self.description, MAX_TEXT_LEN)
    }
}

impl Bounded for PatchEnvType {
    fn check_bounds(&self) -> Checked {
        check_opt_len("description", self.description.as_deref(), MAX_TEXT_LEN)
    }
}

impl Bounded for PatchArtefactVersion {
    fn check_bounds(&self) -> Checked {
        Ok(())
    }
}

impl Bounded for DeploymentRequest {
    fn check_bounds(&self) -> Checked {
        check_opt_len("comment", self.comment.as_deref(), MAX_TEXT_LEN)?;
        check_opt_len("delta_id", self.delta_id.as_deref(), MAX_REF_LEN)?;
        check_opt_len("set_id", self.set_id.as_deref(), MAX_REF_LEN)?;
        check_opt_len(
            "value_set_version_id",
            self.value_set_version_id.as_deref(),
            MAX_REF_LEN,
        )?;
        check_opt_len("mode", self.mode.as_deref(), MAX_REF_LEN)
    }
}

/// The sizes of `modules` and `shared` are checked where they are parsed (`content_of`).
impl Bounded for DeltaRequest {
    fn check_bounds(&self) -> Checked {
        check_opt_len("id", self.id.as_deref(), MAX_REF_LEN)?;
        let text = |key: &str| {
            self.metadata
                .as_ref()
                .and_then(|m| m.get(key))
                .and_then(serde_json::Value::as_str)
        };
        check_opt_len("metadata.name", text("name"), MAX_NAME_LEN)?;
        check_opt_len("metadata.env_id", text("env_id"), MAX_REF_LEN)
    }
}

impl Bounded for RuleRequest {
    fn check_bounds(&self) -> Checked {
        check_len("type", &self.kind, MAX_REF_LEN)?;
        list(
            "artefacts_filter",
            self.artefacts_filter.as_ref(),
            MAX_RULE_FILTERS,
            MAX_PATTERN_LEN,
        )?;
        list(
            "images_filter",
            self.images_filter.as_ref(),
            MAX_RULE_FILTERS,
            MAX_PATTERN_LEN,
        )?;
        check_opt_len("match_ref", self.match_ref.as_deref(), MAX_PATTERN_LEN)?;
        check_opt_len("match", self.legacy_match.as_deref(), MAX_PATTERN_LEN)?;
        check_opt_len("update_to", self.update_to.as_deref(), MAX_REF_LEN)?;
        match &self.version_policy {
            Some(VersionPolicy::Semver { constraint, .. }) => {
                check_len("version_policy.constraint", constraint, MAX_PATTERN_LEN)
            }
            Some(VersionPolicy::Regex { pattern }) => {
                check_len("version_policy.pattern", pattern, MAX_PATTERN_LEN)
            }
            None => Ok(()),
        }
    }
}

/// `POST …/image-promotions/rollback`.
impl Bounded for RollbackRequest {
    fn check_bounds(&self) -> Checked {
        check_len("repository", &self.repository, MAX_URL_LEN)?;
        check_opt_len("live_tag", self.live_tag.as_deref(), MAX_REF_LEN)?;
        check_opt_len("to_version", self.to_version.as_deref(), MAX_REF_LEN)?;
        check_opt_len("comment", self.comment.as_deref(), MAX_TEXT_LEN)
    }
}

/// `POST …/image-promotions/resume`.
impl Bounded for ResumeRequest {
    fn check_bounds(&self) -> Checked {
        check_len("repository", &self.repository, MAX_URL_LEN)?;
        check_opt_len("live_tag", self.live_tag.as_deref(), MAX_REF_LEN)
    }
}

impl Bounded for WebhookRequest {
    fn check_bounds(&self) -> Checked {
        check_opt_len("id", self.id.as_deref(), MAX_REF_LEN)?;
        check_opt_len("url", self.url.as_deref(), MAX_URL_LEN)?;
        check_opt_len("secret", self.secret.as_deref(), MAX_REF_LEN)?;
        if let Some(headers) = &self.headers {
            check_count("headers", headers.len(), MAX_WEBHOOK_HEADERS)?;
            for (name, value) in headers {
                check_len("headers", name, MAX_HEADER_NAME_LEN)?;
                check_len(&format!("headers.{name}"), value, MAX_HEADER_VALUE_LEN)?;
            }
        }
        if let Some(triggers) = &self.triggers {
            check_count("triggers", triggers.len(), MAX_WEBHOOK_TRIGGERS)?;
        }
        Ok(())
    }
}

impl Bounded for InboundHookRequest {
    fn check_bounds(&self) -> Checked {
        check_opt_len("id", self.id.as_deref(), MAX_REF_LEN)?;
        check_opt_len("kind", self.kind.as_deref(), MAX_REF_LEN)?;
        check_opt_len("registry", self.registry.as_deref(), MAX_URL_LEN)?;
        check_opt_len("secret", self.secret.as_deref(), MAX_CREDENTIAL_LEN)?;
        if let Some(watches) = &self.watches {
            check_count("watches", watches.len(), MAX_REGISTRY_SECRETS)?;
            for prefix in watches {
                check_len("watches", prefix, MAX_URL_LEN)?;
            }
        }
        Ok(())
    }
}

impl Bounded for RegistryRequest {
    fn check_bounds(&self) -> Checked {
        check_opt_len("id", self.id.as_deref(), MAX_REF_LEN)?;
        check_opt_len("registry", self.registry.as_deref(), MAX_URL_LEN)?;
        check_opt_len("type", self.kind.as_deref(), MAX_REF_LEN)?;
        if let Some(creds) = &self.creds {
            check_len("creds.username", &creds.username, MAX_CREDENTIAL_LEN)?;
            check_len("creds.password", &creds.password, MAX_CREDENTIAL_LEN)?;
            check_opt_len("creds.expires", creds.expires.as_deref(), MAX_REF_LEN)?;
        }
        if let Some(secrets) = &self.secrets {
            check_count("secrets", secrets.len(), MAX_REGISTRY_SECRETS)?;
        }
        Ok(())
    }
}

impl Bounded for WatchRequest {
    fn check_bounds(&self) -> Checked {
        check_len("image", &self.image, MAX_REF_LEN)?;
        let pattern = gangplank_core::watch::MAX_PATTERN_LEN;
        check_opt_len("semver", self.semver.as_deref(), pattern)?;
        check_opt_len("regex", self.regex.as_deref(), pattern)?;
        Ok(())
    }
}

impl Bounded for CreateServiceUser {
    fn check_bounds(&self) -> Checked {
        check_len("name", &self.name, MAX_NAME_LEN)?;
        check_len("role", &self.role, MAX_REF_LEN)?;
        check_opt_len("email", self.email.as_deref(), MAX_REF_LEN)
    }
}

impl Bounded for GrantRole {
    fn check_bounds(&self) -> Checked {
        check_len("id", &self.id, MAX_REF_LEN)?;
        check_len("role", &self.role, MAX_REF_LEN)
    }
}

impl Bounded for ChangeRole {
    fn check_bounds(&self) -> Checked {
        check_len("role", &self.role, MAX_REF_LEN)
    }
}

impl Bounded for ChangeAppRole {
    fn check_bounds(&self) -> Checked {
        check_len("role", &self.role, MAX_REF_LEN)
    }
}

impl Bounded for CreateToken {
    fn check_bounds(&self) -> Checked {
        check_len("id", &self.id, MAX_REF_LEN)?;
        check_len("type", &self.kind, MAX_REF_LEN)?;
        check_opt_len("description", self.description.as_deref(), MAX_TEXT_LEN)?;
        check_opt_len("expires_at", self.expires_at.as_deref(), MAX_REF_LEN)
    }
}

/// The deploy target's bounds are checked with its other rules (`routes::targets`).
impl Bounded for EnvTarget {
    fn check_bounds(&self) -> Checked {
        Ok(())
    }
}

/// `POST …/pipelines/{id}/runs`: the inputs' count and names (their values are checked against
/// the definition, and bounded in size by the body limit).
impl Bounded for gangplank_api::pipeline_runs::PipelineRunCreateBody {
    fn check_bounds(&self) -> Checked {
        check_count(
            "inputs",
            self.inputs.len(),
            gangplank_core::limits::MAX_RUN_INPUTS,
        )?;
        self.inputs
            .keys()
            .try_for_each(|name| check_len("inputs", name, MAX_REF_LEN))
    }
}

/// `POST …/pipeline-runs`: a deployment request routed by criteria.
impl Bounded for gangplank_api::pipeline_runs::PipelineRunCreateByTriggerCriteriaBody {
    fn check_bounds(&self) -> Checked {
        check_len("trigger", &self.trigger, MAX_REF_LEN)?;
        for (field, value) in [
            ("env_id", &self.env_id),
            ("environment", &self.environment),
            ("delta_id", &self.delta_id),
            ("deployment_id", &self.deployment_id),
            ("set_id", &self.set_id),
            ("value_set_version_id", &self.value_set_version_id),
            ("mode", &self.mode),
        ] {
            check_opt_len(field, value.as_deref(), MAX_REF_LEN)?;
        }
        check_opt_len("comment", self.comment.as_deref(), MAX_TEXT_LEN)
    }
}

/// The optional body of approve and deny.
impl Bounded for gangplank_api::pipeline_runs::ApprovalResponseBody {
    fn check_bounds(&self) -> Checked {
        check_opt_len("comment", self.comment.as_deref(), MAX_TEXT_LEN)
    }
}

impl Bounded for gangplank_api::builds::BuildDefinitionRequest {
    fn check_bounds(&self) -> Checked {
        use gangplank_core::build::{MAX_BRANCHES, MAX_BUILD_ARGS, MAX_FIELD_LEN, MAX_TAGS};
        check_len("clone_url", &self.clone_url, MAX_URL_LEN)?;
        check_opt_len(
            "clone_token",
            self.clone_token.as_deref(),
            MAX_CREDENTIAL_LEN,
        )?;
        check_count("branches", self.branches.len(), MAX_BRANCHES)?;
        for branch in &self.branches {
            check_len("branches[]", branch, MAX_REF_LEN)?;
        }
        check_opt_len("dockerfile", self.dockerfile.as_deref(), MAX_FIELD_LEN)?;
        check_opt_len("context", self.context.as_deref(), MAX_FIELD_LEN)?;
        check_count("build_args", self.build_args.len(), MAX_BUILD_ARGS)?;
        for (name, value) in &self.build_args {
            check_len("build_args", name, MAX_NAME_LEN)?;
            check_len("build_args", value, MAX_FIELD_LEN)?;
        }
        check_len("image", &self.image, MAX_REF_LEN)?;
        check_count("tags", self.tags.len(), MAX_TAGS)?;
        for tag in &self.tags {
            check_len("tags[]", tag, MAX_FIELD_LEN)?;
        }
        check_len("builder", &self.builder, MAX_URL_LEN)?;
        Ok(())
    }
}

impl Bounded for gangplank_api::builds::BuildRunRequest {
    fn check_bounds(&self) -> Checked {
        check_opt_len("commit", self.commit.as_deref(), 64)?;
        check_opt_len("ref", self.git_ref.as_deref(), MAX_REF_LEN)?;
        Ok(())
    }
}
