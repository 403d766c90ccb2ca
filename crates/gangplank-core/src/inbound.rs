//! Inbound hooks: the kinds of sender, how each proves itself, and what each payload claims.
//!
//! Parsing is separate from acting: a registry payload becomes the pushes it *claims* (image
//! and tag, never a digest to trust), and the server verifies each claim against the registry
//! before anything is registered. Payload shapes are the senders' documented ones (GitHub,
//! CNCF distribution, ECR via EventBridge, Docker Hub, Harbor, Quay, Artifact Registry via
//! Pub/Sub push) plus Gangplank's own `generic` shape.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::ValidationError;

/// The largest delivery body accepted (GitHub sends up to 25 MB, but no event that matters
/// here comes near 1 MiB; argocd-image-updater caps at the same size).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Refused deliveries (a bad signature or token, an unreadable payload) kept per hook: anyone
/// who can reach a hook's URL can send them, so only the newest are kept. Accepted and
/// ignored deliveries are kept (their sender ids are what makes a redelivery do nothing).
pub const MAX_REFUSED_DELIVERIES: i64 = 1000;

/// The header an EventBridge API destination's `API_KEY` connection (or any sender that can
/// set a header) puts the hook's token in.
pub const TOKEN_HEADER: &str = "x-gangplank-hook-token";

/// Who sends to a hook, which decides how it is verified and how its body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Github,
    Distribution,
    Ecr,
    Dockerhub,
    Harbor,
    Quay,
    Gar,
    Generic,
}

impl HookKind {
    pub const ALL: [HookKind; 8] = [
        HookKind::Github,
        HookKind::Distribution,
        HookKind::Ecr,
        HookKind::Dockerhub,
        HookKind::Harbor,
        HookKind::Quay,
        HookKind::Gar,
        HookKind::Generic,
    ];

    pub fn parse(value: &str) -> Result<HookKind, ValidationError> {
        HookKind::ALL
            .into_iter()
            .find(|k| k.as_str() == value)
            .ok_or_else(|| {
                let names: Vec<&str> = HookKind::ALL.iter().map(|k| k.as_str()).collect();
                ValidationError::new("kind", format!("must be one of {}", names.join(", ")))
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Github => "github",
            HookKind::Distribution => "distribution",
            HookKind::Ecr => "ecr",
            HookKind::Dockerhub => "dockerhub",
            HookKind::Harbor => "harbor",
            HookKind::Quay => "quay",
            HookKind::Gar => "gar",
            HookKind::Generic => "generic",
        }
    }

    /// Whether the token may come in the URL's `?token=` query: only for senders that can do
    /// nothing but call a URL (Docker Hub, Quay) or whose configuration is easiest that way.
    /// URLs end up in logs, so kinds that can send a header must.
    pub fn token_in_query(self) -> bool {
        matches!(
            self,
            HookKind::Dockerhub
                | HookKind::Harbor
                | HookKind::Quay
                | HookKind::Gar
                | HookKind::Generic
        )
    }
}

/// Whether `header` (the `X-Hub-Signature-256` value) is `sha256=` and the HMAC-SHA256 of
/// `body` with `secret`, compared in constant time.
pub fn github_signature_valid(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A payload that cannot be read; the message says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PayloadError(pub String);

fn bad(message: impl Into<String>) -> PayloadError {
    PayloadError(message.into())
}

/// What a GitHub `push` says was pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubPush {
    pub git_ref: String,
    pub after: String,
    pub clone_url: String,
    pub full_name: String,
}

/// A GitHub delivery, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GithubEvent {
    Ping,
    Push(GithubPush),
    /// An event this hook does not act on, by its name.
    Other(String),
}

