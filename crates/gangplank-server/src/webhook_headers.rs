//! Webhook custom headers at rest: they may carry credentials (`Authorization`, API keys), so
//! the whole name → value map is sealed with the master key, bound to its webhook, and the API
//! shows every value as [`REDACTED`]. Deliveries keep no rendered headers; the delivery worker
//! opens the webhook's map and fills in the event's variables when it sends.

use std::collections::BTreeMap;

use anyhow::Context;
use gangplank_store::Store;

use crate::secrets::{OpenError, SecretBox, context};

/// What the API shows for every header value. Sent back in a PATCH, it keeps the stored value.
pub const REDACTED: &str = "***";

/// The sealing context of a webhook's headers (kind `webhook-headers` in `sealed_values`).
fn headers_context(org_id: &str, webhook_id: &str) -> String {
    context("webhook-headers", org_id, webhook_id)
}

/// The stored form: `{}` when there are none (nothing to hide), else the sealed JSON map.
pub fn seal(
    secrets: &SecretBox,
    org_id: &str,
    webhook_id: &str,
    headers: &BTreeMap<String, String>,
) -> String {
    if headers.is_empty() {
        return "{}".to_owned();
    }
    let json = serde_json::to_vec(headers).expect("a string map serializes");
    secrets.seal(&headers_context(org_id, webhook_id), &json)
}

/// The header map from its stored form (sealed, or a plain JSON map of before).
pub fn open(
    secrets: &SecretBox,
    org_id: &str,
    webhook_id: &str,
    stored: &str,
) -> Result<BTreeMap<String, String>, OpenError> {
    if SecretBox::sealed_key_id(stored).is_none() {
        return Ok(serde_json::from_str(stored).unwrap_or_default());
    }
    let plain = secrets.open(&headers_context(org_id, webhook_id), stored)?;
    serde_json::from_slice(&plain).map_err(|_| OpenError::Damaged)
}

/// The map as the API shows it: names, and [`REDACTED`] for every value.
pub fn redact(headers: BTreeMap<String, String>) -> BTreeMap<String, String> {
    headers
        .into_keys()
        .map(|name| (name, REDACTED.to_owned()))
        .collect()
}

/// Seals the headers of webhooks stored before they were sealed (once, at start; a row
/// another replica sealed meanwhile is left alone).
pub async fn seal_legacy(store: &Store, secrets: &SecretBox) -> anyhow::Result<()> {
    for (org_id, webhook_id, plain) in store.plain_webhook_headers().await? {
        let headers: BTreeMap<String, String> = serde_json::from_str(&plain)
            .with_context(|| format!("the headers of webhook {org_id}/{webhook_id}"))?;
        let sealed = seal(secrets, &org_id, &webhook_id, &headers);
        store
            .seal_webhook_headers(&org_id, &webhook_id, &plain, &sealed)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bound_to_the_webhook_and_redacted() {
        let secrets = SecretBox::from_key(&[3; 32]).unwrap();
        let headers = BTreeMap::from([("Authorization".to_owned(), "Bearer s3cret".to_owned())]);
        let stored = seal(&secrets, "acme", "hook", &headers);
        assert!(!stored.contains("s3cret") && !stored.contains("Authorization"));
        assert_eq!(open(&secrets, "acme", "hook", &stored).unwrap(), headers);
        assert!(open(&secrets, "acme", "other", &stored).is_err());
        assert_eq!(seal(&secrets, "acme", "hook", &BTreeMap::new()), "{}");
        let plain = r#"{"X-Key":"v"}"#;
        assert_eq!(open(&secrets, "acme", "hook", plain).unwrap()["X-Key"], "v");
        assert_eq!(redact(headers)["Authorization"], REDACTED);
    }
}
