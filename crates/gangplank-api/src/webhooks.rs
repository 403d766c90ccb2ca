//! Webhooks (reference §3), the event catalogue, and Gangplank's delivery records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A trigger: an event's scope and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Trigger {
    pub scope: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// `WebhookRequest`. On create `id` and `url` are required; on PATCH every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[a-z0-9](?:-?[a-z0-9]+)+$", max_length = 50)]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub payload: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Vec<Trigger>>,
    /// Gangplank: the signing secret as `whsec_<base64 key>`; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `WebhookResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub disabled: bool,
    pub headers: BTreeMap<String, String>,
    #[schema(value_type = Object)]
    pub payload: Value,
    pub triggers: Vec<Trigger>,
    pub created_at: String,
    pub created_by: String,
    /// Only in the response to create, and only when Gangplank generated it: shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// An entry of `GET /orgs/{org}/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventInfo {
    pub scope: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub properties: Vec<String>,
}

/// One attempt to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    pub attempt: i64,
    pub started_at: String,
    pub duration_ms: i64,
    /// 0 when no response arrived.
    pub status_code: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// A delivery: one event to one webhook, with every attempt. `id` is the `webhook-id` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub id: String,
    pub event: String,
    pub url: String,
    /// `pending`, `succeeded` or `failed`.
    #[schema(value_type = crate::vocabulary::DeliveryState)]
    pub state: String,
    pub attempts: Vec<DeliveryAttempt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_error: String,
    pub created_at: String,
}