/// Reads a GitHub delivery of `event` (`X-GitHub-Event`), sent as JSON or form-encoded
/// (`payload=<JSON>`). Call only after the signature (over the raw bytes) was verified.
pub fn parse_github(
    event: &str,
    content_type: &str,
    body: &[u8],
) -> Result<GithubEvent, PayloadError> {
    match event {
        "ping" => return Ok(GithubEvent::Ping),
        "push" => {}
        other => return Ok(GithubEvent::Other(other.to_owned())),
    }
    let json = if content_type.split(';').next().is_some_and(|t| {
        t.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    }) {
        form_field(body, "payload")
            .ok_or_else(|| bad("a form-encoded delivery needs a payload field"))?
    } else {
        body.to_vec()
    };
    let value: Value =
        serde_json::from_slice(&json).map_err(|e| bad(format!("the payload is not JSON: {e}")))?;
    let text = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let push = GithubPush {
        git_ref: text("/ref"),
        after: text("/after"),
        clone_url: text("/repository/clone_url"),
        full_name: text("/repository/full_name"),
    };
    if push.git_ref.is_empty() || push.after.is_empty() {
        return Err(bad("a push names a ref and an after commit"));
    }
    Ok(GithubEvent::Push(push))
}

/// The decoded value of `name` in an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<Vec<u8>> {
    body.split(|b| *b == b'&').find_map(|pair| {
        let mut parts = pair.splitn(2, |b| *b == b'=');
        let key = percent_decode(parts.next()?)?;
        (key == name.as_bytes()).then(|| percent_decode(parts.next().unwrap_or_default()))?
    })
}

fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(input.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

/// A push a registry payload claims: a repository and a tag, with the registry host when the
/// payload names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub host: Option<String>,
    pub repository: String,
    pub tag: String,
}

/// One thing a registry payload reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Push(Claimed),
    /// A pull, delete, blob or untagged push, or another event: recorded, not acted on.
    Ignored(String),
}

/// A registry payload, read: its sender's id for it (for redeliveries; empty when none) and
/// what it claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub sender_id: String,
    pub claims: Vec<Claim>,
}

/// Reads a registry kind's payload. `github` is not a registry kind (see [`parse_github`]).
pub fn parse_registry(kind: HookKind, body: &[u8]) -> Result<Parsed, PayloadError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    match kind {
        HookKind::Distribution => distribution(&value),
        HookKind::Ecr => ecr(&value),
        HookKind::Dockerhub => dockerhub(&value),
        HookKind::Harbor => harbor(&value),
        HookKind::Quay => quay(&value),
        HookKind::Gar => gar(&value),
        HookKind::Generic => generic(&value),
        HookKind::Github => Err(bad("a github hook's events are read by parse_github")),
    }
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn push(host: Option<&str>, repository: &str, tag: &str) -> Claim {
    Claim::Push(Claimed {
        host: host.filter(|h| !h.is_empty()).map(str::to_owned),
        repository: repository.trim_matches('/').to_owned(),
        tag: tag.to_owned(),
    })
}

/// The authority of an `http(s)://host[:port]/…` URL.
fn url_host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    rest.split('/').next().filter(|h| !h.is_empty())
}

/// CNCF distribution's envelope (wire formats §3). The host is the registry's own name for
/// itself in `target.url` (its `http.host` when configured, else the request's Host), falling
/// back to `request.host`.
fn distribution(value: &Value) -> Result<Parsed, PayloadError> {
    let events = value
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("a distribution envelope has an events list"))?;
    let mut ids = Vec::new();
    let mut claims = Vec::new();
    for event in events {
        let id = str_at(event, "/id");
        if !id.is_empty() {
            ids.push(id);
        }
        let action = str_at(event, "/action");
        let repository = str_at(event, "/target/repository");
        let tag = str_at(event, "/target/tag");
        let media_type = str_at(event, "/target/mediaType");
        let what = format!("{action} of {repository}");
        claims.push(if action != "push" {
            Claim::Ignored(format!("{what}: only pushes register versions"))
        } else if media_type == "application/octet-stream"
            || media_type.is_empty() && tag.is_empty()
        {
            Claim::Ignored(format!("{what}: a blob, not a manifest"))
        } else if tag.is_empty() {
            Claim::Ignored(format!("{what}: a manifest pushed without a tag"))
        } else if repository.is_empty() {
            Claim::Ignored("a push that names no repository".to_owned())
        } else {
            let host = url_host(str_at(event, "/target/url"))
                .or_else(|| Some(str_at(event, "/request/host")));
            push(host, repository, tag)
        });
    }
    Ok(Parsed {
        sender_id: ids.join(","),
        claims,
    })
}

