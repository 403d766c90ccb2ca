//! `gangplank create artefact-version|app|env|delta|rule|webhook|registry|watch|pipeline|
//! inbound-hook|build-definition`.

use anyhow::Context;
use gangplank_api::client::Body;
use reqwest::Method;
use serde_json::{Value, json};

use crate::UsageError;
use crate::cli::{ArtefactVersionArgs, CreateArgs, CreateWhat, Global, RuleArgs, WebhookArgs};
use crate::client_config::Resolved;
use crate::commands::get::{
    APP_COLUMNS, BUILD_DEFINITION_COLUMNS, ENV_COLUMNS, INBOUND_HOOK_COLUMNS, PIPELINE_COLUMNS,
    REGISTRY_COLUMNS, RULE_COLUMNS, VERSION_COLUMNS, WATCH_COLUMNS, WEBHOOK_COLUMNS,
};
use crate::output;

pub async fn run(global: &Global, args: CreateArgs) -> anyhow::Result<()> {
    let resolved = Resolved::from(global)?;
    let org = resolved.org()?.to_owned();
    if let CreateWhat::Pipeline { file, dry_run } = args.what {
        let text = read_text(&file)?;
        let suffix = if dry_run { "?dry_run=true" } else { "" };
        let path = format!("{}/pipelines{suffix}", resolved.app_path()?);
        let answer = resolved
            .client()
            .send(Method::POST, &path, Body::Yaml(text))
            .await?;
        if dry_run {
            eprintln!("the pipeline definition is valid (dry run: nothing was created)");
            return Ok(());
        }
        return output::print(&answer, output::format(global.output), PIPELINE_COLUMNS);
    }
    let (path, body, columns) = match args.what {
        CreateWhat::ArtefactVersion(version) => (
            format!("/orgs/{org}/artefact-versions"),
            artefact_version_body(version)?,
            VERSION_COLUMNS,
        ),
        CreateWhat::App { id, name } => (
            format!("/orgs/{org}/apps"),
            json!({"id": id, "name": name.unwrap_or_else(|| id.clone())}),
            APP_COLUMNS,
        ),
        CreateWhat::Delta { data, file } => {
            let body = crate::commands::api::json_body(data, file.as_deref())?
                .ok_or_else(|| UsageError("create delta needs -d JSON or -f FILE".to_owned()))?;
            (
                format!("{}/deltas", resolved.app_path()?),
                body,
                &[("ID", "id")][..],
            )
        }
        CreateWhat::Rule(rule) => (
            format!("{}/rules", resolved.env_path()?),
            rule_body(rule),
            RULE_COLUMNS,
        ),
        CreateWhat::Webhook(hook) => (
            format!("{}/webhooks", resolved.app_path()?),
            webhook_body(hook)?,
            WEBHOOK_COLUMNS,
        ),
        CreateWhat::Registry {
            id,
            registry,
            kind,
            username,
            password,
            enable_ci,
            insecure,
        } => {
            let mut body = json!({"id": id, "registry": registry, "type": kind, "enable_ci": enable_ci, "insecure": insecure});
            if let Some(password) = password {
                body["creds"] =
                    json!({"username": username.unwrap_or_default(), "password": password});
            }
            (format!("/orgs/{org}/registries"), body, REGISTRY_COLUMNS)
        }
        CreateWhat::InboundHook {
            id,
            kind,
            watches,
            registry,
            secret,
        } => {
            let mut body =
                json!({"id": id.unwrap_or_else(|| kind.clone()), "kind": kind, "watches": watches});
            if let Some(registry) = registry {
                body["registry"] = json!(registry);
            }
            if let Some(secret) = secret {
                body["secret"] = json!(secret);
            }
            (
                format!("/orgs/{org}/inbound-hooks"),
                body,
                INBOUND_HOOK_COLUMNS,
            )
        }
        CreateWhat::Watch {
            image,
            semver,
            regex,
            interval,
        } => {
            let mut body = json!({"image": image});
            if let Some(range) = semver {
                body["semver"] = json!(range);
            }
            if let Some(re) = regex {
                body["regex"] = json!(re);
            }
            if let Some(interval) = interval {
                body["interval_seconds"] = json!(interval_seconds(&interval)?);
            }
            (format!("/orgs/{org}/watches"), body, WATCH_COLUMNS)
        }
        CreateWhat::BuildDefinition {
            clone_url,
            clone_token,
            branches,
            dockerfile,
            context,
            build_args,
            image,
            tags,
            builder,
            timeout,
        } => {
            let mut args = serde_json::Map::new();
            for item in build_args {
                let (name, value) = item.split_once('=').ok_or_else(|| {
                    UsageError(format!("--build-arg {item:?}: expected NAME=VALUE"))
                })?;
                args.insert(name.to_owned(), json!(value));
            }
            let mut body = json!({"clone_url": clone_url, "image": image, "builder": builder,
                "branches": branches, "tags": tags, "build_args": args});
            for (key, value) in [
                ("clone_token", clone_token),
                ("dockerfile", dockerfile),
                ("context", context),
            ] {
                if let Some(value) = value {
                    body[key] = json!(value);
                }
            }
            if let Some(timeout) = timeout {
                body["timeout_seconds"] = json!(interval_seconds(&timeout)?);
            }
            let app = resolved.app()?.to_owned();
            let answer = resolved
                .client()
                .send(
                    Method::PUT,
                    &format!("/orgs/{org}/apps/{app}/build-definition"),
                    Body::Json(body),
                )
                .await?;
            return output::print(
                &answer,
                output::format(global.output),
                BUILD_DEFINITION_COLUMNS,
            );
        }
        CreateWhat::Pipeline { .. } => unreachable!("handled above"),
        CreateWhat::Env { id, kind, name } => {
            let app = resolved.app()?;
            let name = name.unwrap_or_else(|| id.clone());
            (
                format!("/orgs/{org}/apps/{app}/envs"),
                json!({"id": id, "name": name, "type": kind}),
                ENV_COLUMNS,
            )
        }
    };
    let answer = resolved
        .client()
        .send(Method::POST, &path, Body::Json(body))
        .await?;
    output::print(&answer, output::format(global.output), columns)
}

