//! `POST /hooks/{org}/{id}`: a sender's delivery to an inbound hook. No user token: the
//! GitHub signature or the hook's token is the credential, compared in constant time. Every
//! delivery that names a hook is recorded (headers without secrets, the body's hash, the
//! verdict, what it caused); a registry push registers a version only as
//! `verified_versions::register` resolves it through the registry.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use gangplank_api::inbound_hooks::InboundReceipt;
use gangplank_core::build;
use gangplank_core::image::RepositoryName;
use gangplank_core::inbound::{self, Claim, GithubEvent, HookKind, MAX_BODY_BYTES, TOKEN_HEADER};
use gangplank_store::{DeliveryClaim, IN_PROGRESS, InboundDeliveryRow, InboundHookRow};
use serde_json::{Value, json};
use sha2::Digest;
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::routes::inbound_hooks::secret_context;
use crate::state::AppState;
use crate::verified_versions::{Pushed, Registered, VerifyError, register};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive))
}

/// Headers never recorded: they carry the credential.
const SECRET_HEADERS: [&str; 6] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-hub-signature",
    "x-hub-signature-256",
    TOKEN_HEADER,
];

/// How long a delivery may stay unfinished before a redelivery acts on it again: longer than
/// any registry check takes, shorter than senders keep retrying.
const STALE_AFTER_MS: i64 = 60_000;

/// How a delivery ended: its verdict, why, and what it caused.
struct Outcome {
    verdict: &'static str,
    message: String,
    caused: Value,
    /// A passing failure: the sender should retry, and its retry must not count as a
    /// redelivery.
    retry: bool,
}

impl Outcome {
    fn new(verdict: &'static str, message: impl Into<String>) -> Outcome {
        Outcome {
            verdict,
            message: message.into(),
            caused: json!({}),
            retry: false,
        }
    }
}

/// Receives a delivery for an inbound hook (GitHub, a registry, EventBridge, Pub/Sub…). See
/// docs/inbound-hooks.md for each kind's credential.
#[utoipa::path(post, path = "/hooks/{org}/{id}", tag = "inbound-hooks", security(()), params(("org" = String, Path), ("id" = String, Path)), request_body(content = Object, content_type = "application/json", description = "the sender's payload, as it sends it (GitHub may send `application/x-www-form-urlencoded`)"), responses((status = 200, body = InboundReceipt, description = "accepted, ignored, or already received (a redelivery)"), (status = 400, description = "the payload cannot be read (recorded as refused)"), (status = 401, description = "a missing or wrong signature or token (recorded as refused)"), (status = 413, description = "the body is over 1 MiB"), (status = 503, description = "the registry could not be asked; the sender should retry")))]
async fn receive(
    State(state): State<AppState>,
    Path((org, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<InboundReceipt>), ApiError> {
    let hook = state.store.get_inbound_hook(&org, &id).await?;
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(MAX_BODY_BYTES))?;
    let kind = HookKind::parse(&hook.kind)
        .map_err(|e| ApiError::Internal(format!("inbound hook {org}/{id}: {e}")))?;
    let mut row = InboundDeliveryRow {
        id: format!("ind_{}", uuid::Uuid::now_v7().simple()),
        hook_id: hook.id.clone(),
        received_at: gangplank_store::now_millis(),
        delivery_id: String::new(),
        headers: recorded_headers(&headers),
        body_sha256: hex::encode(sha2::Sha256::digest(&body)),
        verdict: "refused".to_owned(),
        message: String::new(),
        caused: "{}".to_owned(),
    };
    if !verified(&state, &org, &hook, kind, &headers, query.as_deref(), &body)? {
        // Recorded without the sender's delivery id, so a forgery cannot claim the id of a
        // genuine delivery still to come.
        row.message = match kind {
            HookKind::Github => "the X-Hub-Signature-256 signature is missing or wrong",
            _ => "the hook's token is missing or wrong",
        }
        .to_owned();
        state.store.record_inbound_delivery(&org, row, 0).await?;
        tracing::warn!(org = %org, hook = %id, "inbound delivery refused: bad credential");
        return Err(ApiError::Unauthorized(
            "the delivery's signature or token is missing or wrong".to_owned(),
        ));
    }
    let content_type = header(&headers, "content-type");
    // Read before recording: the sender's id for a registry delivery is in its body.
    let parsed = match kind {
        HookKind::Github => {
            row.delivery_id = header(&headers, "x-github-delivery").to_owned();
            inbound::parse_github(header(&headers, "x-github-event"), content_type, &body)
                .map(Parsed::Github)
        }
        _ => inbound::parse_registry(kind, &body).map(|p| {
            row.delivery_id = p.sender_id.clone();
            Parsed::Registry(p.claims)
        }),
    };
    row.delivery_id.truncate(200);
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            row.message = format!("the payload cannot be read: {error}");
            let message = row.message.clone();
            row.delivery_id.clear();
            state.store.record_inbound_delivery(&org, row, 0).await?;
            return Err(ApiError::Invalid(message));
        }
    };
    // Recorded before acting, as "accepted" until finished: the insert is the claim on the
    // sender's id, so a concurrent or later redelivery finds it and does nothing twice.
    row.verdict = "accepted".to_owned();
    row.message = IN_PROGRESS.to_owned();
    // A delivery still unfinished after this long was being handled by a server that stopped.
    let stale_before = row.received_at - STALE_AFTER_MS;
    let delivery = match state
        .store
        .record_inbound_delivery(&org, row.clone(), stale_before)
        .await?
    {
        DeliveryClaim::New => row.id,
        DeliveryClaim::Unfinished { id } => id,
        DeliveryClaim::Redelivery => {
            return Ok((
                StatusCode::OK,
                Json(InboundReceipt {
                    delivery: String::new(),
                    verdict: "accepted".to_owned(),
                    message: "already received: a redelivery does nothing twice".to_owned(),
                }),
            ));
        }
    };
    let outcome = if hook.disabled {
        Outcome::new("ignored", "the hook is disabled")
    } else {
        match parsed {
            Parsed::Github(event) => github(&state, &org, &hook, &delivery, event).await,
            Parsed::Registry(claims) => registry(&state, &org, &hook, claims).await,
        }
    };
    state
        .store
        .finish_inbound_delivery(
            &org,
            &id,
            &delivery,
            outcome.verdict,
            &outcome.message,
            &outcome.caused.to_string(),
            outcome.retry,
        )
        .await?;
    if outcome.retry {
        return Err(ApiError::Unavailable(outcome.message));
    }
    Ok((
        StatusCode::OK,
        Json(InboundReceipt {
            delivery,
            verdict: outcome.verdict.to_owned(),
            message: outcome.message,
        }),
    ))
}