/// An EventBridge event with ECR's "ECR Image Action" detail (wire formats §4.1); the image
/// is `<account>.dkr.ecr.<region>.amazonaws.com/<repository-name>`.
fn ecr(value: &Value) -> Result<Parsed, PayloadError> {
    let sender_id = str_at(value, "/id").to_owned();
    let detail_type = str_at(value, "/detail-type");
    let repository = str_at(value, "/detail/repository-name");
    let tag = str_at(value, "/detail/image-tag");
    let action = str_at(value, "/detail/action-type");
    let claim = if str_at(value, "/source") != "aws.ecr" || detail_type != "ECR Image Action" {
        Claim::Ignored(format!(
            "an event of type {detail_type:?}, not an ECR image action"
        ))
    } else if action != "PUSH" {
        Claim::Ignored(format!(
            "{action} of {repository}: only pushes register versions"
        ))
    } else if str_at(value, "/detail/result") != "SUCCESS" {
        Claim::Ignored(format!("a push of {repository} that did not succeed"))
    } else if tag.is_empty() {
        Claim::Ignored(format!(
            "push of {repository}: an image pushed without a tag"
        ))
    } else {
        let host = format!(
            "{}.dkr.ecr.{}.amazonaws.com",
            str_at(value, "/account"),
            str_at(value, "/region")
        );
        push(Some(&host), repository, tag)
    };
    Ok(Parsed {
        sender_id,
        claims: vec![claim],
    })
}

/// Docker Hub's repository webhook (wire formats §5.1): every call is a push.
fn dockerhub(value: &Value) -> Result<Parsed, PayloadError> {
    let repository = str_at(value, "/repository/repo_name");
    let tag = str_at(value, "/push_data/tag");
    if repository.is_empty() {
        return Err(bad("a Docker Hub payload names repository.repo_name"));
    }
    let claim = if tag.is_empty() {
        Claim::Ignored(format!("push of {repository}: no tag"))
    } else {
        push(Some("docker.io"), repository, tag)
    };
    Ok(Parsed {
        sender_id: String::new(),
        claims: vec![claim],
    })
}

