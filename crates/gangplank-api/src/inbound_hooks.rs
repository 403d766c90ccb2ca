//! Inbound hooks: endpoints GitHub and registries POST events to, and the deliveries received.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Creating (`id` and `kind` required) or changing (`watches`, `registry`, `disabled`) a hook.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundHookRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[a-z0-9](?:-?[a-z0-9]+)+$", max_length = 50)]
    pub id: Option<String>,
    /// `github`, `distribution`, `ecr`, `dockerhub`, `harbor`, `quay`, `gar` or `generic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Repository name prefixes the hook acts on (matched with and without the registry
    /// host); empty or absent: every repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watches: Option<Vec<String>>,
    /// A registry prefix the payload's repository is resolved under, for payloads that name
    /// no host or another one (Docker Hub, a registry standing in for ECR); `""` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// The GitHub webhook secret or the token senders present; generated when absent. Only
    /// on create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl std::fmt::Debug for InboundHookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundHookRequest")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("watches", &self.watches)
            .field("registry", &self.registry)
            .field("disabled", &self.disabled)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .finish()
    }
}

/// An inbound hook.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InboundHook {
    pub id: String,
    pub kind: String,
    pub watches: Vec<String>,
    pub registry: String,
    pub disabled: bool,
    /// Where the sender POSTs: `/hooks/{org}/{id}` (prefix it with the server's URL).
    pub path: String,
    pub created_at: String,
    pub created_by: String,
    /// Only in the response to create: the secret or token, shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl std::fmt::Debug for InboundHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundHook")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("watches", &self.watches)
            .field("registry", &self.registry)
            .field("disabled", &self.disabled)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

/// A delivery a hook received: headers without secrets, the body's SHA-256, the verdict
/// (`accepted`, `ignored` or `refused`), why, and what it caused (e.g. version ids).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InboundDelivery {
    pub id: String,
    pub received_at: String,
    /// The sender's id for the delivery (`X-GitHub-Delivery`, an event id), if it sends one.
    pub delivery_id: String,
    #[schema(value_type = Object)]
    pub headers: Value,
    pub body_sha256: String,
    pub verdict: String,
    pub message: String,
    #[schema(value_type = Object)]
    pub caused: Value,
}

/// What `POST /hooks/{org}/{id}` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InboundReceipt {
    /// The recorded delivery (the first one, for a redelivery).
    pub delivery: String,
    pub verdict: String,
    pub message: String,
}