enum Parsed {
    Github(GithubEvent),
    Registry(Vec<Claim>),
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The request's headers as a JSON object, without those that carry the credential.
fn recorded_headers(headers: &HeaderMap) -> String {
    let mut map = serde_json::Map::new();
    for (name, value) in headers {
        if SECRET_HEADERS.contains(&name.as_str()) {
            continue;
        }
        if let Ok(value) = value.to_str() {
            map.insert(name.as_str().to_owned(), Value::String(value.to_owned()));
        }
    }
    Value::Object(map).to_string()
}

/// Whether the delivery carries the hook's credential: GitHub's HMAC over the raw body, or
/// the token in `Authorization` (`Bearer <token>`, or verbatim as Harbor sends it), in
/// `x-gangplank-hook-token`, or (kinds whose senders can only call a URL) in `?token=`.
fn verified(
    state: &AppState,
    org: &str,
    hook: &InboundHookRow,
    kind: HookKind,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<bool, ApiError> {
    let secret = state
        .secrets
        .open(&secret_context(org, &hook.id), &hook.secret_sealed)
        .map_err(|e| ApiError::Internal(format!("inbound hook {org}/{}: {e}", hook.id)))?;
    if kind == HookKind::Github {
        let signature = headers
            .get("x-hub-signature-256")
            .and_then(|v| v.to_str().ok());
        return Ok(inbound::github_signature_valid(&secret, body, signature));
    }
    let mut presented: Vec<Vec<u8>> = Vec::new();
    for value in headers.get_all("authorization") {
        let value = value.as_bytes();
        presented.push(value.to_vec());
        if value.len() > 7 && value[..7].eq_ignore_ascii_case(b"bearer ") {
            presented.push(value[7..].to_vec());
        }
    }
    for value in headers.get_all(TOKEN_HEADER) {
        presented.push(value.as_bytes().to_vec());
    }
    if kind.token_in_query()
        && let Some(query) = query
    {
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if name == "token" {
                presented.push(value.as_bytes().to_vec());
            }
        }
    }
    // Every candidate is compared in full, so the time taken does not tell which matched.
    let matched = presented
        .iter()
        .fold(subtle::Choice::from(0), |found, candidate| {
            found | candidate.as_slice().ct_eq(&secret)
        });
    Ok(bool::from(matched))
}

/// What a GitHub event does: `ping` answers, a `push` queues a build for each application
/// whose build definition clones that repository and whose branch filter passes the ref (a
/// newer push supersedes the queued builds of its branch), other events are ignored.
async fn github(
    state: &AppState,
    org: &str,
    hook: &InboundHookRow,
    delivery: &str,
    event: GithubEvent,
) -> Outcome {
    let push = match event {
        GithubEvent::Ping => return Outcome::new("accepted", "ping"),
        GithubEvent::Other(name) => {
            return Outcome::new("ignored", format!("the {name:?} event is not acted on"));
        }
        GithubEvent::Push(push) => push,
    };
    let mut caused = json!({"push": {"ref": push.git_ref, "after": push.after,
        "repository": push.full_name, "clone_url": push.clone_url}});
    if push.after.bytes().all(|b| b == b'0') {
        return Outcome {
            caused,
            ..Outcome::new("ignored", "a deleted branch builds nothing")
        };
    }
    let definitions = match state.store.org_build_definitions(org).await {
        Ok(definitions) => definitions,
        Err(error) => {
            return Outcome {
                retry: true,
                ..Outcome::new(
                    "accepted",
                    format!("reading build definitions failed: {error}"),
                )
            };
        }
    };
    let (mut lines, mut builds) = (Vec::new(), Vec::new());
    let mut retry = false;
    for definition in definitions
        .iter()
        .filter(|d| build::same_repository(&d.clone_url, &push.clone_url))
    {
        let app = &definition.app_id;
        let spec = match crate::routes::builds::stored_definition(definition) {
            Ok(spec) => spec,
            Err(_) => {
                lines.push(format!("app {app}: its build definition is unreadable"));
                continue;
            }
        };
        if !build::branch_matches(&spec.branches, &push.git_ref) {
            lines.push(format!(
                "app {app}: {} is not one of its branches",
                push.git_ref
            ));
            continue;
        }
        if let Err(error) = build::check_commit(&push.after) {
            lines.push(format!("app {app}: after: {error}"));
            continue;
        }
        let created_by = format!("hook:{}", hook.id);
        let trigger = crate::routes::builds::Trigger {
            kind: "github",
            delivery_id: delivery,
            created_by: &created_by,
        };
        match crate::routes::builds::queue(
            state,
            definition,
            &push.git_ref,
            Some(&push.after),
            trigger,
        )
        .await
        {
            Ok(row) => {
                lines.push(format!("app {app}: build {} queued", row.id));
                builds.push(json!({"app_id": app, "build_id": row.id}));
            }
            Err(error) => {
                retry = true;
                lines.push(format!("app {app}: queueing the build failed: {error:?}"));
            }
        }
    }
    caused["builds"] = json!(builds);
    let verdict = if builds.is_empty() {
        "ignored"
    } else {
        "accepted"
    };
    let message = if lines.is_empty() {
        format!("no build definition clones {}", push.clone_url)
    } else {
        lines.join("; ")
    };
    Outcome {
        caused,
        retry,
        ..Outcome::new(verdict, message)
    }
}

/// Each claimed push, verified and registered; the delivery is accepted when any version was
/// (or had been) registered, refused when a claim did not hold, else ignored.
async fn registry(
    state: &AppState,
    org: &str,
    hook: &InboundHookRow,
    claims: Vec<Claim>,
) -> Outcome {
    let watches: Vec<String> = serde_json::from_str(&hook.watches).unwrap_or_default();
    let created_by = format!("hook:{}", hook.id);
    let (mut lines, mut versions, mut created) = (Vec::new(), Vec::new(), Vec::new());
    let (mut refused, mut retry) = (false, false);
    for claim in claims {
        let claimed = match claim {
            Claim::Ignored(why) => {
                lines.push(format!("ignored: {why}"));
                continue;
            }
            Claim::Push(claimed) => claimed,
        };
        let name = inbound::image_name(&claimed, &hook.registry);
        if !inbound::watched(&watches, &name, &claimed.repository) {
            lines.push(format!("ignored: {name} is not watched by this hook"));
            continue;
        }
        let image = match RepositoryName::parse(&name) {
            Ok(image) => image,
            Err(e) => {
                refused = true;
                lines.push(format!("refused: {name:?} is not an image name: {e}"));
                continue;
            }
        };
        let pushed = Pushed {
            image,
            tag: claimed.tag.clone(),
            git_ref: String::new(),
            commit: String::new(),
        };
        match register(state, org, &pushed, &created_by).await {
            Ok(registered) => {
                let row = registered.row();
                versions.push(row.id.clone());
                let what = match registered {
                    Registered::Created(_) => {
                        created.push(row.id.clone());
                        "registered"
                    }
                    Registered::Existing(_) => "already registered",
                };
                lines.push(format!(
                    "{what}: {name}:{} as {} ({})",
                    pushed.tag, row.digest, row.id
                ));
            }
            Err(VerifyError::Unavailable(e)) => {
                retry = true;
                lines.push(format!(
                    "failed: {name}:{}: the registry could not be asked: {e}",
                    pushed.tag
                ));
            }
            Err(VerifyError::NoRegistry(e)) => {
                lines.push(format!("ignored: {name}:{}: {e}", pushed.tag));
            }
            Err(e @ (VerifyError::NotInRegistry { .. } | VerifyError::Invalid(_))) => {
                refused = true;
                lines.push(format!("refused: {e}; nothing registered"));
            }
            Err(VerifyError::Store(e)) => {
                retry = true;
                lines.push(format!("failed: {name}:{}: {e}", pushed.tag));
            }
        }
    }
    let verdict = if !versions.is_empty() {
        "accepted"
    } else if refused || retry {
        "refused"
    } else {
        "ignored"
    };
    Outcome {
        verdict,
        message: lines.join("; "),
        caused: json!({"versions": versions, "created": created}),
        // Only when nothing else was registered: a retry re-does all claims, which is
        // harmless (registration deduplicates) but not needed once one succeeded.
        retry: retry && versions.is_empty(),
    }
}