/// `90`, `90s`, `5m` or `1h` in seconds.
fn interval_seconds(text: &str) -> Result<i64, UsageError> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => 0,
    };
    digits
        .parse::<i64>()
        .ok()
        .filter(|_| scale > 0)
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| {
            UsageError(format!(
                "--interval {text:?}: give seconds or a number with s, m or h (5m)"
            ))
        })
}

/// A file's text, or standard input for `-`.
fn read_text(file: &str) -> anyhow::Result<String> {
    if file == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading the definition from standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(file).with_context(|| format!("reading {file}"))
}

/// The JSON body; a `--spec` file (YAML or JSON) is embedded as the `spec` object.
fn artefact_version_body(args: ArtefactVersionArgs) -> anyhow::Result<Value> {
    // The API allows no version, but a container version without its tag names no image.
    if args.kind == "container" && args.version.as_deref().is_none_or(str::is_empty) {
        return Err(UsageError(
            "a container version needs --version (the image tag), e.g. --version 1.4.2".to_owned(),
        )
        .into());
    }
    let mut body = json!({"type": args.kind, "name": args.name});
    let fields = [
        ("version", args.version),
        ("ref", args.git_ref),
        ("commit", args.commit),
        ("digest", args.digest),
        ("image", args.image),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            body[key] = Value::String(value);
        }
    }
    if let Some(path) = args.spec {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let spec: Value = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("parsing {} as YAML", path.display()))?;
        body["spec"] = spec;
    }
    Ok(body)
}

fn rule_body(rule: RuleArgs) -> Value {
    let policy = match (rule.semver, rule.version_regex) {
        (Some(constraint), _) => {
            json!({"type": "semver", "constraint": constraint, "include_prerelease": rule.prerelease})
        }
        (None, Some(pattern)) => json!({"type": "regex", "pattern": pattern}),
        (None, None) => Value::Null,
    };
    let mut body = json!({
        "type": "update",
        "active": !rule.inactive,
        "artefacts_filter": rule.artefacts,
        "exclude_artefacts_filter": rule.exclude,
        "match_ref": rule.match_ref.unwrap_or_default(),
    });
    if !policy.is_null() {
        body["version_policy"] = policy;
    }
    body
}

fn webhook_body(hook: WebhookArgs) -> anyhow::Result<Value> {
    let mut triggers = Vec::new();
    for trigger in &hook.triggers {
        let (scope, kind) = trigger.rsplit_once('.').ok_or_else(|| {
            UsageError(format!(
                "--trigger {trigger:?} must be scope.type, e.g. deployment.finished"
            ))
        })?;
        triggers.push(json!({"scope": scope, "type": kind}));
    }
    let mut headers = serde_json::Map::new();
    for header in &hook.headers {
        let (name, value) = header
            .split_once('=')
            .ok_or_else(|| UsageError(format!("--header {header:?} must be NAME=VALUE")))?;
        headers.insert(name.to_owned(), Value::String(value.to_owned()));
    }
    let mut body =
        json!({"id": hook.id, "url": hook.target_url, "triggers": triggers, "headers": headers});
    if let Some(payload) = hook.payload {
        body["payload"] = serde_json::from_str(&payload)
            .map_err(|e| UsageError(format!("--payload is not valid JSON: {e}")))?;
    }
    if let Some(secret) = hook.secret {
        body["secret"] = Value::String(secret);
    }
    Ok(body)
}