/// Harbor's webhook, Default or CloudEvents format (wire formats §5.2).
fn harbor(value: &Value) -> Result<Parsed, PayloadError> {
    let kind = str_at(value, "/type");
    let (data, sender_id) = match value.get("specversion") {
        Some(_) => (value.get("data"), str_at(value, "/id").to_owned()),
        None => (value.get("event_data"), String::new()),
    };
    let data = data.ok_or_else(|| bad("a Harbor payload has event_data (or data)"))?;
    let full_name = str_at(data, "/repository/repo_full_name");
    if kind != "PUSH_ARTIFACT" && kind != "harbor.artifact.pushed" {
        return Ok(Parsed {
            sender_id,
            claims: vec![Claim::Ignored(format!(
                "{kind} of {full_name}: only pushes register versions"
            ))],
        });
    }
    let resources = data
        .get("resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let claims = resources
        .iter()
        .map(|resource| {
            let tag = str_at(resource, "/tag");
            let url = str_at(resource, "/resource_url");
            // `<host>/<project>/<repo>:<tag>` or `…@<digest>`, no scheme.
            let (host, path) = url.split_once('/').unwrap_or(("", url));
            let path = path.split('@').next().unwrap_or_default();
            let path = match path.rsplit_once(':') {
                Some((name, tag)) if !tag.contains('/') => name,
                _ => path,
            };
            let repository = if full_name.is_empty() {
                path
            } else {
                full_name
            };
            if tag.is_empty() || tag.starts_with("sha256:") {
                Claim::Ignored(format!(
                    "push of {repository}: an artifact pushed without a tag"
                ))
            } else {
                push(Some(host), repository, tag)
            }
        })
        .collect();
    Ok(Parsed { sender_id, claims })
}

/// Quay's `repo_push` notification (wire formats §5.3): tags, no digest.
fn quay(value: &Value) -> Result<Parsed, PayloadError> {
    let repository = str_at(value, "/repository");
    if repository.is_empty() {
        return Err(bad("a Quay payload names its repository"));
    }
    let host = str_at(value, "/docker_url").split('/').next();
    let tags: Vec<String> = match value.get("updated_tags") {
        Some(Value::Array(tags)) => tags
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        // Very old Quay sent a tag → image id map.
        Some(Value::Object(tags)) => tags.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let claims = if tags.is_empty() {
        vec![Claim::Ignored(format!(
            "push of {repository}: no tag updated"
        ))]
    } else {
        tags.iter().map(|tag| push(host, repository, tag)).collect()
    };
    Ok(Parsed {
        sender_id: String::new(),
        claims,
    })
}

/// Artifact Registry (or GCR) through a Pub/Sub push subscription (wire formats §5.4).
fn gar(value: &Value) -> Result<Parsed, PayloadError> {
    let sender_id = str_at(value, "/message/messageId").to_owned();
    let data = str_at(value, "/message/data");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| bad("message.data is not base64"))?;
    let data: Value =
        serde_json::from_slice(&decoded).map_err(|_| bad("message.data is not JSON"))?;
    let action = str_at(&data, "/action");
    // Fully qualified: `<host>/<project>/<repo>/<image>:<tag>`.
    let tagged = str_at(&data, "/tag");
    let claim = match (action, tagged.rsplit_once(':')) {
        ("INSERT", Some((name, tag))) if !name.is_empty() && !tag.contains('/') => {
            let (host, repository) = name.split_once('/').unwrap_or(("", name));
            push(Some(host), repository, tag)
        }
        ("INSERT", _) => Claim::Ignored(format!("insert of {}: no tag", str_at(&data, "/digest"))),
        (action, _) => Claim::Ignored(format!(
            "{action} of {tagged}: only inserts register versions"
        )),
    };
    Ok(Parsed {
        sender_id,
        claims: vec![claim],
    })
}

/// Gangplank's own shape for senders with none: `{"image": "<host>/<repo>", "tag": "…"}`, or
/// `{"pushes": [that, …]}`.
fn generic(value: &Value) -> Result<Parsed, PayloadError> {
    let items: Vec<&Value> = match value.get("pushes").and_then(Value::as_array) {
        Some(list) => list.iter().collect(),
        None => vec![value],
    };
    let claims = items
        .into_iter()
        .map(|item| {
            let image = str_at(item, "/image");
            let tag = str_at(item, "/tag");
            if image.is_empty() || tag.is_empty() {
                return Err(bad(
                    "a generic push is {\"image\": \"<host>/<repository>\", \"tag\": \"…\"}",
                ));
            }
            let (host, repository) = image.split_once('/').unwrap_or(("", image));
            Ok(push(Some(host), repository, tag))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Parsed {
        sender_id: String::new(),
        claims,
    })
}

/// The image name a claim is verified and registered under: the hook's `registry` prefix
/// when it has one (for payloads whose host is not the one Gangplank knows the registry by,
/// e.g. Docker Hub mirrored or a registry standing in for ECR), else the payload's host.
pub fn image_name(claimed: &Claimed, registry: &str) -> String {
    let registry = registry.trim_end_matches('/');
    match (registry.is_empty(), &claimed.host) {
        (false, _) => format!("{registry}/{}", claimed.repository),
        (true, Some(host)) => format!("{host}/{}", claimed.repository),
        (true, None) => claimed.repository.clone(),
    }
}

/// Whether a hook with these `watches` (repository name prefixes; none watches everything)
/// acts on `repository`, also matched with its registry host as `image`.
pub fn watched(watches: &[String], image: &str, repository: &str) -> bool {
    watches.is_empty()
        || watches
            .iter()
            .any(|w| repository.starts_with(w.as_str()) || image.starts_with(w.as_str()))
}

#[cfg(test)]
mod tests;
