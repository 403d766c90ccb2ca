//! Amazon ECR: exchanging a registry's stored AWS access key for a short-lived registry
//! password with one SigV4-signed `GetAuthorizationToken` call, cached until shortly before it
//! expires. The endpoint follows the AWS SDK convention (`AWS_ENDPOINT_URL_ECR`, then
//! `AWS_ENDPOINT_URL`), so private endpoints and the tests' moto server work. The region is the
//! registry host's; a registry reached under another name (a mirror or DNS alias of an ECR
//! registry, the tests' local registry) takes it from `AWS_REGION`, as the SDKs do.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Refresh this long before the token expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(15 * 60);

/// A registry password from ECR.
#[derive(Clone)]
pub struct EcrToken {
    pub username: String,
    pub password: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl std::fmt::Debug for EcrToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcrToken")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why the exchange failed; the message is for the API caller and holds no secret.
#[derive(Debug, thiserror::Error)]
pub enum EcrError {
    #[error("{0}")]
    Config(String),
    #[error("ECR GetAuthorizationToken failed: {0}")]
    Upstream(String),
}

/// `<account>.dkr.ecr.<region>.amazonaws.com[.cn]` → region.
pub fn region_of(registry: &str) -> Option<&str> {
    let rest = gangplank_core::registry::registry_host(registry)
        .split_once(".dkr.ecr.")?
        .1;
    let region = rest.split_once(".amazonaws.com")?.0;
    (!region.is_empty()).then_some(region)
}

/// The region to sign for: the registry host's, else `aws_region` (the server's `AWS_REGION`)
/// when the host is not an ECR name. A host's own region always wins, so one server can hold
/// ECR registries of several regions.
fn region(registry: &str, aws_region: Option<String>) -> Option<String> {
    region_of(registry)
        .map(str::to_owned)
        .or_else(|| aws_region.filter(|r| !r.trim().is_empty()))
}

/// The tokens fetched so far, by (org, registry id, access key id).
#[derive(Default)]
pub struct EcrTokens {
    cache: Mutex<HashMap<(String, String, String), EcrToken>>,
}

impl EcrTokens {
    /// A valid token for the registry, from the cache or a fresh exchange.
    pub async fn token(
        &self,
        http: &reqwest::Client,
        key: (String, String),
        registry: &str,
        access_key_id: &str,
        secret: &str,
    ) -> Result<EcrToken, EcrError> {
        let cache_key = (key.0, key.1, access_key_id.to_owned());
        let now = unix_now();
        if let Some(token) = self.lock().get(&cache_key)
            && token.expires_at - now > REFRESH_MARGIN.as_secs() as i64
        {
            return Ok(token.clone());
        }
        let started = std::time::Instant::now();
        let exchanged = exchange(http, registry, access_key_id, secret).await;
        let outcome = match &exchanged {
            Ok(_) => "ok",
            Err(EcrError::Config(_)) => "invalid_config",
            Err(EcrError::Upstream(_)) => "error",
        };
        crate::metrics::registry_call(
            &cache_key.0,
            &cache_key.1,
            "ecr_token",
            outcome,
            started.elapsed(),
        );
        let token = exchanged?;
        self.lock().insert(cache_key, token.clone());
        Ok(token)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String, String), EcrToken>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn endpoint(region: &str) -> String {
    std::env::var("AWS_ENDPOINT_URL_ECR")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .map(|url| format!("{}/", url.trim_end_matches('/')))
        .unwrap_or_else(|_| format!("https://api.ecr.{region}.amazonaws.com/"))
}

async fn exchange(
    http: &reqwest::Client,
    registry: &str,
    access_key_id: &str,
    secret: &str,
) -> Result<EcrToken, EcrError> {
    let region = region(registry, std::env::var("AWS_REGION").ok()).ok_or_else(|| {
        EcrError::Config(format!(
            "cannot tell the AWS region from {registry:?} (expected <account>.dkr.ecr.<region>.amazonaws.com, or AWS_REGION set on the server)"
        ))
    })?;
    let region = region.as_str();
    let url = endpoint(region);
    let body = b"{}";
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        (
            "x-amz-target",
            "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
        ),
    ];
    let identity = Credentials::new(access_key_id, secret, None, None, "gangplank-registry").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("ecr")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| EcrError::Config(format!("signing: {e}")))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| EcrError::Config(format!("signing: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| EcrError::Config(format!("signing: {e}")))?
        .into_parts();
    let mut request = http.post(&url).body(body.to_vec());
    for (name, value) in headers.iter().copied().chain(instructions.headers()) {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| EcrError::Upstream(format!("{url} could not be reached: {e}")))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if !status.is_success() {
        return Err(EcrError::Upstream(format!(
            "{status}: {}",
            aws_error(&answer, &text)
        )));
    }
    let data = &answer["authorizationData"][0];
    let decoded = data["authorizationToken"]
        .as_str()
        .and_then(|t| BASE64.decode(t).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            EcrError::Upstream("the answer carries no authorization token".to_owned())
        })?;
    let (username, password) = decoded.split_once(':').ok_or_else(|| {
        EcrError::Upstream("the authorization token is not user:password".to_owned())
    })?;
    Ok(EcrToken {
        username: username.to_owned(),
        password: password.to_owned(),
        expires_at: data["expiresAt"].as_f64().map_or(0, |s| s as i64),
    })
}

/// AWS's error, from a JSON (`__type`, `message`) or XML (`<Code>`, `<Message>`) answer.
fn aws_error(json: &serde_json::Value, text: &str) -> String {
    let json_field = |keys: [&str; 2]| {
        keys.iter()
            .find_map(|k| json[*k].as_str())
            .map(str::to_owned)
    };
    let xml_field = |tag: &str| {
        let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
        let end = text[start..].find(&format!("</{tag}>"))? + start;
        Some(text[start..end].to_owned())
    };
    let code = json_field(["__type", "code"]).or_else(|| xml_field("Code"));
    let message = json_field(["message", "Message"]).or_else(|| xml_field("Message"));
    match (code, message) {
        (None, None) => text.chars().take(200).collect(),
        (code, message) => format!(
            "{} {}",
            code.unwrap_or_default(),
            message.unwrap_or_default()
        )
        .trim()
        .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn regions_come_from_the_registry_host() {
        assert_eq!(
            super::region_of("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            Some("eu-west-1")
        );
        assert_eq!(
            super::region_of("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team"),
            Some("cn-north-1")
        );
        assert_eq!(super::region_of("ghcr.io/acme"), None);
    }

    #[test]
    fn aws_region_names_the_region_only_of_a_host_that_does_not() {
        let given = || Some("eu-central-1".to_owned());
        assert_eq!(
            super::region("123456789012.dkr.ecr.us-east-1.amazonaws.com", given()).as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            super::region("ecr-mirror.internal:5000/team", given()).as_deref(),
            Some("eu-central-1")
        );
        assert_eq!(super::region("ecr-mirror.internal:5000/team", None), None);
        assert_eq!(
            super::region("ecr-mirror.internal:5000/team", Some(String::new())),
            None
        );
    }
}
